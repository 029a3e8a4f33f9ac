import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// ZeroMQ socket types used by the protocol.
public enum ZMQSocketType: Int32, Sendable {
    /// The coordinator's socket.
    case router = 6  // ZMQ_ROUTER
    /// A node's socket.
    case dealer = 5  // ZMQ_DEALER
    /// Used by the ZAP handler.
    case rep = 4  // ZMQ_REP
    /// A ZAP client (tests of the handler).
    case req = 3  // ZMQ_REQ
    /// Used by socket monitors.
    case pair = 0  // ZMQ_PAIR
}
