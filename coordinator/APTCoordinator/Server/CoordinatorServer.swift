import APTCore
import APTProtocol
import Foundation

/// `apt-coord serve`'s loop: one thread owns the ROUTER socket and drives the round machine, the aggregator,
/// the policy engine and the ledger with what arrives. The global model lives here in float32.
public final class CoordinatorServer {
    /// What a server runs.
    public struct Configuration: Sendable {
        /// Where to bind.
        public var bind: String
        /// The ledger file.
        public var ledgerPath: String
        /// The model every node trains.
        public var model: ModelSpec
        /// Rounds, quorum, fraction and timeout.
        public var rounds: RoundMachine.Configuration
        /// Security of the socket.
        public var security: Security
        /// Plain mode off loopback, forced.
        public var allowPlainOffLoopback: Bool
        /// Local steps per round at most.
        public var stepsPerRound: Int
        /// Test data to evaluate the global model on after each round, if any.
        public var evaluation: Dataset?
        /// Seed of the initial model.
        public var seed: UInt64
        /// How a round's deltas are combined.
        public var aggregation: AggregationRule = .fedAvg
        /// Deltas above this L2 norm are scaled down to it (nil: no clipping).
        public var clipNorm: Double?
        /// Server learning rate (nil: the rule's default).
        public var serverLearningRate: Double?
        /// Where to write Prometheus metrics after every round (nil: none).
        public var metricsPath: String?
        /// Bits per value of an APT node's delta (a float32 node always sends binary32).
        public var uplinkBits = 8
        /// Fraction of a delta's values sent (top-k); 1 sends them all.
        public var uplinkDensity = 1.0
        /// The activation-code widths every APT node's controller adapts within (nil: what each policy's knob gives).
        public var activationBits: ClosedRange<Int>?
        /// The error-code widths every APT node's controller adapts within (nil: what each policy's knob gives).
        public var errorBits: ClosedRange<Int>?
        /// Where to kill this process with SIGKILL, for crash tests (`APT_COORD_CRASH_AT`; nil: nowhere).
        public var crashPoint: CrashPoint?

        /// Creates a configuration.
        public init(
            bind: String, ledgerPath: String, model: ModelSpec, rounds: RoundMachine.Configuration,
            security: Security = .plain, allowPlainOffLoopback: Bool = false, stepsPerRound: Int = 50,
            evaluation: Dataset? = nil, seed: UInt64 = 0
        ) {
            self.bind = bind
            self.ledgerPath = ledgerPath
            self.model = model
            self.rounds = rounds
            self.security = security
            self.allowPlainOffLoopback = allowPlainOffLoopback
            self.stepsPerRound = stepsPerRound
            self.evaluation = evaluation
            self.seed = seed
        }
    }

    let configuration: Configuration
    let router: RouterEndpoint
    let ledger: LedgerStore
    let check: DeltaCheck
    let policies: PolicyEngine
    let tensorSizes: [Int]
    var machine: RoundMachine
    var global: [[Float]]
    var peers: [String: (address: PeerAddress, hello: Hello, id: UInt32)] = [:]
    var aggregator: RoundAggregator
    var optimizer: ServerOptimizer
    var participations: [ParticipationRecord] = []
    var pendingUpdates: [String: Update] = [:]
    /// The wire size of each pending UPDATE, as received.
    var pendingUpdateBytes: [String: Int] = [:]
    var taskBytes: [String: Int] = [:]
    /// Per node, the weight bits per layer it last reported (the format its TASK model is sent in).
    var reportedBits: [String: [Int]] = [:]
    /// Per node, the policy of the TASK it was last sent (what its UPDATE is audited against).
    var sentPolicies: [String: Policy] = [:]
    /// Nodes that declined this round's TASK (ERROR cannot-comply), with their words.
    var declined: [String: String] = [:]
    let audit: EnergyAudit
    var roundStarted = ""
    var lastBeat: UInt64 = 0
    var sequence: UInt64 = 0
    let log: (LogRecord) -> Void
    /// The bound endpoint (a `*` port resolved).
    public var endpoint: String { router.endpoint }

    /// Checks the ledger (read-only), binds, then opens the ledger for writing and resumes after its last
    /// completed round: a start refused for any reason (a bad ledger, an address in use) leaves the ledger file
    /// as it was, or absent.
    public init(configuration c: Configuration, context: ZMQContext, log: @escaping (LogRecord) -> Void) throws {
        configuration = c
        self.log = log
        try LedgerStore.preflight(path: c.ledgerPath)
        router = try RouterEndpoint(
            context: context, bind: c.bind, security: c.security, limits: try DecodeLimits(serving: c.model),
            allowPlainOffLoopback: c.allowPlainOffLoopback)
        do {
            ledger = try LedgerStore(path: c.ledgerPath)
        } catch {
            router.close()
            throw error
        }
        check = try DeltaCheck(model: c.model)
        audit = EnergyAudit(model: c.model)
        tensorSizes = try c.model.parameterCounts()
        policies = PolicyEngine(
            model: c.model, stepsPerRound: c.stepsPerRound, uplinkBits: c.uplinkBits, uplinkDensity: c.uplinkDensity,
            activationBits: c.activationBits, errorBits: c.errorBits)
        aggregator = RoundAggregator(rule: c.aggregation, tensorSizes: tensorSizes, clipNorm: c.clipNorm)
        optimizer = ServerOptimizer(rule: c.aggregation, learningRate: c.serverLearningRate)
        if let (round, bytes) = try ledger.latestCheckpoint() {
            global = Self.decodeModel(bytes, sizes: tensorSizes)
            machine = RoundMachine(configuration: c.rounds, firstRound: round + 1)
            guard round < c.rounds.rounds else {
                router.close()
                throw LedgerError(
                    path: c.ledgerPath,
                    reason: "already holds all \(c.rounds.rounds) rounds (the last completed is \(round)): pass more "
                        + "--rounds to continue it, or use a new ledger")
            }
            log(LogRecord("resuming", "resuming after round \(round) from \(c.ledgerPath)"))
        } else {
            let q = TrainingConfiguration.defaultQuantization(precision: .fp32, tradeoff: 0.5)
            let network = try Network(spec: c.model, mode: .fp32, quantization: q, seed: c.seed)
            global = network.parameterSnapshot.map { $0.dequantized() }
            machine = RoundMachine(configuration: c.rounds)
        }
    }

    /// Kills the process with SIGKILL when the run reaches `stage` of the crash point's round: what a power cut or
    /// the OOM killer does, at a chosen place, for tests of what the ledger keeps.
    func crash(at stage: CrashPoint.Stage, round: Int) {
        guard let p = configuration.crashPoint, p.stage == stage, p.round == round else { return }
        log(LogRecord("crash", "crash point \(stage.rawValue):\(round) reached: SIGKILL"))
        kill(getpid(), SIGKILL)
    }

    /// The weight bits of a node's TASK, layer by layer: what it last reported, held inside its policy's range;
    /// for a node that has not reported yet, the width APT starts from at the policy's knob (`start`), held
    /// inside the range. (Starting at the range's maximum would pin the node there: APT widens a layer whose
    /// updates underflow, it rarely narrows one.)
    static func taskBits(reported: [Int]?, policy: Policy, start: Int) -> [Int] {
        policy.layerBits.enumerated().map { k, range in
            let wanted = reported.flatMap { k < $0.count ? $0[k] : nil } ?? start
            return min(max(wanted, range.min), range.max)
        }
    }

    /// The global model as TASK tensors: each layer's weights at `weightBits[k]` bits, its bias at 16, all with
    /// power-of-two scales (the engine's fixed-point formats), rounded to nearest.
    static func encode(_ model: [[Float]], weightBits: [Int], round: Int) -> [QuantizedTensor] {
        var random = RandomSource(seed: UInt64(round))
        return model.enumerated().map { i, v in
            let bits = i % 2 == 0 && i / 2 < weightBits.count ? weightBits[i / 2] : 16
            return QuantizedTensor.quantize(v, layer: UInt16(i), bits: bits, scaleKind: .powerOfTwo, random: &random)
        }
    }

    /// The global model as TASK tensors of binary32 values, for a float32 node.
    static func encodeFloat32(_ model: [[Float]]) -> [QuantizedTensor] {
        model.enumerated().map { i, v in QuantizedTensor(layer: UInt16(i), count: v.count, float32: v) }
    }

    static func encodeModel(_ tensors: [[Float]]) -> [UInt8] {
        var w = ByteWriter()
        for t in tensors { for v in t { w.f32(v) } }
        return w.bytes
    }

    static func decodeModel(_ bytes: [UInt8], sizes: [Int]) -> [[Float]] {
        var r = ByteReader(bytes)
        return sizes.map { n in (0..<n).map { _ in (try? r.f32("model")) ?? 0 } }
    }

    static func now() -> String { LedgerStore.now() }

    /// Serves until every round is done or `shouldStop` says so. Stopped early, it tells every node it is
    /// shutting down (they wait and reconnect); the round in progress is not recorded, and a restart on the same
    /// ledger runs it again.
    public func run(shouldStop: () -> Bool = { false }) throws {
        do {
            while machine.state != .finished && !shouldStop() {
                if let incoming = try router.receive(timeoutMs: 20) { try handle(incoming) }
                try perform(machine.tick(at: MonotonicClock.milliseconds()))
                heartbeat()
            }
        } catch {
            // A ledger that cannot be written (disk full, read-only, I/O error) or a dead socket: the round in
            // progress is not recorded (its transaction rolled back), the nodes are told the coordinator is going
            // down (they keep their state and wait for it), and the error is what the operator sees.
            for (_, p) in peers {
                try? router.send(
                    .bye(reason: .shutdown, text: "coordinator stopping on an error; it resumes from its ledger"),
                    to: p.address)
            }
            log(
                LogRecord(
                    "stopped",
                    "stopped on an error: \(error); the ledger holds every completed round, and a restart resumes after "
                        + "the last one"))
            throw error
        }
        let finished = machine.state == .finished
        for (id, p) in peers {
            try? ledger.setState(identity: id, state: "idle")
            try? router.send(
                finished
                    ? .bye(reason: .normal, text: "all rounds done")
                    : .bye(reason: .shutdown, text: "coordinator stopping; it resumes from its ledger"), to: p.address)
        }
        if !finished {
            log(LogRecord("stopped", "stopped before the last round; the ledger holds every completed round"))
        }
    }

    func heartbeat() {
        let now = MonotonicClock.milliseconds()
        guard now - lastBeat >= 1000 else { return }
        lastBeat = now
        sequence += 1
        for (_, p) in peers { try? router.send(.heartbeat(sequence: sequence, timestampMs: now), to: p.address) }
    }

    func handle(_ incoming: Incoming) throws {
        let now = MonotonicClock.milliseconds()
        switch incoming {
        case .malformed(let peer, let error):
            log(LogRecord("malformed", "refused a frame from \(peer): \(error)"))
            try? router.send(Message.errorReply(for: error), to: peer)
            // A known node's broken frame (a NaN scale, a bad CRC, codes out of range) is kept in the ledger, also
            // from a node that has left or is no longer trusted.
            let known = try peers[peer.identity] != nil || ledger.state(identity: peer.identity) != nil
            if known {
                try ledger.recordEvent(
                    round: currentRound, identity: peer.identity, kind: "malformed", detail: "\(error)")
            }
        case .message(let peer, let message):
            let id = peer.identity
            switch message {
            case .hello(let h):
                let profile = String(decoding: (try? JSONEncoder().encode(h.profile)) ?? Data(), as: UTF8.self)
                let rowID = try ledger.upsertNode(
                    NodeRecord(
                        identity: id, name: h.name, profileJSON: profile, energyBudgetJ: h.energyBudgetJ,
                        memoryBudgetBytes: Int(clamping: h.memoryBudgetBytes),
                        localSamples: Int(clamping: h.localSamples),
                        state: "connected"))
                if try ledger.state(identity: id) == "distrusted" {
                    try? router.send(
                        .bye(reason: .failure, text: "this node's reports were found untrustworthy; see the ledger"),
                        to: peer)
                    log(LogRecord("refused-node", "refused node \(h.name) (\(id.prefix(12))): distrusted"))
                    return
                }
                peers[id] = (peer, h, UInt32(truncatingIfNeeded: rowID))
                let layers = tensorSizes.count / 2
                try router.send(
                    .welcome(
                        Welcome(
                            nodeId: UInt32(truncatingIfNeeded: rowID), model: configuration.model,
                            policy: Policy(
                                layerBits: [Policy.BitRange](repeating: .init(min: 8, max: 16), count: layers)))),
                    to: peer)
                log(
                    LogRecord(
                        "joined", "node \(h.name) joined (\(id.prefix(12)))",
                        [("node", .string(h.name)), ("identity", .string(id))]))
                // Eligible only with budget for the cheapest useful round: else it is retired at once, told why.
                if let b = try budget(id) {
                    do {
                        _ = try policies.plan(for: b, roundsLeft: max(1, roundsLeft))
                    } catch let refusal as PolicyRefusal {
                        try retire(id, refusal)
                        return
                    }
                }
                try perform(machine.nodeJoined(id, at: now))
            case .update(let u):
                pendingUpdates[id] = u
                pendingUpdateBytes[id] = router.lastFrameBytes
                try perform(
                    machine.update(
                        from: id, round: Int(u.round), attempt: Int(u.attempt), partial: u.isPartial, at: now))
                pendingUpdates[id] = nil
                pendingUpdateBytes[id] = nil
            case .error(let code, let text):
                log(LogRecord("node-error", "node \(peers[id]?.hello.name ?? id) says \(code): \(text)"))
                // A node that cannot do this round's task answers for it now instead of at the deadline.
                if code == .cannotComply,
                    case .collecting(let round, let attempt, _, let selected, let answered) =
                        machine.state, selected.contains(id), !answered.contains(id)
                {
                    declined[id] = text
                    try perform(machine.update(from: id, round: round, attempt: attempt, partial: false, at: now))
                    declined[id] = nil
                }
            case .bye(let reason, let text):
                log(
                    LogRecord(
                        "left",
                        "node \(peers[id]?.hello.name ?? id) left: \(reason)" + (text.isEmpty ? "" : " (\(text))")))
                if reason == .energyBudgetExhausted || reason == .memoryBudget {
                    try ledger.setState(identity: id, state: "retired")
                } else if try ledger.state(identity: id) == "connected" {
                    // A node retired or distrusted by the coordinator keeps that state when it says goodbye.
                    try ledger.setState(identity: id, state: "idle")
                }
                peers[id] = nil
                try perform(machine.nodeLeft(id, at: now))
            default:
                break
            }
        }
    }

    /// Writes the metrics file, if asked for; a failure is logged (the rounds go on: metrics are not the ledger).
    func writeMetrics() {
        guard let path = configuration.metricsPath else { return }
        do {
            let failure = try FleetMetrics.write(ledger, to: path)
            if failure != 0 {
                log(
                    LogRecord(
                        "metrics-failed", "cannot write metrics to \(path): \(String(cString: strerror(failure)))"))
            }
        } catch {
            log(LogRecord("metrics-failed", "cannot render metrics: \(error)"))
        }
    }

    /// The round being collected or waited for, nil when all are done.
    var currentRound: Int? {
        switch machine.state {
        case .waiting(let r, _), .collecting(let r, _, _, _, _): return r
        case .finished: return nil
        }
    }

    /// Rounds still to run, the current one included.
    var roundsLeft: Int {
        switch machine.state {
        case .waiting(let r, _), .collecting(let r, _, _, _, _): return configuration.rounds.rounds - r + 1
        case .finished: return 0
        }
    }

    /// Tells a node it leaves the fleet and why, records it as retired, and takes it out of the rounds. It is
    /// retired before it gets a round's TASK (between rounds, or when its TASK is planned), so it leaves that
    /// round's selection rather than being recorded as dropped from it.
    func retire(_ id: String, _ refusal: PolicyRefusal) throws {
        guard let p = peers[id] else { return }
        let reason: ByeReason
        if case .memory = refusal { reason = .memoryBudget } else { reason = .energyBudgetExhausted }
        try? router.send(.bye(reason: reason, text: "\(refusal)"), to: p.address)
        try ledger.setState(identity: id, state: "retired")
        peers[id] = nil
        log(LogRecord("retired", "node \(p.hello.name) retired: \(refusal)", [("node", .string(p.hello.name))]))
        try perform(machine.withdraw(id, at: MonotonicClock.milliseconds()))
    }

    func budget(_ id: String) throws -> NodeBudget? {
        guard let p = peers[id] else { return nil }
        return NodeBudget(
            profile: p.hello.profile, energyBudgetJ: p.hello.energyBudgetJ,
            energySpentJ: try ledger.energySpent(identity: id),
            memoryBudgetBytes: Int(clamping: p.hello.memoryBudgetBytes),
            localSamples: Int(clamping: p.hello.localSamples), precision: Self.precision(of: p.hello))
    }

    /// How a node trains: APT when its HELLO announces the capability, else float32 (the FedAvg baseline).
    static func precision(of hello: Hello) -> PrecisionMode { hello.capabilities.contains(.apt) ? .apt : .fp32 }

    func perform(_ actions: [RoundMachine.Action]) throws {
        for action in actions {
            switch action {
            case .sendTasks(let round, let attempt, let nodes, let timeoutMs):
                aggregator = RoundAggregator(
                    rule: configuration.aggregation, tensorSizes: tensorSizes, clipNorm: configuration.clipNorm)
                participations = []
                roundStarted = Self.now()
                // The model goes to each node in its own format; nodes at the same bits share one encoding (a
                // float32 node's is keyed by no bits at all).
                var encoded: [[Int]: [QuantizedTensor]] = [:]
                let roundsLeft = configuration.rounds.rounds - round + 1
                var retiring: [(String, PolicyRefusal)] = []
                for id in nodes {
                    guard let p = peers[id], let b = try budget(id) else { continue }
                    do {
                        let plan = try policies.plan(for: b, roundsLeft: roundsLeft)
                        let start = TrainingConfiguration(
                            model: configuration.model, precision: .apt, tradeoff: plan.policy.tradeoff
                        ).quantization.initialWeightBits
                        let bits =
                            b.precision == .fp32
                            ? [] : Self.taskBits(reported: reportedBits[id], policy: plan.policy, start: start)
                        let tensors =
                            encoded[bits]
                            ?? (bits.isEmpty
                                ? Self.encodeFloat32(global) : Self.encode(global, weightBits: bits, round: round))
                        encoded[bits] = tensors
                        sentPolicies[id] = plan.policy
                        let task = Message.task(
                            TrainingTask(
                                round: UInt32(round), attempt: UInt32(attempt), timeoutMs: UInt32(clamping: timeoutMs),
                                payload: .fullModel, baseRound: 0, tensors: tensors, policy: plan.policy))
                        let frame = Frame.encode(task)
                        try router.socket.send([p.address.routingId, frame], dontWait: true)
                        taskBytes[id] = frame.count
                        try recordPolicy(node: p.id, round: round, plan.policy, reason: plan.reason)
                    } catch let refusal as PolicyRefusal {
                        log(LogRecord("no-task", "no task for \(p.hello.name) in round \(round): \(refusal)"))
                        retiring.append((id, refusal))
                    } catch {
                        log(LogRecord("no-task", "no task for \(p.hello.name) in round \(round): \(error)"))
                    }
                }
                // A node that cannot pay for one step (or hold one) leaves the fleet, told why; the round goes on.
                for (id, refusal) in retiring { try retire(id, refusal) }
                crash(at: .collecting, round: round)
            case .accept(let node, _):
                if let why = declined[node] {
                    participations.append(declinedRecord(node: node, reason: "declined: \(why)"))
                    continue
                }
                guard let u = pendingUpdates[node], let p = peers[node] else { continue }
                do {
                    let norm = try check.check(u, round: u.round, attempt: u.attempt)
                    if let why = try distrustReason(u, from: node) {
                        participations.append(record(node: node, update: u, status: "rejected", reason: why))
                        try distrust(node, why)
                        continue
                    }
                    aggregator.add(u.delta, samples: Int(clamping: u.samplesTrained), norm: norm)
                    if u.ledger.bits.count == tensorSizes.count / 2 { reportedBits[node] = u.ledger.bits.map(Int.init) }
                    participations.append(
                        record(node: node, update: u, status: u.isPartial ? "partial" : "ok", reason: nil))
                } catch {
                    log(LogRecord("rejected", "rejected the update of \(p.hello.name): \(error)"))
                    participations.append(record(node: node, update: u, status: "rejected", reason: "\(error)"))
                }
            case .refuse(let node, let reason):
                log(
                    LogRecord(
                        "refused-update",
                        "refused an update from \(peers[node]?.hello.name ?? node): \(reason.rawValue)"))
                guard let u = pendingUpdates[node] else { continue }
                switch reason {
                case .late:
                    try ledger.recordLate(
                        round: Int(u.round), attempt: Int(u.attempt),
                        record(node: node, update: u, status: "late", reason: "arrived after the round closed"))
                case .duplicate:
                    // A replay: its energy was counted with the first copy.
                    try ledger.recordEvent(
                        round: Int(u.round), identity: node, kind: "refused-update", detail: reason.rawValue)
                default:
                    try ledger.recordEvent(
                        round: Int(u.round), identity: node, kind: "refused-update",
                        detail: "\(reason.rawValue) (round \(u.round) attempt \(u.attempt))", energyJ: u.ledger.energyJ)
                }
            case .completeRound(let round, let attempt, _, let missing):
                optimizer.apply(aggregator.aggregate(), to: &global)
                crash(at: .aggregating, round: round)
                var accuracy: Double? = nil
                var loss: Double? = nil
                if let test = configuration.evaluation {
                    let q = TrainingConfiguration.defaultQuantization(precision: .fp32, tradeoff: 0.5)
                    var net = try Network(spec: configuration.model, mode: .fp32, quantization: q, seed: 0)
                    try net.loadParameters(global)
                    (accuracy, loss) = net.evaluate(test)
                }
                for id in missing {
                    participations.append(
                        ParticipationRecord(
                            identity: id, status: "dropped", reason: "no update by the deadline", energyJ: 0,
                            cumulativeEnergyJ: try ledger.energySpent(identity: id), peakMemoryBytes: 0,
                            parameterBytes: 0,
                            bits: [], samples: 0, stepsDone: 0, stepsAsked: 0, bytesUp: 0,
                            bytesDown: taskBytes[id] ?? 0,
                            durationS: 0))
                }
                try ledger.recordRound(
                    RoundRecord(
                        number: round, attempt: attempt, status: "completed", startedAt: roundStarted,
                        endedAt: Self.now(),
                        accuracy: accuracy, loss: loss),
                    participations: participations, checkpoint: Self.encodeModel(global),
                    beforeCommit: { crash(at: .committing, round: round) })
                crash(at: .committed, round: round)
                // The round's line first: what the next round's planning does (a POLICY pushed, a node retired)
                // follows it in the log.
                log(roundRecord(round: round, accuracy: accuracy, loss: loss))
                if round < configuration.rounds.rounds { try pushChangedPolicies(nextRound: round + 1) }
                writeMetrics()
            case .failRound(let round, let attempt, let answered, let needed):
                try ledger.recordRound(
                    RoundRecord(
                        number: round, attempt: attempt, status: "failed", startedAt: roundStarted, endedAt: Self.now()),
                    participations: participations)
                writeMetrics()
                log(
                    LogRecord(
                        "round-failed", "round \(round) attempt \(attempt) failed: \(answered) of \(needed) updates"))
            case .finished:
                log(
                    LogRecord(
                        "finished",
                        configuration.rounds.rounds == 1
                            ? "the round is done" : "all \(configuration.rounds.rounds) rounds done"))
            }
        }
    }

    /// Between rounds: plans each node's policy for `nextRound` from the ledger as it now stands, and pushes
    /// POLICY to every node whose policy changed (recorded with its reason); a node that can no longer afford a
    /// step, or hold one, is retired now rather than at the next TASK.
    func pushChangedPolicies(nextRound: Int) throws {
        let roundsLeft = configuration.rounds.rounds - nextRound + 1
        var retiring: [(String, PolicyRefusal)] = []
        for (id, p) in peers.sorted(by: { $0.key < $1.key }) {
            guard let previous = sentPolicies[id], let b = try budget(id) else { continue }
            do {
                let plan = try policies.plan(for: b, roundsLeft: roundsLeft)
                guard plan.policy != previous else { continue }
                try router.send(.policy(plan.policy), to: p.address)
                sentPolicies[id] = plan.policy
                try recordPolicy(node: p.id, round: nextRound, plan.policy, reason: "pushed: \(plan.reason)")
                log(
                    LogRecord(
                        "policy-pushed", "policy for \(p.hello.name) changed: \(plan.reason)",
                        [("node", .string(p.hello.name)), ("round", .integer(nextRound))]))
            } catch let refusal as PolicyRefusal {
                retiring.append((id, refusal))
            }
        }
        for (id, refusal) in retiring { try retire(id, refusal) }
    }

    func recordPolicy(node: UInt32, round: Int, _ policy: Policy, reason: String) throws {
        try ledger.database.run(
            "INSERT INTO policies (node_id, round, policy, reason) VALUES (?, ?, ?, ?)",
            [
                .integer(Int64(node)), .integer(Int64(round)),
                .text(String(decoding: (try? JSONEncoder().encode(policy)) ?? Data(), as: UTF8.self)), .text(reason),
            ])
    }

    /// The operator's line for a completed round: updates by status, global accuracy, energy and bytes.
    func roundRecord(round: Int, accuracy: Double?, loss: Double?) -> LogRecord {
        func count(_ status: String) -> Int { participations.filter { $0.status == status }.count }
        let energy = participations.reduce(0) { $0 + $1.energyJ }
        let up = participations.reduce(0) { $0 + $1.bytesUp }
        let down = participations.reduce(0) { $0 + $1.bytesDown }
        var fields: [(name: String, value: LogRecord.Value)] = [
            ("round", .integer(round)), ("ok", .integer(count("ok"))), ("partial", .integer(count("partial"))),
            ("rejected", .integer(count("rejected"))), ("dropped", .integer(count("dropped"))),
            ("energy_j", .number(energy)), ("bytes_up", .integer(up)), ("bytes_down", .integer(down)),
        ]
        if let accuracy { fields.append(("accuracy", .number(accuracy))) }
        if let loss { fields.append(("loss", .number(loss))) }
        fields.append(("rss_bytes", .integer(ProcessMemory.residentBytes())))
        return LogRecord(
            "round",
            "round \(round): \(count("ok")) ok, \(count("partial")) partial, \(count("rejected")) rejected, "
                + "\(count("dropped")) dropped; accuracy \(accuracy.map { String(format: "%.4f", $0) } ?? "–"); "
                + "energy \(String(format: "%.4g", energy)) J; \(up) B up, \(down) B down", fields)
    }

    /// Why a node's UPDATE cannot be believed — its energy report disagrees with its policy and work, or its
    /// peak memory is over its budget — or nil.
    func distrustReason(_ u: Update, from node: String) throws -> String? {
        guard let p = peers[node] else { return nil }
        if u.ledger.peakMemoryBytes > p.hello.memoryBudgetBytes {
            return
                "reported peak memory \(u.ledger.peakMemoryBytes) B over its budget of \(p.hello.memoryBudgetBytes) B"
        }
        guard let policy = sentPolicies[node] else { return nil }
        return try audit.disagreement(
            reportedJ: u.ledger.energyJ, policy: policy, profile: p.hello.profile,
            precision: Self.precision(of: p.hello),
            steps: Int(u.stepsDone), samples: Int(clamping: u.samplesTrained)
        ).map { "energy report: \($0)" }
    }

    /// Stops trusting a node: recorded as distrusted with the reason, told so, and no longer selected.
    func distrust(_ id: String, _ why: String) throws {
        guard let p = peers[id] else { return }
        try ledger.setState(identity: id, state: "distrusted")
        try ledger.recordEvent(round: nil, identity: id, kind: "distrusted", detail: why)
        try? router.send(.bye(reason: .failure, text: "distrusted: \(why)"), to: p.address)
        peers[id] = nil
        log(LogRecord("distrusted", "node \(p.hello.name) distrusted: \(why)", [("node", .string(p.hello.name))]))
        try perform(machine.nodeLeft(id, at: MonotonicClock.milliseconds()))
    }

    func declinedRecord(node: String, reason: String) -> ParticipationRecord {
        ParticipationRecord(
            identity: node, status: "rejected", reason: reason, energyJ: 0,
            cumulativeEnergyJ: (try? ledger.energySpent(identity: node)) ?? 0, peakMemoryBytes: 0, parameterBytes: 0,
            bits: [], samples: 0, stepsDone: 0, stepsAsked: 0, bytesUp: 0, bytesDown: taskBytes[node] ?? 0,
            durationS: 0)
    }

    /// The bytes the node's model occupies at the weight bits it reported (the engine's memory model: weights in
    /// their storage type, biases at their bits), or 0 when the report does not fit the model.
    func parameterBytes(bits: [Int], policy: Policy?, precision: PrecisionMode) -> Int {
        let c = TrainingConfiguration(
            model: configuration.model, precision: precision,
            tradeoff: policy?.tradeoff ?? TrainingConfiguration.defaultTradeoff)
        guard
            let memory = try? MemoryModel(
                spec: configuration.model, mode: precision, quantization: c.quantization, momentum: c.momentum),
            bits.count == memory.weightedLayerCount, bits.allSatisfy({ (1...32).contains($0) })
        else { return 0 }
        return memory.footprint(batch: 1, weightBits: bits).parameterBytes
    }

    func record(node: String, update u: Update, status: String, reason: String?) -> ParticipationRecord {
        let spent = (try? ledger.energySpent(identity: node)) ?? 0
        return ParticipationRecord(
            identity: node, status: status, reason: reason, energyJ: u.ledger.energyJ,
            cumulativeEnergyJ: spent + u.ledger.energyJ, peakMemoryBytes: Int(clamping: u.ledger.peakMemoryBytes),
            parameterBytes: parameterBytes(
                bits: u.ledger.bits.map(Int.init), policy: sentPolicies[node],
                precision: peers[node].map { Self.precision(of: $0.hello) } ?? .apt),
            bits: u.ledger.bits.map(Int.init), samples: Int(clamping: u.samplesTrained),
            stepsDone: Int(u.stepsDone), stepsAsked: Int(u.stepsAsked), loss: u.ledger.loss,
            accuracy: u.ledger.accuracy,
            bytesUp: pendingUpdateBytes[node] ?? Frame.encode(.update(u)).count, bytesDown: taskBytes[node] ?? 0,
            durationS: u.ledger.durationS)
    }
}
