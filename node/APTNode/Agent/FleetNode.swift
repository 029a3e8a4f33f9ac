import APTCore
import APTProtocol
import Foundation

/// `apt-node run`'s loop: the node's link to the coordinator, its training session and its state dir. For each
/// TASK it loads the model from the TASK's codes, trains within the policy and its own budgets (writing its
/// allowance ahead of training), and sends the quantised delta with its ledger entry.
public final class FleetNode {
    /// What a node runs with.
    public struct Configuration: Sendable {
        /// The coordinator's endpoint.
        public var coordinator: String
        /// The node's name.
        public var name: String
        /// Its device.
        public var profile: DeviceProfile
        /// Total energy it may spend, J.
        public var energyBudgetJ: Double
        /// Memory it may use for training, bytes.
        public var memoryBudgetBytes: Int
        /// Its state dir.
        public var stateDirectory: String
        /// Security of the link.
        public var security: Security
        /// Seed of its sampling and rounding.
        public var seed: UInt64

        /// Creates a configuration.
        public init(
            coordinator: String, name: String, profile: DeviceProfile, energyBudgetJ: Double, memoryBudgetBytes: Int,
            stateDirectory: String, security: Security = .plain, seed: UInt64 = 0
        ) {
            self.coordinator = coordinator
            self.name = name
            self.profile = profile
            self.energyBudgetJ = energyBudgetJ
            self.memoryBudgetBytes = memoryBudgetBytes
            self.stateDirectory = stateDirectory
            self.security = security
            self.seed = seed
        }
    }

    /// How a run ended.
    public enum Ending: Equatable, Sendable {
        /// The coordinator finished the run.
        case done
        /// The node's energy budget cannot pay for another step.
        case budgetSpent
    }

    let configuration: Configuration
    let data: Dataset
    let connection: NodeConnection
    let store: NodeStateStore
    var state: NodeState
    var model: ModelSpec?
    var session: TrainingSession?
    var feedback: ErrorFeedback
    let log: (String) -> Void
    /// Rounds this process has trained and reported.
    public private(set) var roundsTrained = 0
    var identity: String {
        configuration.security.routingId.map { String(decoding: $0, as: UTF8.self) } ?? configuration.name
    }

    /// Opens the state dir and connects.
    public init(configuration c: Configuration, data: Dataset, context: ZMQContext, log: @escaping (String) -> Void)
        throws
    {
        configuration = c
        self.data = data
        self.log = log
        store = try NodeStateStore(directory: c.stateDirectory)
        let id = c.security.routingId.map { String(decoding: $0, as: UTF8.self) } ?? c.name
        state = try store.load(identity: id) ?? NodeState(identity: id)
        try store.save(state)
        feedback = ErrorFeedback()
        // HELLO states the whole budget; the coordinator paces it with its ledger, and this node never spends past
        // what its own state says is left.
        connection = try NodeConnection(
            context: context, endpoint: c.coordinator, identity: Array(c.name.utf8),
            hello: Hello(
                name: c.name, profile: c.profile, energyBudgetJ: c.energyBudgetJ,
                memoryBudgetBytes: UInt64(c.memoryBudgetBytes),
                localSamples: UInt64(data.count), capabilities: [.apt, .errorFeedback]),
            security: c.security)
        if state.chargedJ > 0 { log("resuming: \(state.chargedJ) J of \(c.energyBudgetJ) J already spent") }
    }

    /// Runs until the coordinator says BYE or the budget is spent.
    public func run(shouldStop: () -> Bool = { false }) throws -> Ending {
        while !shouldStop() {
            guard let event = try connection.poll(timeoutMs: 200) else { continue }
            switch event {
            case .message(.welcome(let w)):
                model = w.model
                log("welcomed as node \(w.nodeId), model \(w.model.name)")
            case .message(.task(let t)):
                if try train(t) == .budgetSpent {
                    connection.close(reason: .energyBudgetExhausted, text: "spent \(state.chargedJ) J")
                    return .budgetSpent
                }
            case .message(.bye(let reason, let text)):
                log("coordinator: \(text)")
                connection.close()
                return reason == .energyBudgetExhausted || reason == .memoryBudget ? .budgetSpent : .done
            case .message(.error(let code, let text)):
                log("coordinator refused: \(code) \(text)")
            case .malformed(let e):
                log("malformed frame from the coordinator: \(e)")
            default:
                break
            }
        }
        connection.close(reason: .shutdown)
        return .done
    }

    func train(_ t: TrainingTask) throws -> Ending? {
        guard let spec = model else { return nil }
        let start = MonotonicClock.milliseconds()
        let p = t.policy
        if session == nil {
            var c = TrainingConfiguration(model: spec, precision: .apt, tradeoff: p.tradeoff)
            c.batchSize = p.batchSize
            c.learningRate = Float(p.learningRate)
            c.profile = configuration.profile
            c.seed = configuration.seed
            session = try TrainingSession(configuration: c, data: data)
            let sizes = try spec.parameterCounts()
            var bySize: [UInt16: Int] = [:]
            for (i, n) in sizes.enumerated() { bySize[UInt16(i)] = n }
            if let saved = try store.loadResidual(sizes: bySize) { feedback = ErrorFeedback(residuals: saved) }
        }
        // Taken out (not copied) so that training mutates the one copy of the model.
        guard var s = session.take() else { return nil }
        let tensors = try t.tensors.enumerated().map { i, q in try WireTensors.fixedPoint(q, index: i) }
        try s.loadParameters(codes: tensors)
        try s.setWeightBitRanges(p.layerBits.map { $0.min...$0.max })
        let received = s.parameterSnapshot.map { $0.dequantized() }
        let left = configuration.energyBudgetJ - state.chargedJ
        let allowance = min(p.roundEnergyJ > 0 ? p.roundEnergyJ : left, left)
        guard allowance >= s.nextStepCost else {
            session = s
            return .budgetSpent
        }
        state.commit(round: Int(t.round), allowanceJ: allowance)
        try store.save(state)
        let before = s.energyJ
        let deadline = start + UInt64(t.timeoutMs) * 9 / 10
        var reasonStop = StopReason.completed
        let outcome = s.run(
            steps: p.localSteps, energyLimit: before + allowance,
            shouldStop: {
                if MonotonicClock.milliseconds() >= deadline {
                    reasonStop = .deadline
                    return true
                }
                _ = try? self.connection.service()
                return false
            })
        if outcome.stopReason == .energyLimit { reasonStop = .roundAllowance }
        let spent = s.energyJ - before
        var random = RandomSource(seed: configuration.seed &+ UInt64(t.round))
        let after = s.parameterSnapshot.map { $0.dequantized() }
        let delta = zip(after, received).enumerated().map { i, pair in
            let d = zip(pair.0, pair.1).map { $0 - $1 }
            return feedback.compress(
                d, layer: UInt16(i), bits: p.uplinkBits, rounding: .stochastic, topK: p.topK(count: d.count),
                random: &random)
        }
        let update = Update(
            round: t.round, attempt: t.attempt, samplesTrained: UInt64(outcome.samples),
            stepsDone: UInt32(outcome.steps),
            stepsAsked: UInt32(p.localSteps), stopReason: reasonStop, delta: delta,
            ledger: LedgerEntry(
                energyJ: spent, peakMemoryBytes: UInt64(s.peakMemory.totalBytes),
                bits: s.network.precision.map { UInt8(clamping: $0.bits) }, loss: s.lastEpochLoss, accuracy: 0,
                durationS: Double(MonotonicClock.milliseconds() - start) / 1000))
        try connection.send(.update(update))
        state.settle(spentJ: min(spent, allowance))
        state.modelRound = Int(t.round)
        try store.save(state)
        try store.saveResidual(feedback.residuals)
        session = s
        roundsTrained += 1
        log(
            "round \(t.round): \(outcome.steps) steps, loss \(String(format: "%.4f", s.lastEpochLoss)), "
                + "\(String(format: "%.4g", state.chargedJ)) of \(configuration.energyBudgetJ) J, bits "
                + s.network.precision.map { String($0.bits) }.joined(separator: "/"))
        return nil
    }
}
