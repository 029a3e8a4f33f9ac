/// One option of a command: `--name VALUE` (or `--name=VALUE`), or a flag `--name`.
public struct OptionSpec: Sendable {
    /// Long name without dashes.
    public var name: String
    /// Placeholder shown in help, nil for a flag.
    public var valueName: String?
    /// One-line help.
    public var help: String
    /// Default shown in help.
    public var defaultValue: String?
    /// Whether the option must be given.
    public var required: Bool

    /// An option taking a value.
    public static func value(
        _ name: String, _ valueName: String, _ help: String, default defaultValue: String? = nil, required: Bool = false
    ) -> OptionSpec {
        OptionSpec(name: name, valueName: valueName, help: help, defaultValue: defaultValue, required: required)
    }

    /// A flag.
    public static func flag(_ name: String, _ help: String) -> OptionSpec {
        OptionSpec(name: name, valueName: nil, help: help, defaultValue: nil, required: false)
    }
}

/// A command or subcommand: what `--help` prints and what the parser accepts.
public struct CommandSpec: Sendable {
    /// Full name as typed, e.g. `apt-node train`.
    public var name: String
    /// One paragraph saying what it does.
    public var overview: String
    /// Options (`--help` is implied).
    public var options: [OptionSpec]
    /// Subcommands with one-line summaries.
    public var subcommands: [(name: String, summary: String)]
    /// Whether positional arguments are accepted.
    public var positionalName: String?

    /// Creates a spec.
    public init(
        name: String, overview: String, options: [OptionSpec] = [], subcommands: [(name: String, summary: String)] = [],
        positionalName: String? = nil
    ) {
        self.name = name
        self.overview = overview
        self.options = options
        self.subcommands = subcommands
        self.positionalName = positionalName
    }

    /// The one-line usage.
    public var usage: String {
        if !subcommands.isEmpty { return "\(name) <subcommand> [options]" }
        var parts = [name]
        for o in options where o.required { parts.append("--\(o.name) \(o.valueName ?? "")") }
        if options.contains(where: { !$0.required }) { parts.append("[options]") }
        if let p = positionalName { parts.append(p) }
        return parts.joined(separator: " ")
    }

    /// The full `--help` text.
    public var helpText: String {
        var out = "OVERVIEW: \(overview)\n\nUSAGE: \(usage)\n"
        if !options.isEmpty || subcommands.isEmpty {
            out += "\nOPTIONS:\n"
            var rows: [(String, String)] = []
            for o in options {
                let left = "--\(o.name)" + (o.valueName.map { " <\($0)>" } ?? "")
                var right = o.help
                if let d = o.defaultValue { right += " (default: \(d))" }
                if o.required { right += " (required)" }
                rows.append((left, right))
            }
            rows.append(("-h, --help", "Show help information."))
            let width = min(30, rows.map(\.0.count).max() ?? 0)
            for (l, r) in rows {
                let pad = l.count < width ? String(repeating: " ", count: width - l.count) : ""
                if l.count > width {
                    out += "  \(l)\n  \(String(repeating: " ", count: width))  \(r)\n"
                } else {
                    out += "  \(l)\(pad)  \(r)\n"
                }
            }
        }
        if !subcommands.isEmpty {
            out += "\nSUBCOMMANDS:\n"
            let width = subcommands.map(\.name.count).max() ?? 0
            for s in subcommands {
                out += "  \(s.name)\(String(repeating: " ", count: width - s.name.count))  \(s.summary)\n"
            }
            out += "\n  See '\(name) <subcommand> --help' for detailed help.\n"
        }
        return out
    }
}

/// Bad usage: an unknown option, a missing or malformed value. Exit status 64.
public struct UsageError: Error, CustomStringConvertible, Equatable {
    /// What was wrong.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// Parsed arguments of one command.
public struct ParsedArguments: Sendable {
    /// Option values by name (the last occurrence wins).
    public var values: [String: String] = [:]
    /// Flags given.
    public var flags: Set<String> = []
    /// Positional arguments.
    public var positionals: [String] = []
    /// Whether help was asked for.
    public var helpRequested = false

    /// The raw value of `name`, if given.
    public subscript(name: String) -> String? { values[name] }

    /// Whether flag `name` was given.
    public func flag(_ name: String) -> Bool { flags.contains(name) }

    /// The value of `name` as an integer (accepts `_` separators and k/M/G suffixes for sizes).
    public func int(_ name: String) throws(UsageError) -> Int? {
        guard let v = values[name] else { return nil }
        guard let n = parseInteger(v) else {
            throw UsageError("--\(name) expects a whole number, got '\(v)'")
        }
        return n
    }

    /// The value of `name` as a `Double`.
    public func double(_ name: String) throws(UsageError) -> Double? {
        guard let v = values[name] else { return nil }
        guard let d = Double(v), d.isFinite else { throw UsageError("--\(name) expects a number, got '\(v)'") }
        return d
    }

    func parseInteger(_ text: String) -> Int? {
        var t = text.replacingOccurrences(of: "_", with: "")
        var mult = 1
        if let last = t.last, "kKMG".contains(last) {
            mult = last == "G" ? 1 << 30 : (last == "M" ? 1 << 20 : 1 << 10)
            t.removeLast()
        }
        guard let n = Int(t) else { return nil }
        let (r, o) = n.multipliedReportingOverflow(by: mult)
        return o ? nil : r
    }
}

extension String {
    fileprivate func replacingOccurrences(of a: String, with b: String) -> String {
        split(separator: Character(a), omittingEmptySubsequences: false).joined(separator: b)
    }
}

/// Parses `arguments` (after the command name) against `spec`, in the style of swift-argument-parser:
/// `--name value`, `--name=value`, `--` ends options, `-h`/`--help` anywhere asks for help.
public func parseArguments(_ arguments: [String], spec: CommandSpec) throws(UsageError) -> ParsedArguments {
    var out = ParsedArguments()
    var i = 0
    var optionsEnded = false
    while i < arguments.count {
        let a = arguments[i]
        i += 1
        if !optionsEnded && a == "--" { optionsEnded = true; continue }
        if !optionsEnded && (a == "-h" || a == "--help") { out.helpRequested = true; continue }
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
            guard let o = spec.options.first(where: { $0.name == name }) else {
                throw UsageError("Unknown option '--\(name)'." + suggestion(for: name, in: spec))
            }
            if o.valueName == nil {
                if inline != nil { throw UsageError("Flag '--\(name)' does not take a value.") }
                out.flags.insert(name)
            } else if let inline {
                out.values[name] = inline
            } else {
                guard i < arguments.count, !(arguments[i].hasPrefix("--") && arguments[i].count > 2) else {
                    throw UsageError("Missing value for '--\(name) <\(o.valueName ?? "value")>'.")
                }
                out.values[name] = arguments[i]
                i += 1
            }
            continue
        }
        guard spec.positionalName != nil else {
            throw UsageError("Unexpected argument '\(a)'.")
        }
        out.positionals.append(a)
    }
    if !out.helpRequested {
        for o in spec.options where o.required && out.values[o.name] == nil {
            throw UsageError("Missing expected argument '--\(o.name) <\(o.valueName ?? "value")>'.")
        }
    }
    return out
}

/// " Did you mean '--x'?" for the closest option name, or "".
func suggestion(for typed: String, in spec: CommandSpec) -> String {
    let t = typed.drop { $0 == "-" }
    var best: (String, Int)? = nil
    for o in spec.options {
        let d = editDistance(String(t), o.name)
        if d <= max(2, o.name.count / 3), best == nil || d < best!.1 { best = (o.name, d) }
    }
    return best.map { " Did you mean '--\($0.0)'?" } ?? ""
}

/// Levenshtein distance.
func editDistance(_ a: String, _ b: String) -> Int {
    let x = Array(a), y = Array(b)
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

/// Closest candidate within two edits (for unknown values such as model names), or nil.
public func closest(_ typed: String, among candidates: [String]) -> String? {
    var best: (String, Int)? = nil
    for c in candidates {
        let d = editDistance(typed, c)
        if d <= 2, best == nil || d < best!.1 { best = (c, d) }
    }
    return best?.0
}
