import APTCore
import APTProtocol
import Testing

@testable import APTCoordinator

/// The policy engine keeps every node inside both of its budgets, round after round.
@Suite("Policy engine")
struct PolicyEngineTests {
    let engine = PolicyEngine(model: .mlp, stepsPerRound: 50)

    func node(energy: Double, memory: Int = 64 << 20, profile: DeviceProfile = .raspberryPi4) -> NodeBudget {
        NodeBudget(
            profile: profile, energyBudgetJ: energy, energySpentJ: 0, memoryBudgetBytes: memory, localSamples: 6000)
    }

    @Test("code-width ranges go into every APT policy, planned at their tops; the audit prices their ends")
    func codeWidthRanges() throws {
        var bounded = engine
        bounded.activationBits = 6...7
        bounded.errorBits = 4...6
        let plain = try engine.plan(for: node(energy: 1e6), roundsLeft: 1)
        let plan = try bounded.plan(for: node(energy: 1e6), roundsLeft: 1)
        #expect(plain.policy.activationBits.isEmpty && plain.policy.errorBits.isEmpty)
        #expect(
            !plain.reason.contains("activations") && plan.reason.contains("activations 6–7 bits, errors 4–6 bits, knob")
        )
        #expect(plan.policy.activationBits == [Policy.BitRange](repeating: .init(min: 6, max: 7), count: 3))
        #expect(plan.policy.errorBits == [Policy.BitRange](repeating: .init(min: 4, max: 6), count: 3))
        // Narrower codes than the knob's 8 bits: a cheaper step, less memory.
        #expect(plan.stepCostJ < plain.stepCostJ && plan.peakMemoryBytes < plain.peakMemoryBytes)
        // The audit's interval: from every range's bottom to every range's top (on a device that multiplies at the
        // codes' own widths).
        let audit = EnergyAudit(model: .mlp)
        let range = try audit.predicted(policy: plan.policy, profile: .generic45nm, steps: 10, samples: 640)
        let c = TrainingConfiguration(model: .mlp, precision: .apt)
        let cost = try CostModel(
            spec: .mlp, mode: .apt, quantization: c.quantization, momentum: c.momentum, profile: .generic45nm)
        let w = plan.policy.layerBits
        let low = cost.roundJoules(
            steps: 10, samples: 640, weightBits: w.map(\.min), activationBits: [6, 6, 6], errorBits: [4, 4, 4])
        let high = cost.roundJoules(
            steps: 10, samples: 640, weightBits: w.map(\.max), activationBits: [7, 7, 7], errorBits: [6, 6, 6])
        #expect(range == low...high)
        // A node that trained at the knob's 8-bit codes instead reports more than the policy allows.
        let knobs = cost.roundJoules(steps: 10, samples: 640, weightBits: w.map(\.max))
        #expect(
            try audit.disagreement(
                reportedJ: knobs, policy: plan.policy, profile: .generic45nm, steps: 10, samples: 640) != nil)
        // A float32 node gets no ranges.
        var fp32 = node(energy: 1e6)
        fp32.precision = .fp32
        let f = try bounded.plan(for: fp32, roundsLeft: 1)
        #expect(f.policy.activationBits.isEmpty && f.policy.errorBits.isEmpty)
    }

    @Test("in a simulated run of 40 rounds no node exceeds its energy budget, and a small budget gets cheaper policies")
    func simulatedRun() throws {
        // The price of one step at the default and at the lean knob, on this node's device.
        let rounds = 40
        let rich = try engine.plan(for: node(energy: 1e6), roundsLeft: 1)
        var leanEngine = engine
        leanEngine.tradeoff = engine.leanTradeoff
        let lean = try leanEngine.plan(for: node(energy: 1e6), roundsLeft: 1)
        #expect(lean.stepCostJ < rich.stepCostJ)
        // A rich node; a modest one that can pay ten default steps a round; one that can pay a lean step a round
        // but not a default one.
        var nodes = [
            node(energy: 1), node(energy: Double(rounds) * 10 * rich.stepCostJ),
            node(energy: Double(rounds) * (lean.stepCostJ + rich.stepCostJ) / 2),
        ]
        var plans: [[PlannedPolicy?]] = [[], [], []]
        for round in 1...rounds {
            for k in nodes.indices {
                let plan = try? engine.plan(for: nodes[k], roundsLeft: rounds - round + 1)
                plans[k].append(plan)
                guard let plan else { continue }
                // The node spends at most the allowance (its session stops before a step that would pass it).
                let steps = plan.policy.localSteps
                let spent = Double(steps) * plan.stepCostJ
                #expect(spent <= plan.policy.roundEnergyJ * (1 + 1e-12))
                nodes[k].energySpentJ += spent
                #expect(nodes[k].energySpentJ <= nodes[k].energyBudgetJ * (1 + 1e-9), "node \(k) round \(round)")
                #expect(plan.peakMemoryBytes <= nodes[k].memoryBudgetBytes)
            }
        }
        let steps = plans.map { $0.compactMap { $0?.policy.localSteps }.reduce(0, +) }
        #expect(steps[0] > steps[1] && steps[1] > steps[2], "steps per budget: \(steps)")
        #expect(plans[0].allSatisfy { $0?.policy.localSteps == 50 }, "a rich node trains the full round every time")
        // The modest node is paced: it takes part in every round instead of spending its budget early.
        #expect(plans[1].allSatisfy { $0 != nil })
        // The poorest one takes part in every round, mostly at the lean knob (what it saves on a lean round
        // can later buy a default step).
        #expect(plans[2].allSatisfy { $0 != nil })
        #expect(plans[2].filter { $0?.policy.tradeoff == engine.leanTradeoff }.count >= rounds / 2)
        #expect(plans[2].first??.policy.tradeoff == engine.leanTradeoff)
        for (k, n) in nodes.enumerated() { #expect(n.energySpentJ <= n.energyBudgetJ, "node \(k)") }
    }

    @Test("a small memory budget caps the weight bits, then the batch; one below the leanest step is refused")
    func memory() throws {
        let roomy = try engine.plan(for: node(energy: 10), roundsLeft: 1)
        #expect(roomy.policy.layerBits.allSatisfy { $0.max == 16 } && roomy.policy.batchSize == 64)
        // Each plan's memory is the engine's own figure for that batch and those bits.
        let c8 = TrainingConfiguration(model: .mlp, precision: .apt, tradeoff: 0.5)
        let memory = try MemoryModel(spec: .mlp, mode: .apt, quantization: c8.quantization, momentum: 0.9)
        let at8 = memory.footprint(batch: 64, uniformWeightBits: 8).totalBytes
        let capped = try engine.plan(for: node(energy: 10, memory: at8), roundsLeft: 1)
        #expect(capped.policy.layerBits.allSatisfy { $0.max == 8 })
        #expect(capped.peakMemoryBytes <= at8)
        let smaller = try engine.plan(for: node(energy: 10, memory: at8 - 1), roundsLeft: 1)
        #expect(smaller.policy.batchSize < 64 && smaller.peakMemoryBytes < at8)
        #expect(throws: PolicyRefusal.self) { try engine.plan(for: node(energy: 10, memory: 100_000), roundsLeft: 1) }
    }

    @Test("a node that cannot afford one step gets no task, saying why")
    func energyRefusal() throws {
        do {
            _ = try engine.plan(for: node(energy: 1e-9), roundsLeft: 1)
            Issue.record("a node without energy got a task")
        } catch let refusal as PolicyRefusal {
            if case .energy(let cost, let left) = refusal { #expect(cost > left) } else { Issue.record("\(refusal)") }
        }
    }

    @Test("a node whose paced share cannot pay a step trains one lean step a round while its energy lasts")
    func onePacedStep() throws {
        var leanEngine = engine
        leanEngine.tradeoff = engine.leanTradeoff
        let lean = try leanEngine.plan(for: node(energy: 1e6), roundsLeft: 1)
        // Energy for three and a half lean steps, a thousand rounds to go.
        var n = node(energy: 3.5 * lean.stepCostJ)
        var rounds = 0
        while rounds < 10 {
            guard let plan = try? engine.plan(for: n, roundsLeft: 1000 - rounds) else { break }
            #expect(plan.policy.localSteps == 1)
            #expect(plan.policy.tradeoff == engine.leanTradeoff)
            #expect(plan.policy.roundEnergyJ <= n.energyLeftJ)
            n.energySpentJ += plan.stepCostJ
            rounds += 1
        }
        #expect(rounds == 3)
        #expect(n.energySpentJ <= n.energyBudgetJ)
    }

    @Test("a float32 node is planned at float32 prices and memory, and asked for binary32 deltas")
    func float32Node() throws {
        var budget = node(energy: 1e6)
        let apt = try engine.plan(for: budget, roundsLeft: 10)
        budget.precision = .fp32
        let fp32 = try engine.plan(for: budget, roundsLeft: 10)
        #expect(fp32.policy.uplinkBits == QuantizedTensor.float32Bits && apt.policy.uplinkBits == engine.uplinkBits)
        #expect(fp32.policy.layerBits.allSatisfy { $0.min == 16 && $0.max == 16 })
        #expect(fp32.stepCostJ > apt.stepCostJ && fp32.peakMemoryBytes > apt.peakMemoryBytes)
        // The figures are the float32 engine's own.
        let c = TrainingConfiguration(model: .mlp, precision: .fp32, tradeoff: engine.tradeoff)
        let memory = try MemoryModel(spec: .mlp, mode: .fp32, quantization: c.quantization, momentum: engine.momentum)
        #expect(
            fp32.peakMemoryBytes == memory.footprint(batch: fp32.policy.batchSize, uniformWeightBits: 16).totalBytes)
        // A memory budget APT fits at the full batch is too small for float32's parameters and momentum at any
        // batch: the float32 node is refused with the bytes it would need.
        budget.memoryBudgetBytes = apt.peakMemoryBytes
        #expect(throws: PolicyRefusal.self) { try engine.plan(for: budget, roundsLeft: 10) }
        budget.precision = .apt
        #expect(try engine.plan(for: budget, roundsLeft: 10).policy.batchSize == apt.policy.batchSize)
    }
}
