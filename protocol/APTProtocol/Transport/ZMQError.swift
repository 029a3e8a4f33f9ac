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

    /// EAGAIN: nothing to receive, or the send would block.
    public static func ~= (pattern: Int32, error: ZMQError) -> Bool { error.code == pattern }
}
