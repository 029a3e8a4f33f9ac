import APTCore
import APTProtocol
import Foundation

/// What the policy engine knows of one node when it plans the node's next round.
public struct NodeBudget: Hashable, Sendable {
    /// The node's device (its pricing and how it multiplies).
    public var profile: DeviceProfile
    /// Total energy the node may spend, J.
    public var energyBudgetJ: Double
    /// Energy it has spent so far (its ledger), J.
    public var energySpentJ: Double
    /// Memory it may use for training, bytes.
    public var memoryBudgetBytes: Int
    /// Its local training samples.
    public var localSamples: Int
    /// How it trains: `.apt` (a node announcing the APT capability) or `.fp32` (a float32 node, the FedAvg
    /// baseline: float32 model down, float32 deltas up).
    public var precision: PrecisionMode

    /// Creates a budget.
    public init(
        profile: DeviceProfile, energyBudgetJ: Double, energySpentJ: Double, memoryBudgetBytes: Int, localSamples: Int,
        precision: PrecisionMode = .apt
    ) {
        self.precision = precision
        self.profile = profile
        self.energyBudgetJ = energyBudgetJ
        self.energySpentJ = energySpentJ
        self.memoryBudgetBytes = memoryBudgetBytes
        self.localSamples = localSamples
    }

    /// Energy left, J.
    public var energyLeftJ: Double { max(0, energyBudgetJ - energySpentJ) }
}

/// A node's policy for a round and why it was chosen.
public struct PlannedPolicy: Hashable, Sendable {
    /// The policy to push.
    public var policy: Policy
    /// The energy one of its steps costs at the widest bits it allows (what the node's session will predict), J.
    public var stepCostJ: Double
    /// The peak training memory at the widest bits it allows, bytes.
    public var peakMemoryBytes: Int
    /// Why: the budgets and the choices they led to, for the ledger.
    public var reason: String
}

/// Why a node gets no task.
public enum PolicyRefusal: Error, Hashable, Sendable, CustomStringConvertible {
    /// Even the leanest configuration (8-bit weights, batch 1) needs more memory than the budget.
    case memory(needed: Int, budget: Int)
    /// Not one step of the cheapest configuration fits the energy left.
    case energy(stepCostJ: Double, leftJ: Double)

    public var description: String {
        switch self {
        case .memory(let n, let b):
            return "memory budget \(b) bytes is below the \(n) bytes one step of batch 1 needs at its narrowest"
        case .energy(let c, let l): return "one step costs \(joules(c)), only \(joules(l)) left"
        }
    }
}

/// Chooses each node's policy from its budgets, the model and the engine's own cost and memory models
/// (`CostModel`, `MemoryModel`: the figures the node's session enforces), so that it can take part in every
/// remaining round without exceeding either budget (docs/policy.md):
///
/// 1. Memory: the largest batch (the default, halved until it fits) at the widest weight bits (the knob's
///    most, else 8) whose peak training memory fits the memory budget.
/// 2. Energy: the round's allowance is the energy left divided evenly over the rounds left. The node trains as
///    many steps as fit the allowance at the priced cost of a step at its widest bits, up to the default steps
///    per round; when not one step fits at the default knob, the aggressive knob (narrower activations, errors
///    and weights) is tried; when the paced share cannot pay one step at either knob but the energy left can, the
///    node trains one lean step a round while it lasts; when not one step fits at all, the node gets no task.
/// 3. The steps' price plus half a step of headroom (never more than the node has left) is written into the
///    policy (`roundEnergyJ`); the node stops at it.
public struct PolicyEngine: Sendable {
    /// The model the fleet trains.
    public let model: ModelSpec
    /// Local steps per round at most.
    public var stepsPerRound: Int
    /// Samples per step by default.
    public var batchSize: Int
    /// The default APT knob.
    public var tradeoff: Double
    /// The knob tried when the default does not afford a step.
    public var leanTradeoff: Double
    /// SGD learning rate and momentum.
    public var learningRate: Double
    /// Momentum (priced in memory and energy).
    public var momentum: Float
    /// Uplink bits and density.
    public var uplinkBits: Int
    /// Fraction of delta values sent.
    public var uplinkDensity: Double
    /// The activation-code widths every APT node's controller adapts within (nil: what the knob gives, its own
    /// ranges from knob 0.75, else one width). Either range goes into the policy; memory and energy are planned at
    /// its top.
    public var activationBits: ClosedRange<Int>?
    /// The error-code widths every APT node's controller adapts within, as `activationBits`.
    public var errorBits: ClosedRange<Int>?

    /// An engine for `model` with these defaults.
    public init(
        model: ModelSpec, stepsPerRound: Int = 50, batchSize: Int = 64, tradeoff: Double = 0.5,
        leanTradeoff: Double = 0.75,
        learningRate: Double = 0.05, momentum: Float = 0.9, uplinkBits: Int = 8, uplinkDensity: Double = 1,
        activationBits: ClosedRange<Int>? = nil, errorBits: ClosedRange<Int>? = nil
    ) {
        self.model = model
        self.stepsPerRound = stepsPerRound
        self.batchSize = batchSize
        self.tradeoff = tradeoff
        self.leanTradeoff = leanTradeoff
        self.learningRate = learningRate
        self.momentum = momentum
        self.uplinkBits = uplinkBits
        self.uplinkDensity = uplinkDensity
        self.activationBits = activationBits
        self.errorBits = errorBits
    }

    /// The policy for `node`'s next round, with `roundsLeft` rounds (this one included) still to come.
    public func plan(for node: NodeBudget, roundsLeft: Int) throws -> PlannedPolicy {
        precondition(roundsLeft >= 1, "plan needs at least this round")
        let paced = node.energyLeftJ / Double(roundsLeft)
        var cheapest = Double.infinity
        var memoryNeeded = Int.max
        // Paced first; a node whose paced share cannot pay one step at either knob trains one step a round while
        // its energy lasts, at the lean knob (rather than sitting out every round until the last few).
        let mode = node.precision
        // A float32 node has no knob and no weight bits to choose: one configuration, float32 deltas up.
        let fp32 = mode == .fp32
        for (allowance, mostSteps, knobs) in [
            (paced, stepsPerRound, fp32 ? [tradeoff] : [tradeoff, leanTradeoff]),
            (node.energyLeftJ, 1, fp32 ? [tradeoff] : [leanTradeoff, tradeoff]),
        ] {
            for knob in knobs {
                let c = TrainingConfiguration(model: model, precision: mode, tradeoff: knob)
                let memory = try MemoryModel(spec: model, mode: mode, quantization: c.quantization, momentum: momentum)
                let costs = try CostModel(
                    spec: model, mode: mode, quantization: c.quantization, momentum: momentum, profile: node.profile)
                let layers = memory.weightedLayerCount
                // The code widths' ranges (APT only: the engine's, else the knob's where it adapts them), written
                // into the policy and planned at their tops.
                let codes =
                    fp32
                    ? [nil, nil] : [activationBits ?? c.controller.activationBits, errorBits ?? c.controller.errorBits]
                let widest = codes.map { r in r.map { [Int](repeating: $0.upperBound, count: layers) } }
                let codeRanges = codes.map { r in
                    r.map { [Policy.BitRange](repeating: .init(min: $0.lowerBound, max: $0.upperBound), count: layers) }
                        ?? []
                }
                // 1. Memory: the largest batch, at the widest bits, that fits.
                var chosen: (bits: Int, batch: Int, bytes: Int)? = nil
                var batch = max(1, min(batchSize, node.localSamples))
                search: while batch >= 1 {
                    for bits in fp32 ? [16] : Set([c.controller.maxBits, 8]).sorted(by: >) {
                        let bytes = memory.footprint(
                            batch: batch, weightBits: [Int](repeating: bits, count: layers),
                            activationBits: widest[0], errorBits: widest[1]
                        ).totalBytes
                        memoryNeeded = min(memoryNeeded, bytes)
                        if bytes <= node.memoryBudgetBytes {
                            chosen = (bits, batch, bytes)
                            break search
                        }
                    }
                    batch /= 2
                }
                guard let fit = chosen else { continue }
                // 2. Energy: steps that fit the allowance at the widest bits.
                let step = costs.stepJoules(
                    batch: fit.batch, weightBits: [Int](repeating: fit.bits, count: layers),
                    activationBits: widest[0], errorBits: widest[1])
                cheapest = min(cheapest, step)
                let steps = min(mostSteps, Int((allowance / step).rounded(.down)))
                guard steps >= 1 else { continue }
                // (A float32 node ignores the bit ranges; 16…16 says there is nothing to adapt.)
                let low = fp32 ? fit.bits : min(c.controller.minBits, fit.bits)
                let policy = Policy(
                    layerBits: [Policy.BitRange](repeating: .init(min: low, max: fit.bits), count: layers),
                    tradeoff: knob, localEpochs: 0, localSteps: steps, batchSize: fit.batch, learningRate: learningRate,
                    uplinkBits: fp32 ? QuantizedTensor.float32Bits : uplinkBits, uplinkDensity: uplinkDensity,
                    // Half a step of headroom over the steps' price, so that rounding never costs the last step; it
                    // cannot buy another one, and never exceeds what the node has left.
                    roundEnergyJ: min(node.energyLeftJ, (Double(steps) + 0.5) * step), activationBits: codeRanges[0],
                    errorBits: codeRanges[1])
                return PlannedPolicy(
                    policy: policy, stepCostJ: step, peakMemoryBytes: fit.bytes,
                    reason: (fp32
                        ? "\(steps) steps of batch \(fit.batch) in float32: "
                        : "\(steps) steps of batch \(fit.batch) at ≤ \(fit.bits)-bit weights"
                            + Self.describe(codes[0], "activations") + Self.describe(codes[1], "errors")
                            + ", knob \(knob): ")
                        + "\(joules(Double(steps) * step)) of the round's \(joules(allowance)) allowance "
                        + "(\(joules(node.energyLeftJ)) left over "
                        + "\(roundsLeft) rounds); \(fit.bytes) of \(node.memoryBudgetBytes) bytes")
            }
        }
        if memoryNeeded > node.memoryBudgetBytes && cheapest == .infinity {
            throw PolicyRefusal.memory(needed: memoryNeeded, budget: node.memoryBudgetBytes)
        }
        throw PolicyRefusal.energy(stepCostJ: cheapest, leftJ: node.energyLeftJ)
    }
}

extension PolicyEngine {
    /// `, activations 6–8 bits` for a code-width range in a policy's reason; empty without one.
    static func describe(_ range: ClosedRange<Int>?, _ kind: String) -> String {
        guard let range else { return "" }
        let bits = range.count == 1 ? "\(range.lowerBound)" : "\(range.lowerBound)–\(range.upperBound)"
        return ", \(kind) \(bits) bits"
    }
}

/// Joules with four significant digits, for reasons a person reads (the ledger keeps the exact figures).
func joules(_ j: Double) -> String { String(format: "%.4g J", j) }
