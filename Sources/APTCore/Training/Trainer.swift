#if canImport(Glibc)
    import Glibc
#elseif canImport(Musl)
    import Musl
#elseif canImport(Darwin)
    import Darwin
#endif

/// Runs local training: the APT loop with the precision controller, budgets and accounting.
public struct Trainer: Sendable {
    /// The run's configuration.
    public let configuration: TrainingConfiguration
    /// The network being trained (its state after `run`).
    public private(set) var network: Network

    /// Validates the configuration, builds the network and checks the memory budget up front.
    public init(configuration: TrainingConfiguration) throws {
        try configuration.validate()
        self.configuration = configuration
        self.network = try Network(
            spec: configuration.model, mode: configuration.precision,
            quantization: configuration.quantization, seed: configuration.seed)
        if let budget = configuration.memoryBudget {
            try Trainer.checkMemory(network: network, configuration: configuration, budget: budget)
        }
    }

    /// The peak training memory the run may reach: APT plans for its widest weight format.
    public static func plannedMemory(network: Network, configuration c: TrainingConfiguration, batch: Int)
        -> MemoryFootprint
    {
        network.trainingMemory(
            batch: batch, momentum: c.momentum,
            weightBits: c.precision == .apt ? c.controller.maxBits : nil)
    }

    static func checkMemory(network: Network, configuration c: TrainingConfiguration, budget: Int) throws {
        let need = plannedMemory(network: network, configuration: c, batch: c.batchSize)
        guard need.totalBytes > budget else { return }
        var suggestions: [String] = []
        // Largest batch that fits.
        var lo = 0
        var hi = c.batchSize - 1
        while lo < hi {
            let mid = (lo + hi + 1) / 2
            if plannedMemory(network: network, configuration: c, batch: mid).totalBytes <= budget {
                lo = mid
            } else {
                hi = mid - 1
            }
        }
        if lo >= 1 { suggestions.append("--batch \(lo)") }
        if c.precision == .apt && c.controller.maxBits > 8 {
            let capped = network.trainingMemory(batch: c.batchSize, momentum: c.momentum, weightBits: 8)
            if capped.totalBytes <= budget { suggestions.append("--max-bits 8") }
        }
        if c.precision == .fp32 || c.precision == .fixed(bits: 16) {
            if let n8 = try? Network(
                spec: c.model, mode: .fixed(bits: 8),
                quantization: TrainingConfiguration.defaultQuantization(
                    precision: .fixed(bits: 8), tradeoff: c.tradeoff),
                seed: c.seed),
                n8.trainingMemory(batch: c.batchSize, momentum: c.momentum).totalBytes <= budget
            {
                suggestions.append("--precision fixed:8")
            }
        }
        let fits =
            suggestions.isEmpty
            ? "nothing fits: even batch 1 needs \(plannedMemory(network: network, configuration: c, batch: 1).totalBytes) bytes"
            : "would fit: " + suggestions.joined(separator: " or ")
        throw BudgetError(
            message:
                "memory budget \(budget) bytes is too small: \(c.model.name) at \(c.precision), batch \(c.batchSize) needs "
                + "\(need.totalBytes) bytes (parameters \(need.parameterBytes), optimiser \(need.optimizerBytes), "
                + "activations \(need.savedActivationBytes), gradients \(need.gradientBytes)); \(fits)")
    }

    /// Checks that `data` fits the model: image shape equal to the model's input, labels below its class count.
    public func check(_ data: Dataset, role: String) throws(ConfigurationError) {
        let shape = [1, data.rows, data.cols]
        let m = configuration.model
        guard shape == m.input else {
            throw ConfigurationError(
                "\(role) images are \(data.rows)×\(data.cols) but model '\(m.name)' expects input \(m.input)")
        }
        guard data.count > 0 else { throw ConfigurationError("\(role) set is empty") }
        guard data.classes <= m.classes else {
            throw ConfigurationError(
                "\(role) labels go up to \(data.classes - 1) but model '\(m.name)' has \(m.classes) classes")
        }
    }

    /// Trains on `train`, evaluates on `test`, and reports. Check both with `check(_:role:)` first. `progress` is called every few steps.
    public mutating func run(
        train: Dataset, test: Dataset, progress: ((TrainingProgress) -> Void)? = nil
    ) -> TrainingReport {
        let c = configuration
        var controller = PrecisionController(settings: c.controller)
        var context = StepContext(
            mode: c.precision, quantization: c.quantization,
            hyper: UpdateHyperparameters(learningRate: c.learningRate, momentum: c.momentum),
            random: RandomSource(seed: c.seed &+ 1),
            meter: EnergyMeter(profile: c.profile, layers: network.layers.count),
            training: true)
        var shuffle = RandomSource(seed: c.seed &+ 2)
        var controlRandom = RandomSource(seed: c.seed &+ 3)
        let pIdx = network.parametricIndices
        var history = network.precision.map { BitsHistory(layer: $0.layer, name: $0.name, points: [[0, $0.bits]]) }
        var changes = 0
        var iteration = 0
        var samples = 0
        var trainSeconds = 0.0
        var stopReason = "completed"
        var lastEpochLoss = 0.0
        var peak = network.trainingMemory(batch: c.batchSize, momentum: c.momentum)
        let stepsPerEpoch = (train.count + c.batchSize - 1) / c.batchSize
        var order = Array(0..<train.count)
        epochs: for epoch in 1...c.epochs {
            order.shuffle(using: &shuffle)
            var lossSum = 0.0
            var lossCount = 0
            for step in 0..<stepsPerEpoch {
                let lo = step * c.batchSize
                let hi = min(train.count, lo + c.batchSize)
                let n = hi - lo
                if let budget = c.energyBudget {
                    let next = network.stepCost(batch: n, momentum: c.momentum, profile: c.profile)
                    // A relative margin of 1e-9 absorbs the rounding between the predicted sum and the meter's
                    // own sum of the same terms, so the reported energy never exceeds the budget.
                    if context.meter.totalJoules + next > budget * (1 - 1e-9) {
                        stopReason = "energy_budget"
                        break epochs
                    }
                }
                let idx = Array(order[lo..<hi])
                let x = train.batch(indices: idx)
                let labels = train.labels(at: idx)
                let t0 = MonotonicClock.seconds()
                let loss = network.trainStep(x, labels: labels[...], context: &context)
                trainSeconds += MonotonicClock.seconds() - t0
                iteration += 1
                samples += n
                lossSum += Double(loss) * Double(n)
                lossCount += n
                if c.precision == .apt && iteration % c.controller.interval == 0 {
                    let made = controller.evaluate(network: &network, iteration: iteration, random: &controlRandom)
                    for ch in made {
                        if let h = pIdx.firstIndex(of: ch.layer) { history[h].points.append([iteration, ch.to.bits]) }
                    }
                    changes += made.count
                    if !made.isEmpty {
                        let now = network.trainingMemory(batch: c.batchSize, momentum: c.momentum)
                        if now.totalBytes > peak.totalBytes { peak = now }
                    }
                }
                if let progress, step % 20 == 0 || step == stepsPerEpoch - 1 {
                    progress(
                        TrainingProgress(
                            epoch: epoch, epochs: c.epochs, step: step + 1, stepsPerEpoch: stepsPerEpoch,
                            loss: lossSum / Double(max(lossCount, 1)), bits: network.precision.map(\.bits),
                            energyJ: context.meter.totalJoules))
                }
            }
            lastEpochLoss = lossSum / Double(max(lossCount, 1))
        }
        let final = network.precision
        for (h, p) in final.enumerated() where history[h].points.last?[0] != iteration {
            history[h].points.append([iteration, p.bits])
        }
        let (acc, testLoss) = network.evaluate(test)
        let totals = context.meter.perLayer.reduce(into: OperationCounts()) { $0.add($1) }
        let end = network.trainingMemory(batch: c.batchSize, momentum: c.momentum)
        if end.totalBytes > peak.totalBytes { peak = end }
        return TrainingReport(
            model: c.model.name, precision: c.precision.description, tradeoff: c.tradeoff, profile: c.profile.name,
            seed: c.seed, epochs: c.epochs, batch: c.batchSize, lr: Double(c.learningRate), accuracy: acc,
            loss: testLoss, trainLoss: lastEpochLoss, energyJ: context.meter.totalJoules,
            energyBreakdown: context.meter.breakdown(),
            energyPerLayer: network.layers.indices.map { i in
                let c = context.meter.perLayer[i]
                return LayerEnergy(
                    layer: i, name: network.layers[i].name, energy: context.meter.breakdown(layers: i..<i + 1),
                    macs: c.macs, bytesMoved: c.bytesMoved)
            },
            macs: totals.macs, paramBytes: end.parameterBytes, optimizerBytes: end.optimizerBytes,
            savedActivationBytes: peak.savedActivationBytes, gradientBytes: peak.gradientBytes,
            workspaceBytes: peak.workspaceBytes,
            peakTrainBytes: peak.totalBytes, peakRssBytes: ProcessMemory.peakResidentBytes(),
            samplesPerS: trainSeconds > 0 ? Double(samples) / trainSeconds : 0, trainSeconds: trainSeconds,
            samplesTrained: samples, iterations: iteration, bits: final.map(\.bits), bitsHistory: history,
            precisionChanges: changes, stopReason: stopReason)
    }
}
