import CZlib

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A data file that cannot be read as IDX, with the path and what was wrong.
public struct DataError: Error, CustomStringConvertible, Equatable {
    /// The file concerned.
    public var path: String
    /// What was wrong.
    public var reason: String
    /// Creates an error.
    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }
    public var description: String { "\(path): \(reason)" }
}
