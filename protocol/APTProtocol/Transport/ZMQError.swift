import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A libzmq failure: the operation, errno and `zmq_strerror`'s text.
public struct ZMQError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The libzmq call that failed.
    public var operation: String
    /// errno.
    public var code: Int32
    /// libzmq's message.
    public var message: String

    init(_ operation: String, code: Int32 = zmq_errno()) {
        self.operation = operation
        self.code = code
        self.message = String(cString: zmq_strerror(code))
    }

    public var description: String { "\(operation): \(message) (errno \(code))" }

    /// An errno value to match a `ZMQError` against: `if ZMQError.hostUnreachable ~= error { … }` (as a
    /// `catch` pattern it crashes the Swift 6.3 compiler when the call throws a typed `ZMQError`).
    public struct Code: Hashable, Sendable {
        /// The errno value.
        public var rawValue: Int32
        /// Wraps an errno value.
        public init(_ rawValue: Int32) { self.rawValue = rawValue }

        /// Whether `error` is a `ZMQError` with this errno.
        public static func ~= (pattern: Code, error: any Error) -> Bool {
            (error as? ZMQError)?.code == pattern.rawValue
        }

        /// Whether `error` has this errno (the overload a typed `throws(ZMQError)` call site uses).
        public static func ~= (pattern: Code, error: ZMQError) -> Bool { error.code == pattern.rawValue }
    }

    /// EAGAIN: nothing to receive, or the send would block (a full queue).
    public static let again = Code(EAGAIN)
    /// EHOSTUNREACH: a ROUTER send to a peer that is not connected (the socket sets `ZMQ_ROUTER_MANDATORY`).
    public static let hostUnreachable = Code(EHOSTUNREACH)
    /// ETERM: the context was terminated.
    public static let terminated = Code(ETERM)

    /// Whether `error` has errno `pattern`.
    public static func ~= (pattern: Int32, error: ZMQError) -> Bool { error.code == pattern }
}
