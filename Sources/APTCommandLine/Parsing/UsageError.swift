/// Bad usage: an unknown option, a missing or malformed value. Exit status 64.
public struct UsageError: Error, CustomStringConvertible, Equatable {
    /// What was wrong.
    public var message: String
    /// Creates an error.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

/// A failure at run time (a file that cannot be read, a run that failed). Exit status 1.
public struct CommandFailure: Error, CustomStringConvertible, Equatable {
    /// What went wrong.
    public var message: String
    /// Creates a failure.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
