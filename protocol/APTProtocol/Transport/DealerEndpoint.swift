import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// A node's DEALER socket: connected, optionally CURVE with the coordinator's key pinned.
public final class DealerEndpoint {
    /// The socket.
    public let socket: ZMQSocket
    /// Decoder limits.
    public let limits: DecodeLimits

    /// Connects a DEALER to `endpoint`. Its routing id is, under CURVE, its own Z85 public key (the
    /// coordinator refuses any other) and in plain mode `identity` (the node's name). `beforeConnect` sees the
    /// configured socket just before it connects (to attach a `HandshakeMonitor`).
    public init(
        context: ZMQContext, connect endpoint: String, identity: [UInt8], security: Security = .plain,
        options: TransportOptions = .standard, limits: DecodeLimits = .standard,
        beforeConnect: (ZMQSocket) throws -> Void = { _ in }
    ) throws {
        guard !security.isServer else {
            throw SecurityError("a node needs CURVE client keys and the coordinator's public key")
        }
        let s = try ZMQSocket(context: context, type: .dealer, options: options)
        let routingId = security.routingId ?? identity
        if !routingId.isEmpty { try s.set(ZMQ_ROUTING_ID, bytes: routingId) }
        _ = try security.configure(s, context: context)
        try beforeConnect(s)
        try s.connect(endpoint)
        self.socket = s
        self.limits = limits
    }

    /// Sends `message`.
    public func send(_ message: Message) throws(ZMQError) {
        try socket.send([Frame.encode(message)], dontWait: true)
    }

    /// Sends bytes as one frame: a frame encoded once by a caller that also needs it, or (in tests) bytes the
    /// peer's decoder must refuse.
    public func sendRaw(_ frame: [UInt8]) throws(ZMQError) {
        try socket.send([frame], dontWait: true)
    }

    /// Receives one message, waiting at most `timeoutMs`. A malformed frame throws its `WireError`.
    public func receive(timeoutMs: Int32) throws -> Message? {
        guard let frames = try socket.receive(timeoutMs: timeoutMs) else { return nil }
        return try message(from: frames)
    }

    /// Decodes what a DEALER receives: exactly one frame holding one message.
    public func message(from frames: [[UInt8]]) throws(WireError) -> Message {
        guard frames.count == 1 else {
            throw WireError.invalidValue(field: "frames", reason: "expected 1 message frame, got \(frames.count)")
        }
        return try Frame.decode(frames[0], limits: limits)
    }

    /// Closes the socket.
    public func close() { socket.close() }
}
