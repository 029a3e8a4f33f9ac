import APTCore

/// A round's work order (TASK).
public struct TrainingTask: Hashable, Sendable {
    /// Whether `tensors` is the whole global model or a delta from the node's last model.
    public enum Payload: UInt8, Sendable {
        /// The global model itself.
        case fullModel = 0
        /// Global model minus the model of round `baseRound`.
        case delta = 1
    }
    /// Round number.
    public var round: UInt32
    /// Which attempt at this round (a round without quorum is retried with the next attempt); an UPDATE
    /// echoes it, so a replayed or late UPDATE of an earlier attempt is recognised.
    public var attempt: UInt32
    /// How long the node has, in milliseconds from when it receives the TASK: a duration on the node's
    /// own monotonic clock, since boards often have no real-time clock.
    public var timeoutMs: UInt32
    /// Full model or delta.
    public var payload: Payload
    /// For a delta: the round whose model it applies to.
    public var baseRound: UInt32
    /// One tensor per parameter tensor of the model.
    public var tensors: [QuantizedTensor]
    /// The policy for this round.
    public var policy: Policy
    /// Creates a TASK.
    public init(
        round: UInt32, attempt: UInt32 = 0, timeoutMs: UInt32, payload: Payload, baseRound: UInt32,
        tensors: [QuantizedTensor], policy: Policy
    ) {
        self.round = round
        self.attempt = attempt
        self.timeoutMs = timeoutMs
        self.payload = payload
        self.baseRound = baseRound
        self.tensors = tensors
        self.policy = policy
    }
}
