/// A configuration that cannot be used, with a message naming what was wrong.
///
/// Errors about one field carry the field's name as the library spells it (`batchSize`,
/// `controller.minBits`), the bad value and the requirement, so a front end can name the field its own way
/// (the command line names its flag, a coordinator the policy field).
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// The configuration field at fault (`epochs`, `quantization.activationBits`), when one field is.
    public var field: String?
    /// The bad value as text, when one field is at fault.
    public var value: String?
    /// What the field must be ("at least 1", "in [0, 1]"), when one field is at fault.
    public var requirement: String?
    /// The whole message.
    public var message: String

    /// An error that is not about one field.
    public init(_ message: String) { self.message = message }

    /// `field` must be `requirement` but is `value`: "batchSize must be at least 1, got 0".
    public init(field: String, value: some CustomStringConvertible, requirement: String) {
        self.field = field
        self.value = value.description
        self.requirement = requirement
        self.message = "\(field) must be \(requirement), got \(value)"
    }

    /// The same message with the field called `name` instead (a command-line flag, say).
    public func naming(field name: String) -> String {
        guard let requirement, let value else { return message }
        return "\(name) must be \(requirement), got \(value)"
    }

    public var description: String { message }
}
