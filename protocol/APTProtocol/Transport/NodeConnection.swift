import APTCore

/// A node's link to the coordinator: sends HELLO on connect, heartbeats on schedule, and when the coordinator
/// has been silent for `missedAllowed` heartbeat intervals, drops the socket, waits with exponential backoff,
/// reconnects and introduces itself again. Confined to one thread (it owns a ZeroMQ socket).
public final class NodeConnection {
    /// What happened during `poll`.
    public enum Event: Sendable, Equatable {
        /// A message from the coordinator.
        case message(Message)
        /// A frame from the coordinator that could not be decoded.
        case malformed(WireError)
        /// The coordinator went silent; the link was rebuilt and HELLO sent again (attempt number).
        case reconnected(attempt: Int)
    }

    private let context: ZMQContext
    private let endpoint: String
    private let identity: [UInt8]
    private let security: Security
    private let options: TransportOptions
    private let hello: Hello
    private var dealer: DealerEndpoint?
    private var lastHeard: UInt64
    private var lastBeat: UInt64 = 0
    private var sequence: UInt64 = 0
    private var backoff: ReconnectBackoff
    /// Application heartbeat interval, ms.
    public let heartbeatIntervalMs: UInt64
    /// Silent intervals tolerated before reconnecting.
    public let missedAllowed: UInt64
    /// Reconnections so far.
    public private(set) var reconnects = 0

    /// Connects and sends `hello`. Without `backoff`, reconnect jitter is seeded from `identity` (per node).
    public init(
        context: ZMQContext, endpoint: String, identity: [UInt8], hello: Hello, security: Security = .plain,
        options: TransportOptions = .standard, heartbeatIntervalMs: UInt64 = 1000, missedAllowed: UInt64 = 3,
        backoff: ReconnectBackoff? = nil
    ) throws {
        self.context = context
        self.endpoint = endpoint
        self.identity = identity
        self.security = security
        self.options = options
        self.hello = hello
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.missedAllowed = missedAllowed
        self.backoff = backoff ?? ReconnectBackoff(seed: ReconnectBackoff.seed(identity: identity))
        self.lastHeard = MonotonicClock.milliseconds()
        try open()
    }

    private func open() throws {
        let d = try DealerEndpoint(
            context: context, connect: endpoint, identity: identity, security: security,
            options: options)
        dealer = d
        try d.send(.hello(hello))
        lastHeard = MonotonicClock.milliseconds()
        lastBeat = lastHeard
    }

    /// Sends a message to the coordinator.
    public func send(_ message: Message) throws {
        guard let dealer else { throw ZMQError("zmq_send", code: ENOTSOCK) }
        try dealer.send(message)
    }

    /// Waits up to `timeoutMs` for one event, sending heartbeats when due and reconnecting when the
    /// coordinator has been silent too long.
    public func poll(timeoutMs: Int32) throws -> Event? {
        let deadline = MonotonicClock.milliseconds() + UInt64(max(timeoutMs, 0))
        while true {
            let now = MonotonicClock.milliseconds()
            if now - lastHeard > missedAllowed * heartbeatIntervalMs {
                dealer?.close()
                dealer = nil
                let wait = backoff.next()
                usleepMs(wait)
                try open()
                reconnects += 1
                return .reconnected(attempt: backoff.attempt)
            }
            if now - lastBeat >= heartbeatIntervalMs, let dealer {
                sequence += 1
                try? dealer.send(.heartbeat(sequence: sequence, timestampMs: now))
                lastBeat = now
            }
            let untilBeat = Int32(clamping: Int64(lastBeat + heartbeatIntervalMs) - Int64(now))
            let untilDeadline = Int32(clamping: Int64(deadline) - Int64(now))
            let slice = max(0, min(untilBeat, untilDeadline))
            if let dealer, let frames = try dealer.socket.receive(timeoutMs: slice) {
                lastHeard = MonotonicClock.milliseconds()
                backoff.reset()
                do {
                    return .message(try dealer.message(from: frames))
                } catch {
                    return .malformed(error)
                }
            }
            if MonotonicClock.milliseconds() >= deadline { return nil }
        }
    }

    /// Says BYE and closes.
    public func close(reason: ByeReason = .normal, text: String = "") {
        try? dealer?.send(.bye(reason: reason, text: text))
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
