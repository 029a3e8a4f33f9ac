import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The coordinator's ROUTER socket: bound, optionally CURVE with a ZAP allow-list.
///
/// Every received message carries its sender's address: the routing id to reply to and, with CURVE, the
/// public key the ZAP handler authenticated. Under CURVE a node's routing id must be its own Z85 public key
/// (`DealerEndpoint` sets it so): a frame whose routing id is another key is refused, so no allow-listed node
/// can speak as another. `ZMQ_ROUTER_HANDOVER` lets a reconnecting node take over its routing id at once, and
/// `ZMQ_ROUTER_MANDATORY` makes a send to a peer that is not connected fail with `ZMQError.hostUnreachable`
/// instead of vanishing.
public final class RouterEndpoint {
    /// The socket.
    public let socket: ZMQSocket
    /// The ZAP handler when CURVE is on.
    public let zap: ZAPHandler?
    /// The bound endpoint with any `*` port resolved.
    public let endpoint: String
    /// Decoder limits.
    public let limits: DecodeLimits

    /// Binds a ROUTER at `endpoint`. Plain mode is refused off loopback unless `allowPlainOffLoopback` (the
    /// caller then prints `Security.plainWarning(endpoint:)`).
    public init(
        context: ZMQContext, bind endpoint: String, security: Security = .plain, options: TransportOptions = .standard,
        limits: DecodeLimits = .standard, allowPlainOffLoopback: Bool = false
    ) throws {
        guard !security.isClient else {
            throw SecurityError("a coordinator needs a CURVE server key pair, not client keys")
        }
        if security == .plain && !allowPlainOffLoopback && !Security.isLoopback(endpoint: endpoint) {
            throw SecurityError(
                "refusing plain (unencrypted, unauthenticated) transport on \(endpoint): use CURVE off loopback, "
                    + "or force plain mode explicitly")
        }
        let s = try ZMQSocket(context: context, type: .router, options: options)
        try s.set(ZMQ_ROUTER_MANDATORY, 1)
        try s.set(ZMQ_ROUTER_HANDOVER, 1)
        // The ZAP thread is stopped on every failure path after it started (else it holds the context's ZAP
        // endpoint and the next endpoint fails with EADDRINUSE).
        let zap = try security.configure(s, context: context)
        do {
            try s.bind(endpoint)
            self.endpoint = try s.lastEndpoint()
        } catch {
            zap?.stop()
            throw error
        }
        self.socket = s
        self.zap = zap
        self.limits = limits
    }

    /// Receives one message, waiting at most `timeoutMs`.
    public func receive(timeoutMs: Int32) throws(ZMQError) -> Incoming? {
        guard let received = try socket.receiveMessage(timeoutMs: timeoutMs) else { return nil }
        let frames = received.frames
        lastFrameBytes = frames.count == 2 ? frames[1].count : 0
        let peer = PeerAddress(routingId: frames.first ?? [], publicKey: received.userId)
        if let key = received.userId, frames.first != Array(key.utf8) {
            return .malformed(
                from: peer,
                .invalidValue(
                    field: "routingId",
                    reason: "'\(String(decoding: peer.routingId.prefix(64), as: UTF8.self))' is not the sender's "
                        + "CURVE public key \(key)"))
        }
        guard frames.count == 2 else {
            return .malformed(
                from: peer,
                .invalidValue(field: "frames", reason: "expected 1 message frame, got \(frames.count - 1)"))
        }
        do {
            return .message(from: peer, try Frame.decode(frames[1], limits: limits))
        } catch {
            return .malformed(from: peer, error)
        }
    }

    /// Bytes of the message frame `receive` returned last (what the peer sent, as it came off the wire).
    public private(set) var lastFrameBytes = 0

    /// Sends `message` to `peer`. A peer that is not connected throws `ZMQError.hostUnreachable`; a peer whose
    /// queue is full, `ZMQError.again`.
    public func send(_ message: Message, to peer: PeerAddress) throws(ZMQError) {
        try send(message, to: peer.routingId)
    }

    /// Sends `message` to the peer with routing id `routingId` (errors as `send(_:to:)`).
    public func send(_ message: Message, to routingId: [UInt8]) throws(ZMQError) {
        try socket.send([routingId, Frame.encode(message)], dontWait: true)
    }

    /// Closes the socket and stops the ZAP handler.
    public func close() {
        socket.close()
        zap?.stop()
    }

    deinit { close() }
}
