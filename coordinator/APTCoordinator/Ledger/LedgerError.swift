/// A ledger file that cannot be used as it is, naming the file and what is wrong; the file is left untouched.
public struct LedgerError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The file.
    public var path: String
    /// What is wrong with it.
    public var reason: String

    /// Creates an error.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "ledger \(path) \(reason)" }
}
