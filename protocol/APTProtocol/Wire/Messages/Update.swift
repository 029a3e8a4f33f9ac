import APTCore

/// A node's result for a round (UPDATE).
public struct Update: Hashable, Sendable {
    /// Round number.
    public var round: UInt32
    /// The TASK's attempt this answers.
    public var attempt: UInt32
    /// Samples trained on.
    public var samplesTrained: UInt64
    /// Steps the node trained.
    public var stepsDone: UInt32
    /// Steps the TASK's policy asked for.
    public var stepsAsked: UInt32
    /// Why training stopped.
    public var stopReason: StopReason
    /// The quantised weight delta, one tensor per parameter tensor.
    public var delta: [QuantizedTensor]
    /// What the round cost.
    public var ledger: LedgerEntry

    /// Creates an UPDATE.
    public init(
        round: UInt32, attempt: UInt32 = 0, samplesTrained: UInt64, stepsDone: UInt32 = 0, stepsAsked: UInt32 = 0,
        stopReason: StopReason = .completed, delta: [QuantizedTensor], ledger: LedgerEntry
    ) {
        self.round = round
        self.attempt = attempt
        self.samplesTrained = samplesTrained
        self.stepsDone = stepsDone
        self.stepsAsked = stepsAsked
        self.stopReason = stopReason
        self.delta = delta
        self.ledger = ledger
    }

    /// Whether the node did less than it was asked (a deadline, a budget or a cancellation stopped it).
    public var isPartial: Bool { stepsDone < stepsAsked || stopReason != .completed }
}

/// Why a node stopped training a round. Unknown values (from a newer minor version) are kept as they are.
public struct StopReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The code on the wire.
    public var rawValue: UInt8
    /// Wraps a code.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Every step asked for was trained.
    public static let completed = StopReason(rawValue: 0)
    /// The TASK's timeout was near: stopped at a step boundary.
    public static let deadline = StopReason(rawValue: 1)
    /// The round's energy allowance would have been exceeded by the next step.
    public static let roundAllowance = StopReason(rawValue: 2)
    /// The node's total energy budget would have been exceeded by the next step.
    public static let energyBudget = StopReason(rawValue: 3)
    /// The coordinator or the operator cancelled the round.
    public static let cancelled = StopReason(rawValue: 4)

    public var description: String {
        switch self {
        case .completed: return "completed"
        case .deadline: return "deadline"
        case .roundAllowance: return "round allowance"
        case .energyBudget: return "energy budget"
        case .cancelled: return "cancelled"
        default: return "stop reason \(rawValue)"
        }
    }
}
