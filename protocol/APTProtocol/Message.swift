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

/// Capability bits a node announces in HELLO.
public struct Capabilities: OptionSet, Hashable, Sendable {
    public let rawValue: UInt32
    public init(rawValue: UInt32) { self.rawValue = rawValue }
    /// Can train with APT.
    public static let apt = Capabilities(rawValue: 1 << 0)
    /// Accepts stochastic rounding on the codec.
    public static let stochasticRounding = Capabilities(rawValue: 1 << 1)
    /// Sends top-k sparse deltas.
    public static let topK = Capabilities(rawValue: 1 << 2)
    /// Keeps error-feedback residuals.
    public static let errorFeedback = Capabilities(rawValue: 1 << 3)
    /// Accepts a delta instead of the full model in TASK.
    public static let deltaDownlink = Capabilities(rawValue: 1 << 4)
}

/// Node introduction.
public struct Hello: Hashable, Sendable {
    /// Human-readable node name.
    public var name: String
    /// The protocol version the node speaks.
    public var version: ProtocolVersion
    /// The node's device profile.
    public var profile: DeviceProfile
    /// Total energy the node may spend, J.
    public var energyBudgetJ: Double
    /// Memory the node may use for training, bytes.
    public var memoryBudgetBytes: UInt64
    /// Local training samples.
    public var localSamples: UInt64
    /// What the node can do.
    public var capabilities: Capabilities
    /// Creates a HELLO.
    public init(name: String, version: ProtocolVersion = .current, profile: DeviceProfile, energyBudgetJ: Double,
                memoryBudgetBytes: UInt64, localSamples: UInt64, capabilities: Capabilities) {
        self.name = name
        self.version = version
        self.profile = profile
        self.energyBudgetJ = energyBudgetJ
        self.memoryBudgetBytes = memoryBudgetBytes
        self.localSamples = localSamples
        self.capabilities = capabilities
    }
}

/// Coordinator acceptance.
public struct Welcome: Hashable, Sendable {
    /// The id the coordinator assigned.
    public var nodeId: UInt32
    /// The model every node trains.
    public var model: ModelSpec
    /// The node's policy.
    public var policy: Policy
    /// Creates a WELCOME.
    public init(nodeId: UInt32, model: ModelSpec, policy: Policy) {
        self.nodeId = nodeId
        self.model = model
        self.policy = policy
    }
}

/// A round's work order.
public struct Task: Hashable, Sendable {
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
    public init(round: UInt32, deadlineMs: UInt64, payload: Payload, baseRound: UInt32, tensors: [QuantizedTensor],
                policy: Policy) {
        self.round = round
        self.deadlineMs = deadlineMs
        self.payload = payload
        self.baseRound = baseRound
        self.tensors = tensors
        self.policy = policy
    }
}

/// A node's ledger entry for one round.
public struct LedgerEntry: Hashable, Sendable {
    /// Energy spent in the round, J.
    public var energyJ: Double
    /// Peak training memory in the round, bytes.
    public var peakMemoryBytes: UInt64
    /// Final weight bits per weighted layer.
    public var bits: [UInt8]
    /// Mean training loss.
    public var loss: Double
    /// Local accuracy (0…1).
    public var accuracy: Double
    /// Wall-clock duration, seconds.
    public var durationS: Double
    /// Creates an entry.
    public init(energyJ: Double, peakMemoryBytes: UInt64, bits: [UInt8], loss: Double, accuracy: Double, durationS: Double) {
        self.energyJ = energyJ
        self.peakMemoryBytes = peakMemoryBytes
        self.bits = bits
        self.loss = loss
        self.accuracy = accuracy
        self.durationS = durationS
    }
}

/// A node's result for a round.
public struct Update: Hashable, Sendable {
    /// Round number.
    public var round: UInt32
    /// Samples trained on.
    public var samplesTrained: UInt64
    /// The quantised weight delta, one tensor per parameter tensor.
    public var delta: [QuantizedTensor]
    /// What the round cost.
    public var ledger: LedgerEntry
    /// Creates an UPDATE.
    public init(round: UInt32, samplesTrained: UInt64, delta: [QuantizedTensor], ledger: LedgerEntry) {
        self.round = round
        self.samplesTrained = samplesTrained
        self.delta = delta
        self.ledger = ledger
    }
}

/// Why a peer leaves.
public enum ByeReason: UInt8, Sendable {
    /// Nothing wrong.
    case normal = 0
    /// The node's energy budget is spent.
    case energyBudgetExhausted = 1
    /// The node's memory budget cannot hold the work.
    case memoryBudget = 2
    /// The process is shutting down.
    case shutdown = 3
    /// The peer gave up after an error.
    case failure = 4
}

/// Error codes carried by ERROR.
public enum ErrorCode: UInt16, Sendable {
    /// The frame could not be decoded.
    case malformed = 1
    /// Another major version.
    case unsupportedVersion = 2
    /// Not allowed now (e.g. UPDATE before WELCOME).
    case unexpected = 3
    /// A value was refused (NaN in a delta, wrong shape, lying budget).
    case rejected = 4
    /// The peer is not known.
    case unknownPeer = 5
    /// Something failed inside the sender.
    case internalError = 6
}

/// Every message of the protocol.
public enum Message: Hashable, Sendable {
    case hello(Hello)
    case welcome(Welcome)
    case task(Task)
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
