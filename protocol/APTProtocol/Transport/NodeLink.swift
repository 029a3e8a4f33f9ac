/// The node's side of the link to the coordinator as a pure state machine: events in, actions out, time
/// given by the caller. No sockets and no clock inside, so every path (heartbeats, silence, backoff,
/// reconnection) is tested with numbers alone.
///
/// The rule it implements: HELLO on every (re)connection; a HEARTBEAT every `heartbeatIntervalMs` while
/// connected; any message from the coordinator counts as life; a coordinator silent for more than
/// `missedAllowed × heartbeatIntervalMs` is gone: disconnect, wait a backoff delay, connect and say HELLO
/// again. The driver must feed every queued message to `received(_:at:)` before it calls `tick(at:)`: a node
/// that was busy training for a while then sees the messages that arrived meanwhile before it judges silence.
public struct NodeLink: Sendable {
    /// What the driver must do.
    public enum Action: Hashable, Sendable {
        /// Open a socket to the coordinator.
        case connect
        /// Send HELLO.
        case sendHello
        /// Send HEARTBEAT with this sequence number.
        case sendHeartbeat(sequence: UInt64)
        /// Close the socket (the coordinator is silent).
        case disconnect
    }

    /// Where the link is.
    public enum State: Hashable, Sendable {
        /// Not started.
        case idle
        /// Connected (or connecting): HELLO sent, waiting for or hearing from the coordinator.
        case connected
        /// Disconnected after silence; reconnecting at `until` (ms).
        case waiting(until: UInt64)
    }

    /// Heartbeat interval, ms.
    public let heartbeatIntervalMs: UInt64
    /// Intervals of silence tolerated.
    public let missedAllowed: UInt64
    /// The current state.
    public private(set) var state: State = .idle
    /// When the coordinator was last heard from (or the link last (re)connected), ms.
    public private(set) var lastHeardMs: UInt64 = 0
    /// When the last heartbeat went out, ms.
    public private(set) var lastBeatMs: UInt64 = 0
    /// Heartbeats sent.
    public private(set) var sequence: UInt64 = 0
    /// Reconnections so far.
    public private(set) var reconnects = 0
    private var backoff: ReconnectBackoff

    /// A link that beats every `heartbeatIntervalMs`, tolerates `missedAllowed` silent intervals and waits
    /// `backoff`'s delays between reconnections.
    public init(heartbeatIntervalMs: UInt64, missedAllowed: UInt64, backoff: ReconnectBackoff) {
        precondition(heartbeatIntervalMs > 0 && missedAllowed > 0, "NodeLink needs a positive interval and allowance")
        self.heartbeatIntervalMs = heartbeatIntervalMs
        self.missedAllowed = missedAllowed
        self.backoff = backoff
    }

    /// Starts the link at `now`.
    public mutating func start(at now: UInt64) -> [Action] {
        precondition(state == .idle, "NodeLink.start called twice")
        state = .connected
        lastHeardMs = now
        lastBeatMs = now
        return [.connect, .sendHello]
    }

    /// The coordinator sent something (any message, well-formed or not, is a sign of life).
    public mutating func received(at now: UInt64) {
        guard state == .connected else { return }
        lastHeardMs = max(lastHeardMs, now)
        backoff.reset()
    }

    /// Time passed: what is due at `now`.
    public mutating func tick(at now: UInt64) -> [Action] {
        switch state {
        case .idle:
            return []
        case .waiting(let until):
            guard now >= until else { return [] }
            state = .connected
            lastHeardMs = now
            lastBeatMs = now
            reconnects += 1
            return [.connect, .sendHello]
        case .connected:
            if now > lastHeardMs && now - lastHeardMs > missedAllowed * heartbeatIntervalMs {
                state = .waiting(until: now + backoff.next())
                return [.disconnect]
            }
            if now >= lastBeatMs + heartbeatIntervalMs {
                sequence += 1
                lastBeatMs = now
                return [.sendHeartbeat(sequence: sequence)]
            }
            return []
        }
    }

    /// When `tick` next has something to do, ms (the driver may sleep until then).
    public var nextDeadline: UInt64 {
        switch state {
        case .idle: return .max
        case .waiting(let until): return until
        case .connected:
            return min(lastBeatMs + heartbeatIntervalMs, lastHeardMs + missedAllowed * heartbeatIntervalMs + 1)
        }
    }
}
