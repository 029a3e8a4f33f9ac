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
    /// Placeholder of positional arguments, or nil when none are accepted.
    public var positionalName: String?

    /// Creates a spec.
    public init(
        name: String, overview: String, options: [OptionSpec] = [],
        subcommands: [(name: String, summary: String)] = [], positionalName: String? = nil
    ) {
        self.name = name
        self.overview = overview
        self.options = options
        self.subcommands = subcommands
        self.positionalName = positionalName
    }

    /// The option called `name`, if the command has one.
    public func option(named name: String) -> OptionSpec? { options.first { $0.name == name } }

    /// The one-line usage.
    public var usage: String {
        if !subcommands.isEmpty { return "\(name) <subcommand> [options]" }
        var parts = [name]
        for o in options where o.required { parts.append(o.synopsis) }
        if options.contains(where: { !$0.required }) { parts.append("[options]") }
        if let p = positionalName { parts.append(p) }
        return parts.joined(separator: " ")
    }

    /// The full `--help` text: OVERVIEW, USAGE, OPTIONS (defaults and requirements shown), SUBCOMMANDS.
    public var helpText: String {
        var out = "OVERVIEW: \(overview)\n\nUSAGE: \(usage)\n"
        if !options.isEmpty || subcommands.isEmpty {
            out += "\nOPTIONS:\n"
            var rows: [(String, String)] = []
            for o in options {
                var right = o.help
                if let d = o.defaultValue { right += " (default: \(d))" }
                if o.required { right += " (required)" }
                rows.append((o.synopsis, right))
            }
            rows.append(("-h, --help", "Show help information."))
            out += Self.table(rows, maximumLeftWidth: 30)
        }
        if !subcommands.isEmpty {
            out += "\nSUBCOMMANDS:\n"
            out += Self.table(subcommands.map { ($0.name, $0.summary) }, maximumLeftWidth: .max)
            out += "\n  See '\(name) <subcommand> --help' for detailed help.\n"
        }
        return out
    }

    /// Two columns, the left padded to the widest entry up to `maximumLeftWidth`; a longer entry gets a line
    /// of its own with its text indented below it.
    static func table(_ rows: [(String, String)], maximumLeftWidth: Int) -> String {
        let width = min(maximumLeftWidth, rows.map(\.0.count).max() ?? 0)
        var out = ""
        for (left, right) in rows {
            if left.count > width {
                out += "  \(left)\n  \(String(repeating: " ", count: width))  \(right)\n"
            } else {
                out += "  \(left)\(String(repeating: " ", count: width - left.count))  \(right)\n"
            }
        }
        return out
    }
}
