import CZmq

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// The coordinator's ROUTER socket: bound, optionally CURVE with a ZAP allow-list.
public final class RouterEndpoint {
    /// The socket.
    public let socket: ZMQSocket
    /// The ZAP handler when CURVE is on.
    public let zap: ZAPHandler?
    /// The bound endpoint with any `*` port resolved.
    public let endpoint: String
    /// Decoder limits.
    public let limits: DecodeLimits

    /// Binds a ROUTER at `endpoint`.
    public init(
        context: ZMQContext, bind endpoint: String, security: Security = .plain, options: TransportOptions = .standard,
        limits: DecodeLimits = .standard
    ) throws {
        let s = try ZMQSocket(context: context, type: .router, options: options)
        guard !security.isClient else {
            throw SecurityError("a coordinator needs a CURVE server key pair, not client keys")
        }
        // The ZAP thread is stopped on every failure path after it started (else it holds the context's ZAP
        // endpoint and the next endpoint fails with EADDRINUSE).
        let zap = try security.configure(s, context: context)
        do {
            try s.bind(endpoint)
        } catch {
            zap?.stop()
            throw error
        }
        self.socket = s
        self.zap = zap
        self.endpoint = try s.lastEndpoint()
        self.limits = limits
    }

    /// Receives one frame, waiting at most `timeoutMs`.
    public func receive(timeoutMs: Int32) throws(ZMQError) -> Incoming? {
        guard let frames = try socket.receive(timeoutMs: timeoutMs) else { return nil }
        guard frames.count == 2 else {
            return .malformed(
                peer: frames.first ?? [],
                WireError.invalidValue(field: "frames", reason: "expected 1 message frame, got \(frames.count - 1)"))
        }
        do {
            return .message(peer: frames[0], try Frame.decode(frames[1], limits: limits))
        } catch {
            return .malformed(peer: frames[0], error)
        }
    }

    /// Sends `message` to `peer`.
    public func send(_ message: Message, to peer: [UInt8]) throws(ZMQError) {
        try socket.send([peer, Frame.encode(message)], dontWait: true)
    }

    /// Closes the socket and stops the ZAP handler.
    public func close() {
        socket.close()
        zap?.stop()
    }

    deinit { close() }
}

/// Application-level liveness: a peer that sent nothing for `missedAllowed` heartbeat intervals is gone.
