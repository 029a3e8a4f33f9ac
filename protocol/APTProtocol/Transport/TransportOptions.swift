import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Socket settings shared by both ends.
public struct TransportOptions: Hashable, Sendable {
    /// `ZMQ_MAXMSGSIZE`: a peer sending a larger frame is disconnected (bytes).
    public var maxMessageBytes: Int64
    /// `ZMQ_SNDHWM` and `ZMQ_RCVHWM`.
    public var highWaterMark: Int32
    /// `ZMQ_LINGER` (ms): how long close waits for unsent messages.
    public var lingerMs: Int32
    /// `ZMQ_RECONNECT_IVL` (ms).
    public var reconnectIntervalMs: Int32
    /// `ZMQ_RECONNECT_IVL_MAX` (ms): exponential backoff cap.
    public var reconnectIntervalMaxMs: Int32
    /// `ZMQ_HEARTBEAT_IVL` (ms): ZMTP PINGs.
    public var heartbeatIntervalMs: Int32
    /// `ZMQ_HEARTBEAT_TIMEOUT` (ms): a connection without traffic this long is dropped.
    public var heartbeatTimeoutMs: Int32
    /// `ZMQ_HEARTBEAT_TTL` (ms): asks the peer to drop us after this long without traffic.
    public var heartbeatTTLMs: Int32

    /// Creates options.
    public init(
        maxMessageBytes: Int64 = 64 << 20, highWaterMark: Int32 = 1000, lingerMs: Int32 = 200,
        reconnectIntervalMs: Int32 = 100, reconnectIntervalMaxMs: Int32 = 5000, heartbeatIntervalMs: Int32 = 1000,
        heartbeatTimeoutMs: Int32 = 3000, heartbeatTTLMs: Int32 = 3000
    ) {
        self.maxMessageBytes = maxMessageBytes
        self.highWaterMark = highWaterMark
        self.lingerMs = lingerMs
        self.reconnectIntervalMs = reconnectIntervalMs
        self.reconnectIntervalMaxMs = reconnectIntervalMaxMs
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.heartbeatTimeoutMs = heartbeatTimeoutMs
        self.heartbeatTTLMs = heartbeatTTLMs
    }

    /// The defaults: 64 MiB frames (the `lenet` model in float32 is 0.25 MB, `mlp` 0.94 MB), HWM 1000, linger
    /// 200 ms, reconnect 100 ms backing off to 5 s, ZMTP heartbeats every second with a 3 s timeout.
    public static let standard = TransportOptions()

    func apply(to s: ZMQSocket) throws(ZMQError) {
        try s.set(ZMQ_MAXMSGSIZE, int64: maxMessageBytes)
        try s.set(ZMQ_SNDHWM, highWaterMark)
        try s.set(ZMQ_RCVHWM, highWaterMark)
        try s.set(ZMQ_LINGER, lingerMs)
        try s.set(ZMQ_RECONNECT_IVL, reconnectIntervalMs)
        try s.set(ZMQ_RECONNECT_IVL_MAX, reconnectIntervalMaxMs)
        try s.set(ZMQ_HEARTBEAT_IVL, heartbeatIntervalMs)
        try s.set(ZMQ_HEARTBEAT_TIMEOUT, heartbeatTimeoutMs)
        try s.set(ZMQ_HEARTBEAT_TTL, heartbeatTTLMs)
    }
}

extension ZMQSocket {
    /// A socket of `type` with every transport option of `options` set (the one place both endpoints make
    /// their socket).
    convenience init(context: ZMQContext, type: ZMQSocketType, options: TransportOptions) throws(ZMQError) {
        try self.init(context: context, type: type, lingerMs: options.lingerMs)
        try options.apply(to: self)
    }
}
