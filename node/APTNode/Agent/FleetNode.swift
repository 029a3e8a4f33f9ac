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
        /// How it trains: `.apt` (fixed point, adaptive bits, quantised deltas) or `.fp32` (the float32 FedAvg
        /// baseline: it does not announce the APT capability, so the coordinator sends it float32 models and
        /// policies asking for float32 deltas).
        public var precision: PrecisionMode = .apt
        /// The round before whose UPDATE this process kills itself with SIGKILL, for crash tests
        /// (`APT_NODE_CRASH_AT=before-update:ROUND`; nil: never).
        public var crashBeforeUpdateRound: Int?

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
    let log: (LogRecord) -> Void
    var stopRequested: () -> Bool = { false }
    var handshakeTrouble = false
    /// Rounds this process has trained and reported.
    public private(set) var roundsTrained = 0
    /// Whether the coordinator has welcomed this node on the current connection.
    public private(set) var welcomed = false
    var identity: String {
        configuration.security.routingId.map { String(decoding: $0, as: UTF8.self) } ?? configuration.name
    }

    /// Opens the state dir and connects.
    public init(
        configuration c: Configuration, data: Dataset, context: ZMQContext, log: @escaping (LogRecord) -> Void
    ) throws {
        configuration = c
        self.data = data
        self.log = log
        store = try NodeStateStore(directory: c.stateDirectory)
        let id = c.security.routingId.map { String(decoding: $0, as: UTF8.self) } ?? c.name
        state = try store.load(identity: id, name: c.name) ?? NodeState(identity: id, name: c.name)
        let rotatedFrom = state.identity != id ? state.identity : nil
        if rotatedFrom != nil { state.rotate(to: id) }
        if state.name == nil { state.name = c.name }
        try store.save(state)
        let before = state.chargedBeforeIdentityJ ?? 0
        feedback = ErrorFeedback()
        // HELLO states the whole budget; the coordinator paces it with its ledger, and this node never spends past
        // what its own state says is left.
        connection = try NodeConnection(
            context: context, endpoint: c.coordinator, identity: Array(c.name.utf8),
            hello: Hello(
                name: c.name, profile: c.profile, energyBudgetJ: max(0, c.energyBudgetJ - before),
                memoryBudgetBytes: UInt64(c.memoryBudgetBytes),
                localSamples: UInt64(data.count), capabilities: c.precision == .fp32 ? [] : [.apt, .errorFeedback]),
            security: c.security)
        if let old = rotatedFrom {
            log(
                LogRecord(
                    "key-rotated",
                    "this node's key changed (was \(old.prefix(12))…): the coordinator sees a new identity with the "
                        + "\(Self.joules(max(0, c.energyBudgetJ - before))) this node has left",
                    [("previous_identity", .string(old)), ("identity", .string(id))]))
        }
        if state.chargedJ > 0 {
            log(
                LogRecord(
                    "resuming",
                    "resuming: \(Self.joules(state.chargedJ)) of \(Self.joules(c.energyBudgetJ)) already spent",
                    [("spent_j", .number(state.chargedJ)), ("budget_j", .number(c.energyBudgetJ))]))
        }
        log(
            LogRecord(
                "connecting", "connecting to \(c.coordinator) as \(c.name) (\(data.count) samples)",
                [("coordinator", .string(c.coordinator)), ("samples", .integer(data.count))]))
    }

    /// Runs until the coordinator says BYE, the budget is spent or `shouldStop` says so (checked between rounds
    /// and between training steps: a round in progress then ends at a step boundary and its partial update is
    /// sent, marked cancelled).
    public func run(shouldStop: @escaping () -> Bool = { false }) throws -> Ending {
        stopRequested = shouldStop
        defer { stopRequested = { false } }
        while !shouldStop() {
            guard let event = try connection.poll(timeoutMs: 200) else { continue }
            switch event {
            case .message(.welcome(let w)):
                model = w.model
                welcomed = true
                log(
                    LogRecord(
                        "joined", "welcomed as node \(w.nodeId), model \(w.model.name)",
                        [("node_id", .integer(Int(w.nodeId))), ("model", .string(w.model.name))]))
            case .message(.task(let t)):
                if try train(t) == .budgetSpent {
                    connection.close(reason: .energyBudgetExhausted, text: "spent \(state.chargedJ) J")
                    return .budgetSpent
                }
            case .message(.policy(let p)):
                // The next TASK carries the policy to train with; one this node cannot hold is refused now.
                if let refusal = refusal(of: p) {
                    try? connection.send(.error(code: .cannotComply, text: refusal))
                    log(LogRecord("cannot-comply", "cannot comply with the new policy: \(refusal)"))
                } else {
                    // Its bit ranges bound the controller from now on; the rest takes effect with the next TASK.
                    if var s = session.take() {
                        try? Self.bound(&s, by: p)
                        session = s
                    }
                    log(LogRecord("policy", "new policy: " + Self.describe(p)))
                }
            case .message(.bye(.shutdown, let text)):
                // The coordinator is going down for a restart: the link reconnects when it is back.
                log(
                    LogRecord(
                        "coordinator-shutdown", "coordinator shutting down (\(text)): waiting for it to come back"))
            case .message(.bye(let reason, let text)):
                log(LogRecord("bye", "coordinator: \(text)", [("reason", .string("\(reason)"))]))
                connection.close()
                return reason == .energyBudgetExhausted || reason == .memoryBudget ? .budgetSpent : .done
            case .message(.error(let code, let text)):
                log(
                    LogRecord(
                        "refused", "coordinator refused: \(code): \(text)",
                        [("code", .integer(Int(code.rawValue)))]))
            case .malformed(let e):
                log(LogRecord("malformed", "malformed frame from the coordinator: \(e)"))
            case .reconnected(let attempt):
                let hint =
                    welcomed
                    ? ""
                    : configuration.security == .plain
                        ? "; is apt-coord serve running there?"
                        : "; is apt-coord serve running there, and is --coordinator-key its public key?"
                welcomed = false
                log(
                    LogRecord(
                        "reconnecting",
                        "no word from the coordinator at \(configuration.coordinator) for "
                            + "\(connection.silenceAllowedMs / 1000) s: reconnecting (attempt \(attempt))\(hint)",
                        [("attempt", .integer(attempt))]))
            case .handshake(.succeeded):
                // Worth a line only after a failure was reported.
                if handshakeTrouble { log(LogRecord("secured", "CURVE handshake with the coordinator succeeded")) }
                handshakeTrouble = false
            case .handshake(.refused(let status)):
                handshakeTrouble = true
                log(
                    LogRecord(
                        "key-refused",
                        "the coordinator at \(configuration.coordinator) refused this node's key (ZAP status \(status)): "
                            + "is this node's public key on its allow-list (apt-coord serve --allow)? Still trying.",
                        [("status", .integer(status))]))
            case .handshake(.failed(let detail)):
                handshakeTrouble = true
                log(
                    LogRecord(
                        "handshake-failed",
                        "the CURVE handshake with \(configuration.coordinator) failed: \(detail); is --coordinator-key "
                            + "the coordinator's public key? Still trying.", [("detail", .string(detail))]))
            default:
                break
            }
        }
        connection.close(reason: .shutdown)
        return .done
    }

    /// The training configuration a policy asks for.
    func trainingConfiguration(_ p: Policy, model spec: ModelSpec) -> TrainingConfiguration {
        var c = TrainingConfiguration(model: spec, precision: configuration.precision, tradeoff: p.tradeoff)
        c.batchSize = p.batchSize
        c.learningRate = Float(p.learningRate)
        c.profile = configuration.profile
        c.seed = configuration.seed
        // The session is built at a width every layer's range allows, so that building it never holds wider
        // weights than the policy (and the memory budget it was planned for) permits.
        if let ceiling = p.layerBits.map(\.max).min(), let floor = p.layerBits.map(\.min).max(), floor <= ceiling {
            c.quantization.initialWeightBits = min(max(c.quantization.initialWeightBits, floor), ceiling)
        }
        return c
    }

    /// Why this node cannot train under `p` within its memory budget (the engine's own figure for the policy's
    /// batch at its widest bits), or nil when it can.
    func refusal(of p: Policy) -> String? {
        guard let spec = model else { return nil }
        let c = trainingConfiguration(p, model: spec)
        do {
            let memory = try MemoryModel(
                spec: spec, mode: c.precision, quantization: c.quantization, momentum: c.momentum)
            guard p.layerBits.count == memory.weightedLayerCount else {
                return "the policy has \(p.layerBits.count) bit ranges for \(memory.weightedLayerCount) weighted layers"
            }
            let widest = p.codeBits(widest: true, otherwise: (c.activationBitRange, c.errorBitRange))
            let need = memory.footprint(
                batch: min(p.batchSize, data.count), weightBits: p.layerBits.map(\.max),
                activationBits: widest.activations, errorBits: widest.errors)
            guard need.totalBytes <= configuration.memoryBudgetBytes else {
                return
                    "batch \(p.batchSize) at up to \(p.layerBits.map { String($0.max) }.joined(separator: "/")) bits "
                    + "needs \(need.totalBytes) B of training memory; this node's memory budget is "
                    + "\(configuration.memoryBudgetBytes) B"
            }
        } catch {
            return "\(error)"
        }
        return nil
    }

    func train(_ t: TrainingTask) throws -> Ending? {
        guard let spec = model else { return nil }
        let start = MonotonicClock.milliseconds()
        let p = t.policy
        if let refusal = refusal(of: p) {
            // Nothing is committed: the budget stays as it was.
            try? connection.send(.error(code: .cannotComply, text: "round \(t.round): \(refusal)"))
            log(
                LogRecord(
                    "cannot-comply", "round \(t.round): cannot comply: \(refusal)", [("round", .integer(Int(t.round)))])
            )
            return nil
        }
        let wanted = trainingConfiguration(p, model: spec)
        if let c = session?.configuration,
            c.batchSize != wanted.batchSize || c.tradeoff != wanted.tradeoff || c.learningRate != wanted.learningRate
        {
            // A new batch size, knob or learning rate: a session for them (the model comes with the TASK).
            session = nil
        }
        if session == nil {
            session = try TrainingSession(configuration: wanted, data: data)
            if roundsTrained == 0 {
                let sizes = try spec.parameterCounts()
                var bySize: [UInt16: Int] = [:]
                for (i, n) in sizes.enumerated() { bySize[UInt16(i)] = n }
                if let saved = try store.loadResidual(sizes: bySize) { feedback = ErrorFeedback(residuals: saved) }
            }
        }
        // Taken out (not copied) so that training mutates the one copy of the model.
        guard var s = session.take() else { return nil }
        do {
            if s.network.mode.isFixedPoint {
                let tensors = try t.tensors.enumerated().map { i, q in try WireTensors.fixedPoint(q, index: i) }
                try s.loadParameters(codes: tensors)
            } else {
                // A float32 node takes the model as reals, whatever form it came in.
                try s.loadParameters(t.tensors.map { $0.dequantized() })
            }
            try Self.bound(&s, by: p)
        } catch {
            session = nil
            try? connection.send(.error(code: .rejected, text: "round \(t.round): \(error)"))
            log(LogRecord("task-refused", "round \(t.round): refused the task: \(error)"))
            return nil
        }
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
        let steps = p.localSteps > 0 ? p.localSteps : p.localEpochs * s.stepsPerEpoch
        let outcome = s.run(
            steps: steps, energyLimit: before + allowance,
            shouldStop: {
                if self.stopRequested() {
                    reasonStop = .cancelled
                    return true
                }
                if MonotonicClock.milliseconds() >= deadline {
                    reasonStop = .deadline
                    return true
                }
                _ = try? self.connection.service()
                return false
            })
        if outcome.stopReason == .energyLimit { reasonStop = allowance < left ? .roundAllowance : .energyBudget }
        let spent = s.energyJ - before
        var random = RandomSource(seed: configuration.seed &+ UInt64(t.round))
        // The delta, one tensor at a time: what was trained, minus the TASK's codes folded straight from the
        // message (no float copy of the received model is kept through the round).
        var diverged: Int? = nil
        let delta = s.parameterSnapshot.enumerated().map { i, trained in
            var d = trained.dequantized()
            d.withUnsafeMutableBufferPointer { t.tensors[i].accumulate(into: $0, weight: -1) }
            guard p.uplinkBits == QuantizedTensor.float32Bits else {
                return feedback.compress(
                    d, layer: UInt16(i), bits: p.uplinkBits, rounding: .stochastic, topK: p.topK(count: d.count),
                    random: &random)
            }
            // Float32 deltas (the FedAvg baseline) go as they are: no quantisation, so no residual to feed back.
            if d.contains(where: { !$0.isFinite }) {
                diverged = diverged ?? i
                d = [Float](repeating: 0, count: d.count)
            }
            return QuantizedTensor.float32(d, layer: UInt16(i), topK: p.topK(count: d.count))
        }
        if let i = diverged {
            // Float32 training that overflowed has nothing worth sending: say so, and start over from the next TASK.
            session = nil
            try? connection.send(
                .error(code: .internalError, text: "round \(t.round): training diverged (tensor \(i) is not finite)"))
            log(LogRecord("diverged", "round \(t.round): training diverged (tensor \(i) is not finite); nothing sent"))
            state.settle(spentJ: min(spent, allowance))
            try store.save(state)
            return nil
        }
        let accuracy = outcome.samples > 0 ? Double(outcome.correct) / Double(outcome.samples) : 0
        let bits = s.network.precision.map(\.bits)
        let update = Update(
            round: t.round, attempt: t.attempt, samplesTrained: UInt64(outcome.samples),
            stepsDone: UInt32(outcome.steps),
            stepsAsked: UInt32(clamping: steps), stopReason: reasonStop, delta: delta,
            ledger: LedgerEntry(
                energyJ: spent, peakMemoryBytes: UInt64(s.peakMemory.totalBytes),
                bits: bits.map { UInt8(clamping: $0) }, loss: s.lastEpochLoss, accuracy: accuracy,
                durationS: Double(MonotonicClock.milliseconds() - start) / 1000))
        let frame = Frame.encode(.update(update))
        if configuration.crashBeforeUpdateRound == Int(t.round) {
            // A crash test's power cut: the allowance is committed in the state dir, the UPDATE never leaves.
            log(LogRecord("crash", "crash point before-update:\(t.round) reached: SIGKILL"))
            kill(getpid(), SIGKILL)
        }
        try connection.send(frame: frame)
        state.settle(spentJ: min(spent, allowance))
        state.modelRound = Int(t.round)
        try store.save(state)
        try store.saveResidual(feedback.residuals)
        session = s
        roundsTrained += 1
        let bytes = frame.count
        let partial = reasonStop == .completed ? "" : " (partial: \(reasonStop))"
        log(
            LogRecord(
                "round",
                "round \(t.round): \(outcome.steps) steps\(partial), loss \(String(format: "%.4f", s.lastEpochLoss)), "
                    + "accuracy \(String(format: "%.4f", accuracy)), "
                    + "spent \(Self.joules(state.chargedJ)) of \(Self.joules(configuration.energyBudgetJ)), "
                    + "bits \(bits.map(String.init).joined(separator: "/")), sent \(bytes) B",
                [
                    ("round", .integer(Int(t.round))), ("steps", .integer(outcome.steps)),
                    ("samples", .integer(outcome.samples)), ("stop", .string(reasonStop.description)),
                    ("loss", .number(s.lastEpochLoss)), ("accuracy", .number(accuracy)),
                    ("energy_j", .number(spent)), ("spent_j", .number(state.chargedJ)),
                    ("budget_j", .number(configuration.energyBudgetJ)),
                    ("peak_memory_bytes", .integer(s.peakMemory.totalBytes)),
                    ("bits", .list(bits.map { .integer($0) })), ("bytes_up", .integer(bytes)),
                ]))
        return nil
    }

    static func joules(_ j: Double) -> String { String(format: "%.4g J", j) }

    static func describe(_ p: Policy) -> String {
        let ranges = { (r: [Policy.BitRange]) in r.map { "\($0.min)-\($0.max)" }.joined(separator: "/") }
        return "bits \(ranges(p.layerBits)), knob \(p.tradeoff), "
            + (p.activationBits.isEmpty ? "" : "activation bits \(ranges(p.activationBits)), ")
            + (p.errorBits.isEmpty ? "" : "error bits \(ranges(p.errorBits)), ")
            + "batch \(p.batchSize), steps \(p.localSteps), uplink \(p.uplinkBits) bits, "
            + "allowance \(joules(p.roundEnergyJ))"
    }

    /// Bounds `s`'s controller by `p`'s ranges: weight bits always; activation and error widths when the policy
    /// gives them (the controller then adapts them within, a kind it leaves out keeping the knob's range), and
    /// back to the knob's ranges when a later policy gives none.
    static func bound(_ s: inout TrainingSession, by p: Policy) throws(ConfigurationError) {
        try s.setWeightBitRanges(p.layerBits.map { $0.min...$0.max })
        guard !p.activationBits.isEmpty || !p.errorBits.isEmpty || s.codeBitRanges != nil else { return }
        let c = s.configuration
        let n = s.network.activationBits.count
        let ranges = { (given: [Policy.BitRange], knob: ClosedRange<Int>) -> [ClosedRange<Int>] in
            given.isEmpty ? .init(repeating: knob, count: n) : given.map { $0.min...$0.max }
        }
        try s.setCodeBitRanges(
            activations: ranges(p.activationBits, c.activationBitRange), errors: ranges(p.errorBits, c.errorBitRange))
    }
}
