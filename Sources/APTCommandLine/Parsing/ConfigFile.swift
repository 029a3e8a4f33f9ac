#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A command's options read from a file (`--config FILE`), in a small subset of TOML that systemd units and
/// configuration-management tools write easily:
///
/// ```toml
/// # apt-node on board 17
/// coordinator = "tcp://coord.example:5555"
/// energy-budget = 500
/// force-plain = true
/// ```
///
/// One `name = value` per line, the name being the long option without its dashes; blank lines and lines
/// starting with `#` are ignored; a value may be wrapped in double quotes (needed only for a value that starts
/// or ends with spaces, or holds a `#`); `#` after a value starts a comment; a flag is `true` or `false`. An option given on the command line wins over the file.
/// Every mistake names the file and line: an unknown name (with a suggestion), a line without `=`, a name given
/// twice, a flag that is neither true nor false.
public struct ConfigFile: Sendable, Equatable {
    /// One setting.
    public struct Entry: Sendable, Equatable {
        /// Option name (no dashes).
        public var name: String
        /// Its value; for a flag, `true` or `false`.
        public var value: String
        /// 1-based line number in the file.
        public var line: Int
    }

    /// The settings in file order.
    public var entries: [Entry]

    /// The option every command that reads a config file declares.
    public static let option = OptionSpec.value(
        "config", "file", "Read options from FILE (name = value lines; the command line wins).")

    /// Parses `text` (from `path`, named in errors) against the options of `spec`.
    public init(parsing text: String, path: String, spec: CommandSpec) throws(UsageError) {
        entries = []
        var seen: Set<String> = []
        for (index, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = index + 1
            let trimmed = Self.trim(Substring(raw))
            if trimmed.isEmpty || trimmed.hasPrefix("#") { continue }
            let at = "\(path):\(line)"
            guard let eq = trimmed.firstIndex(of: "=") else {
                throw UsageError("\(at): expected 'name = value', got '\(trimmed)'")
            }
            let name = Self.trim(trimmed[..<eq])
            let value = try Self.value(of: trimmed[trimmed.index(after: eq)...], at: at)
            guard name != ConfigFile.option.name, name != "help" else {
                throw UsageError("\(at): '\(name)' cannot be set in a config file")
            }
            guard let option = spec.option(named: name) else {
                throw UsageError("\(at): unknown option '\(name)'." + suggestion(for: name, in: spec))
            }
            guard seen.insert(name).inserted else { throw UsageError("\(at): '\(name)' is set twice") }
            if option.valueName == nil, value != "true", value != "false" {
                throw UsageError("\(at): '\(name)' is a flag: true or false, got '\(value)'")
            }
            entries.append(Entry(name: name, value: value, line: line))
        }
    }

    /// The file at `path` as text, or a usage error naming it and the system's reason.
    public static func read(path: String) throws(UsageError) -> String {
        guard let file = fopen(path, "r") else {
            throw UsageError("cannot read config file \(path): \(String(cString: strerror(errno)))")
        }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = fread(&buffer, 1, buffer.count, file)
            bytes.append(contentsOf: buffer[0..<n])
            if n < buffer.count { break }
            guard bytes.count <= 1 << 20 else { throw UsageError("config file \(path) is over 1 MiB") }
        }
        if ferror(file) != 0 {
            throw UsageError("cannot read config file \(path): \(String(cString: strerror(errno)))")
        }
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw UsageError("config file \(path) is not UTF-8 text")
        }
        return text
    }

    /// The value after `=`: a quoted string up to its closing quote, or the bare text before any `#` comment.
    static func value(of text: Substring, at: String) throws(UsageError) -> String {
        let t = Substring(trim(text))
        guard t.hasPrefix("\"") else {
            return trim(t.prefix { $0 != "#" })
        }
        let body = t.dropFirst()
        guard let close = body.firstIndex(of: "\"") else {
            throw UsageError("\(at): a quoted value has no closing quote")
        }
        let rest = trim(body[body.index(after: close)...])
        guard rest.isEmpty || rest.hasPrefix("#") else {
            throw UsageError("\(at): unexpected text after the quoted value: '\(rest)'")
        }
        return String(body[..<close])
    }

    static func trim(_ s: Substring) -> String {
        let blank: (Character) -> Bool = { $0 == " " || $0 == "\t" || $0 == "\r" }
        return String(String(s.drop(while: blank).reversed().drop(while: blank)).reversed())
    }
}
