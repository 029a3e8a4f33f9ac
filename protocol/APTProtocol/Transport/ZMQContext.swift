import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A ZeroMQ context. Sockets keep their context alive; the context terminates when the last reference goes.
public final class ZMQContext: @unchecked Sendable {
    // @unchecked: a zmq context is thread-safe by libzmq's contract; the pointer is immutable.
    let handle: UnsafeMutableRawPointer

    /// Creates a context; `maxSockets` raises libzmq's limit of sockets it may hold (1,023 by default), as a
    /// process speaking for many nodes needs.
    public init(maxSockets: Int? = nil) throws(ZMQError) {
        guard let h = zmq_ctx_new() else { throw ZMQError("zmq_ctx_new") }
        handle = h
        if let n = maxSockets, zmq_ctx_set(h, ZMQ_MAX_SOCKETS, Int32(clamping: n)) != 0 {
            throw ZMQError("zmq_ctx_set(ZMQ_MAX_SOCKETS, \(n))")
        }
    }

    deinit {
        while zmq_ctx_term(handle) != 0 && zmq_errno() == EINTR {}
    }

    /// Whether libzmq was built with `capability` (e.g. "curve").
    public static func has(_ capability: String) -> Bool { zmq_has(capability) == 1 }
}
