import APTCore

/// A round's work order.
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
    /// Deadline, Unix time in milliseconds.
    public var deadlineMs: UInt64
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
        round: UInt32, deadlineMs: UInt64, payload: Payload, baseRound: UInt32, tensors: [QuantizedTensor],
        policy: Policy
    ) {
        self.round = round
        self.deadlineMs = deadlineMs
        self.payload = payload
        self.baseRound = baseRound
        self.tensors = tensors
        self.policy = policy
    }
}
