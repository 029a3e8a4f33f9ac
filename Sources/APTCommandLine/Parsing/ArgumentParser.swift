/// Parses `arguments` (after the command name) against `spec`, in the style of swift-argument-parser:
/// `--name value`, `--name=value`, `--` ends options, `-h`/`--help` anywhere asks for help, a repeated option
/// keeps its last value. A command that declares `--config` also takes options from that file
/// (`ConfigFile`, read through `readConfig`); the command line wins over the file.
public func parseArguments(
    _ arguments: [String], spec: CommandSpec,
    readConfig: (String) throws(UsageError) -> String = { (path) throws(UsageError) in try ConfigFile.read(path: path) }
) throws(UsageError) -> ParsedArguments {
    var out = ParsedArguments()
    var i = 0
    var optionsEnded = false
    while i < arguments.count {
        let a = arguments[i]
        i += 1
        if !optionsEnded && a == "--" {
            optionsEnded = true
            continue
        }
        if !optionsEnded && (a == "-h" || a == "--help") {
            out.requestHelp()
            continue
        }
        if !optionsEnded && a.hasPrefix("-") && a.count > 1 {
            guard a.hasPrefix("--") else {
                throw UsageError("Unknown option '\(a)'." + suggestion(for: a, in: spec))
            }
            var name = String(a.dropFirst(2))
            var inline: String? = nil
            if let eq = name.firstIndex(of: "=") {
                inline = String(name[name.index(after: eq)...])
                name = String(name[..<eq])
            }
            guard let o = spec.option(named: name) else {
                throw UsageError("Unknown option '--\(name)'." + suggestion(for: name, in: spec))
            }
            if o.valueName == nil {
                if inline != nil { throw UsageError("Flag '--\(name)' does not take a value.") }
                out.setFlag(name)
            } else if let inline {
                out.setValue(inline, for: name)
            } else {
                guard i < arguments.count, !(arguments[i].hasPrefix("--") && arguments[i].count > 2) else {
                    throw UsageError("Missing value for '\(o.synopsis)'.")
                }
                out.setValue(arguments[i], for: name)
                i += 1
            }
            continue
        }
        guard spec.positionalName != nil else {
            throw UsageError("Unexpected argument '\(a)'.")
        }
        out.appendPositional(a)
    }
    if !out.helpRequested, spec.option(named: ConfigFile.option.name) != nil, let path = out[ConfigFile.option.name] {
        let file = try ConfigFile(parsing: try readConfig(path), path: path, spec: spec)
        for entry in file.entries where out[entry.name] == nil && !out.flag(entry.name) {
            if spec.option(named: entry.name)?.valueName == nil {
                if entry.value == "true" { out.setFlag(entry.name) }
            } else {
                out.setValue(entry.value, for: entry.name, origin: "\(path):\(entry.line)")
            }
        }
    }
    if !out.helpRequested {
        for o in spec.options where o.required && out[o.name] == nil {
            throw UsageError("Missing expected argument '\(o.synopsis)'.")
        }
    }
    return out
}

/// " Did you mean '--x'?" for the closest option name, or "".
func suggestion(for typed: String, in spec: CommandSpec) -> String {
    let t = String(typed.drop { $0 == "-" })
    var best: (name: String, distance: Int)? = nil
    for o in spec.options {
        let d = editDistance(t, o.name)
        if d <= max(2, o.name.count / 3), d < best?.distance ?? .max { best = (o.name, d) }
    }
    return best.map { " Did you mean '--\($0.name)'?" } ?? ""
}

/// Levenshtein distance.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a)
    let y = Array(b)
    if x.isEmpty { return y.count }
    if y.isEmpty { return x.count }
    var prev = Array(0...y.count)
    var cur = [Int](repeating: 0, count: y.count + 1)
    for i in 1...x.count {
        cur[0] = i
        for j in 1...y.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (x[i - 1] == y[j - 1] ? 0 : 1))
        }
        swap(&prev, &cur)
    }
    return prev[y.count]
}

/// " Did you mean 'x'?" for the candidate closest to `typed` (within two edits), or "".
public func didYouMean(_ typed: String, among candidates: [String]) -> String {
    closest(typed, among: candidates).map { " Did you mean '\($0)'?" } ?? ""
}

/// Closest candidate within two edits (for unknown values such as model names), or nil.
public func closest(_ typed: String, among candidates: [String]) -> String? {
    var best: (name: String, distance: Int)? = nil
    for c in candidates {
        let d = editDistance(typed, c)
        if d <= 2, d < best?.distance ?? .max { best = (c, d) }
    }
    return best?.name
}
