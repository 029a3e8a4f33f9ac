import APTCore

/// Message type codes (header byte 6).
public enum MessageType: UInt8, Sendable, CaseIterable {
    /// node → coordinator: introduction.
    case hello = 1
    /// coordinator → node: accepted, with id, model and policy.
    case welcome = 2
    /// coordinator → node: train this round.
    case task = 3
    /// node → coordinator: the round's delta and ledger entry.
    case update = 4
    /// coordinator → node: a new policy on its own.
    case policy = 5
    /// either way: liveness.
    case heartbeat = 6
    /// either way: leaving.
    case bye = 7
    /// either way: a refusal.
    case error = 8
}

/// Every message of the protocol.
public enum Message: Hashable, Sendable {
    case hello(Hello)
    case welcome(Welcome)
    case task(TrainingTask)
    case update(Update)
    case policy(Policy)
    case heartbeat(sequence: UInt64, timestampMs: UInt64)
    case bye(reason: ByeReason, text: String)
    case error(code: ErrorCode, text: String)

    /// The type code.
    public var type: MessageType {
        switch self {
        case .hello: return .hello
        case .welcome: return .welcome
        case .task: return .task
        case .update: return .update
        case .policy: return .policy
        case .heartbeat: return .heartbeat
        case .bye: return .bye
        case .error: return .error
        }
    }
}
