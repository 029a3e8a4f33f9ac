import APTCore
import APTProtocol

/// Many protocol-speaking nodes in one process, to load a coordinator without as many real trainers
/// (`apt-node simulate`). Each has its own DEALER socket and identity, says HELLO with its budgets, and answers
/// every TASK after a jittered delay with a real UPDATE: the model's full delta at the policy's uplink bits (or
/// binary32 when asked), and a ledger entry priced by the engine's own cost and memory models for the policy's
/// steps, so the coordinator's audit accepts it. It does not train: the delta's values are random, drawn once per
/// bitwidth and shared by every simulated node (the coordinator cannot tell, and the simulator's own CPU stays
/// small beside the coordinator's).
public final class FleetSimulator {
    /// What the simulated fleet is.
    public struct Configuration: Sendable {
        /// The coordinator's endpoint.
        public var coordinator: String
        /// Nodes to simulate.
        public var count: Int
        /// Names are PREFIX-0001, PREFIX-0002, …
        public var namePrefix = "sim"
        /// Every node's device.
        public var profile = DeviceProfile.raspberryPi4
        /// Every node's energy budget, J.
        public var energyBudgetJ = 1e6
        /// Every node's memory budget, bytes.
        public var memoryBudgetBytes = 64 << 20
        /// Samples each node says it has.
        public var localSamples = 6000
        /// Mean delay between a TASK and its UPDATE, ms; each delay is drawn uniformly from 0.5× to 1.5× of it.
        public var meanDelayMs = 200
        /// Seed of the delays and the deltas.
        public var seed: UInt64 = 0
        /// The model the coordinator is expected to serve (nil: whatever its WELCOME says).
        public var expectedModel: ModelSpec?
        /// Chance that a node leaves (BYE) after sending an UPDATE; it says HELLO again 1–5 s later.
        public var churn = 0.0
        /// Fraction of nodes that report ten times the energy their policy prices (the coordinator should stop
        /// trusting them).
        public var liars = 0.0
        /// Chance that an UPDATE is first sent with one byte flipped (a frame the coordinator must refuse), then
        /// as it should be.
        public var corrupt = 0.0

        /// A fleet of `count` nodes for `coordinator`.
        public init(coordinator: String, count: Int) {
            self.coordinator = coordinator
            self.count = count
        }
    }

    /// What the simulated nodes have done so far.
    public struct Totals: Sendable, Equatable {
        /// Nodes the coordinator welcomed.
        public var welcomed = 0
        /// TASKs received.
        public var tasks = 0
        /// UPDATEs sent.
        public var updates = 0
        /// Bytes of UPDATE frames sent.
        public var bytesUp = 0
        /// Bytes of frames received.
        public var bytesDown = 0
        /// Nodes the coordinator said BYE to.
        public var byes = 0
        /// Frames from the coordinator that did not decode, or ERROR messages it sent.
        public var errors = 0
        /// Times a node left (churn).
        public var left = 0
        /// Times a node came back after leaving.
        public var rejoined = 0
        /// Corrupted frames sent.
        public var corrupted = 0
        /// Energy reports inflated by lying nodes.
        public var lies = 0
    }

    struct SimulatedNode {
        let name: String
        let endpoint: DealerEndpoint
        var pending: (task: TrainingTask, dueMs: UInt64)? = nil
        var done = false
        /// When a node that left says HELLO again.
        var backAtMs: UInt64? = nil
        /// Whether it inflates its energy reports.
        let liar: Bool
        let hello: Hello
    }

    let configuration: Configuration
    let context: ZMQContext
    var nodes: [SimulatedNode] = []
    var model: ModelSpec?
    var random: RandomSource
    /// Deltas by uplink bits (and density), made once.
    var deltas: [String: [QuantizedTensor]] = [:]
    /// Ledger entries by policy, priced once.
    var entries: [Policy: (entry: LedgerEntry, steps: Int, samples: Int)] = [:]
    let log: (LogRecord) -> Void
    /// What the nodes have done.
    public private(set) var totals = Totals()
    /// Why the run cannot go on (a WELCOME for another model than expected), if so.
    public private(set) var mismatch: String?

    /// Connects `configuration.count` DEALER sockets and says HELLO on each.
    public init(configuration c: Configuration, log: @escaping (LogRecord) -> Void) throws {
        configuration = c
        self.log = log
        random = RandomSource(seed: c.seed)
        context = try ZMQContext(maxSockets: c.count + 16)
        for i in 1...c.count {
            let name = "\(c.namePrefix)-\(String(repeating: "0", count: max(0, 4 - String(i).count)))\(i)"
            let endpoint = try DealerEndpoint(context: context, connect: c.coordinator, identity: Array(name.utf8))
            let hello = Hello(
                name: name, profile: c.profile, energyBudgetJ: c.energyBudgetJ,
                memoryBudgetBytes: UInt64(c.memoryBudgetBytes), localSamples: UInt64(c.localSamples),
                capabilities: [.apt, .errorFeedback])
            try endpoint.send(.hello(hello))
            let liar = c.liars > 0 && random.nextUnitDouble() < c.liars
            if liar {
                log(LogRecord("liar", "\(name) will report ten times its energy", [("node", .string(name))]))
            }
            nodes.append(SimulatedNode(name: name, endpoint: endpoint, liar: liar, hello: hello))
        }
    }

    /// Runs until every node has been told BYE or `shouldStop` says so; then says BYE for every node still in.
    public func run(shouldStop: () -> Bool = { false }) throws {
        let poller = try Poller()
        let sockets = nodes.map(\.endpoint.socket)
        var lastBeat = MonotonicClock.milliseconds()
        var sequence: UInt64 = 0
        // Once the coordinator has said its run is over, a node that left is not waited for.
        var over = false
        while !shouldStop() && mismatch == nil && nodes.contains(where: { !$0.done && !(over && $0.backAtMs != nil) }) {
            let now = MonotonicClock.milliseconds()
            let nextDue = nodes.compactMap { $0.pending?.dueMs }.min()
            let wait = nextDue.map { $0 > now ? min(Int32($0 - now), 100) : 0 } ?? 100
            let ready = try poller.wait(sockets, timeoutMs: wait)
            for i in ready.readable {
                while let frames = try nodes[i].endpoint.socket.receive(timeoutMs: 0) {
                    totals.bytesDown += frames.reduce(0) { $0 + $1.count }
                    if handle(frames, node: i) { over = true }
                }
            }
            let t = MonotonicClock.milliseconds()
            for i in nodes.indices {
                if let back = nodes[i].backAtMs, back <= t, !over {
                    nodes[i].backAtMs = nil
                    try nodes[i].endpoint.send(.hello(nodes[i].hello))
                    totals.rejoined += 1
                }
            }
            for i in nodes.indices {
                if let p = nodes[i].pending, p.dueMs <= t {
                    nodes[i].pending = nil
                    try answer(p.task, node: i)
                }
            }
            if t - lastBeat >= 1000 {
                lastBeat = t
                sequence += 1
                for n in nodes where !n.done && n.backAtMs == nil {
                    try? n.endpoint.send(.heartbeat(sequence: sequence, timestampMs: t))
                }
            }
        }
        for n in nodes where !n.done && n.backAtMs == nil {
            try? n.endpoint.send(.bye(reason: .shutdown, text: "simulator stopping"))
        }
        for n in nodes { n.endpoint.close() }
    }

    /// Handles what node `i` received; returns whether it says the run is over (BYE normal).
    func handle(_ frames: [[UInt8]], node i: Int) -> Bool {
        let message: Message
        do {
            message = try nodes[i].endpoint.message(from: frames)
        } catch {
            totals.errors += 1
            log(LogRecord("malformed", "\(nodes[i].name): malformed frame from the coordinator: \(error)"))
            return false
        }
        switch message {
        case .welcome(let w):
            if let expected = configuration.expectedModel, expected != w.model {
                mismatch = "the coordinator serves model \(w.model.name), not \(expected.name)"
                return false
            }
            model = model ?? w.model
            totals.welcomed += 1
        case .task(let task):
            totals.tasks += 1
            let spread = UInt64(configuration.meanDelayMs)
            let delay = spread / 2 + (spread > 0 ? random.next() % (spread + 1) : 0)
            nodes[i].pending = (task, MonotonicClock.milliseconds() + delay)
        case .bye(let reason, let text):
            totals.byes += 1
            nodes[i].done = true
            if reason != .normal { log(LogRecord("bye", "\(nodes[i].name): coordinator said BYE \(reason): \(text)")) }
            return reason == .normal
        case .error(let code, let text):
            totals.errors += 1
            log(LogRecord("refused", "\(nodes[i].name): coordinator refused: \(code): \(text)"))
        default:
            break
        }
        return false
    }

    /// Sends node `i`'s UPDATE for `task`.
    func answer(_ task: TrainingTask, node i: Int) throws {
        guard let spec = model else { return }
        let p = task.policy
        let delta = try self.delta(for: p, model: spec)
        var priced = try entry(for: p, model: spec)
        if nodes[i].liar {
            priced.entry.energyJ *= 10
            totals.lies += 1
        }
        let update = Update(
            round: task.round, attempt: task.attempt, samplesTrained: UInt64(priced.samples),
            stepsDone: UInt32(clamping: priced.steps), stepsAsked: UInt32(clamping: priced.steps),
            stopReason: .completed,
            delta: delta, ledger: priced.entry)
        let frame = Frame.encode(.update(update))
        if configuration.corrupt > 0 && random.nextUnitDouble() < configuration.corrupt {
            var broken = frame
            broken[Frame.headerSize + Int(random.next() % UInt64(frame.count - Frame.headerSize))] ^= 0x5A
            try nodes[i].endpoint.sendRaw(broken)
            totals.corrupted += 1
        }
        try nodes[i].endpoint.sendRaw(frame)
        totals.updates += 1
        totals.bytesUp += frame.count
        if configuration.churn > 0 && random.nextUnitDouble() < configuration.churn {
            try nodes[i].endpoint.send(.bye(reason: .normal, text: "leaving for a while"))
            nodes[i].backAtMs = MonotonicClock.milliseconds() + 1000 + random.next() % 4001
            totals.left += 1
        }
    }

    /// The shared delta at `p`'s uplink bits and density: small random values (a plausible SGD delta's size).
    func delta(for p: Policy, model spec: ModelSpec) throws -> [QuantizedTensor] {
        let key = "\(p.uplinkBits)/\(p.uplinkDensity)"
        if let d = deltas[key] { return d }
        let d = try spec.parameterCounts().enumerated().map { i, n in
            let values = (0..<n).map { _ in Float(random.nextGaussian()) * 1e-3 }
            return p.uplinkBits == QuantizedTensor.float32Bits
                ? QuantizedTensor.float32(values, layer: UInt16(i), topK: p.topK(count: n))
                : QuantizedTensor.quantize(
                    values, layer: UInt16(i), bits: p.uplinkBits, rounding: .stochastic, topK: p.topK(count: n),
                    random: &random)
        }
        deltas[key] = d
        return d
    }

    /// The ledger entry of a round under `p`: its steps priced by the engine's cost model at the policy's widest
    /// bits (the top of what the coordinator's audit predicts), its peak memory by the memory model.
    func entry(for p: Policy, model spec: ModelSpec) throws -> (entry: LedgerEntry, steps: Int, samples: Int) {
        if let e = entries[p] { return e }
        let c = TrainingConfiguration(model: spec, precision: .apt, tradeoff: p.tradeoff)
        let bits = p.layerBits.map(\.max)
        let cost = try CostModel(
            spec: spec, mode: .apt, quantization: c.quantization, momentum: c.momentum, profile: configuration.profile)
        let memory = try MemoryModel(spec: spec, mode: .apt, quantization: c.quantization, momentum: c.momentum)
        let batch = min(p.batchSize, configuration.localSamples)
        let steps =
            p.localSteps > 0 ? p.localSteps : p.localEpochs * ((configuration.localSamples + batch - 1) / batch)
        let codes = p.codeBits(widest: true, otherwise: (c.activationBitRange, c.errorBitRange))
        let energy = cost.roundJoules(
            steps: steps, samples: steps * batch, weightBits: bits, activationBits: codes.activations,
            errorBits: codes.errors)
        let peak = memory.footprint(
            batch: batch, weightBits: bits, activationBits: codes.activations, errorBits: codes.errors)
        let e = LedgerEntry(
            energyJ: min(energy, p.roundEnergyJ > 0 ? p.roundEnergyJ : energy),
            peakMemoryBytes: UInt64(peak.totalBytes),
            bits: bits.map { UInt8($0) }, loss: 0.5, accuracy: 0.8, durationS: 0)
        let priced = (entry: e, steps: steps, samples: steps * batch)
        entries[p] = priced
        return priced
    }
}
