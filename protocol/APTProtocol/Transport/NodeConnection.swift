import APTCore

/// A node's link to the coordinator: the `NodeLink` state machine driven over a DEALER socket and a
/// `Poller`. It sends HELLO on every connection, heartbeats on schedule, reads every queued message before it
/// judges the coordinator silent, and on silence closes the socket, waits with backoff, reconnects and says
/// HELLO again. Confined to one thread (it owns a ZeroMQ socket); another thread may interrupt a `poll` with
/// `waker.wake()`.
///
/// A node that trains between polls calls `service()` between steps (it never blocks), or `poll(timeoutMs:)`
/// when it has nothing else to do.
public final class NodeConnection {
    /// What happened during `poll`.
    public enum Event: Sendable, Equatable {
        /// A message from the coordinator.
        case message(Message)
        /// A frame from the coordinator that could not be decoded.
        case malformed(WireError)
        /// The coordinator went silent; the link was rebuilt and HELLO sent again (reconnection count).
        case reconnected(attempt: Int)
        /// Another thread called `waker.wake()`.
        case woken
        /// A signal interrupted the wait (check for shutdown).
        case interrupted
        /// Under CURVE, how the security handshake with the coordinator went; reported when it changes (a
        /// refused key or a broken handshake is reported once, not on every automatic retry).
        case handshake(HandshakeMonitor.Outcome)
    }

    private let context: ZMQContext
    private let endpoint: String
    private let identity: [UInt8]
    private let security: Security
    private let options: TransportOptions
    private let limits: DecodeLimits
    private let hello: Hello
    private let clock: @Sendable () -> UInt64
    private let poller: Poller
    private var dealer: DealerEndpoint?
    private var monitor: HandshakeMonitor?
    private var lastHandshake: HandshakeMonitor.Outcome?
    private var connections = 0
    private var link: NodeLink

    /// Wakes a `poll` from another thread.
    public var waker: Waker { poller.waker }
    /// Reconnections so far.
    public var reconnects: Int { link.reconnects }
    /// Application heartbeat interval, ms.
    public var heartbeatIntervalMs: UInt64 { link.heartbeatIntervalMs }
    /// How long the coordinator may stay silent before the link is rebuilt, ms.
    public var silenceAllowedMs: UInt64 { link.missedAllowed * link.heartbeatIntervalMs }

    /// Connects and sends `hello`. Without `backoff`, reconnect jitter is seeded from `identity` (per node).
    /// `clock` gives milliseconds on a monotonic clock (injected in tests).
    public init(
        context: ZMQContext, endpoint: String, identity: [UInt8], hello: Hello, security: Security = .plain,
        options: TransportOptions = .standard, limits: DecodeLimits = .standard, heartbeatIntervalMs: UInt64 = 1000,
        missedAllowed: UInt64 = 3, backoff: ReconnectBackoff? = nil,
        clock: @escaping @Sendable () -> UInt64 = { MonotonicClock.milliseconds() }
    ) throws {
        self.context = context
        self.endpoint = endpoint
        self.identity = identity
        self.security = security
        self.options = options
        self.limits = limits
        self.hello = hello
        self.clock = clock
        self.poller = try Poller()
        self.link = NodeLink(
            heartbeatIntervalMs: heartbeatIntervalMs, missedAllowed: missedAllowed,
            backoff: backoff ?? ReconnectBackoff(seed: ReconnectBackoff.seed(identity: security.routingId ?? identity)))
        _ = try perform(link.start(at: clock()))
    }

    /// Does what the link asks; returns whether it reconnected.
    private func perform(_ actions: [NodeLink.Action]) throws -> Bool {
        var reconnected = false
        for action in actions {
            switch action {
            case .connect:
                connections += 1
                let name = "\(UInt(bitPattern: ObjectIdentifier(self).hashValue))-\(connections)"
                dealer = try DealerEndpoint(
                    context: context, connect: endpoint, identity: identity, security: security, options: options,
                    limits: limits
                ) { socket in
                    if security != .plain { self.monitor = try HandshakeMonitor(socket: socket, name: name) }
                }
                reconnected = link.reconnects > 0
            case .sendHello:
                try dealer?.send(.hello(hello))
            case .sendHeartbeat(let sequence):
                // A full queue (the coordinator is away) drops a heartbeat; silence handling covers it.
                try? dealer?.send(.heartbeat(sequence: sequence, timestampMs: clock()))
            case .disconnect:
                monitor = nil
                dealer?.close()
                dealer = nil
            }
        }
        return reconnected
    }

    /// Sends a message to the coordinator. While the link is between connections it throws
    /// `ZMQError(ENOTCONN)`; a full queue throws `ZMQError.again`.
    public func send(_ message: Message) throws {
        try send(frame: Frame.encode(message))
    }

    /// Sends a frame already encoded with `Frame.encode` (a caller that also needs its size encodes once).
    public func send(frame: [UInt8]) throws {
        guard let dealer else { throw ZMQError("zmq_send", code: ENOTCONN) }
        try dealer.sendRaw(frame)
    }

    /// Reads one queued message, if any, without waiting.
    private func receiveQueued(now: UInt64) throws -> Event? {
        guard let dealer, let frames = try dealer.socket.receive(timeoutMs: 0) else { return nil }
        link.received(at: now)
        do {
            return .message(try dealer.message(from: frames))
        } catch {
            return .malformed(error)
        }
    }

    /// Services the link without waiting: returns a queued message if there is one, else sends what is
    /// due (heartbeats) and handles silence. Call it between training steps.
    public func service() throws -> Event? {
        let now = clock()
        if let event = try receiveQueued(now: now) { return event }
        while let outcome = try monitor?.next() {
            guard outcome != lastHandshake else { continue }
            lastHandshake = outcome
            return .handshake(outcome)
        }
        if try perform(link.tick(at: now)) { return .reconnected(attempt: link.reconnects) }
        return nil
    }

    /// Waits up to `timeoutMs` for one event, sending heartbeats when due and reconnecting when the
    /// coordinator has been silent too long. Queued messages are always read before silence is judged.
    public func poll(timeoutMs: Int32) throws -> Event? {
        let deadline = clock() + UInt64(max(timeoutMs, 0))
        while true {
            if let event = try service() { return event }
            let now = clock()
            if now >= deadline { return nil }
            let until = min(deadline, link.nextDeadline)
            let slice = Int32(clamping: until > now ? until - now : 0)
            let result = try poller.wait(dealer.map { [$0.socket] } ?? [], timeoutMs: max(slice, 1))
            if result.woken { return .woken }
            if result.interrupted { return .interrupted }
        }
    }

    /// Says BYE and closes.
    public func close(reason: ByeReason = .normal, text: String = "") {
        try? dealer?.send(.bye(reason: reason, text: text))
        monitor = nil
        dealer?.close()
        dealer = nil
    }
}

#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

func usleepMs(_ ms: UInt64) { usleep(useconds_t(min(ms, 60_000) * 1000)) }
