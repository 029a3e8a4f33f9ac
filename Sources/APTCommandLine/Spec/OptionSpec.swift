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

    /// `--name <value>` or `--name`, as usage lines and errors show it.
    public var synopsis: String { "--\(name)" + (valueName.map { " <\($0)>" } ?? "") }
}
