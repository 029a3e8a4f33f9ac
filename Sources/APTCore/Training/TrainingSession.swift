#if canImport(Glibc)
    import Glibc
#endif

/// A resumable training run: one network, its precision controller, optimiser state, random streams and
/// place in the data, kept across calls. A node drives it a round at a time (`run(steps:)`), knows the next
/// step's cost before it takes it (`nextStepCost`, so it stops at a budget mid-round), narrows each layer's
/// weight bits to a coordinator's policy (`setWeightBitRanges`), and evaluates only when asked.
///
/// Two `run(steps: n)` calls leave the session exactly where one `run(steps: 2n)` does, bit for bit.
public struct TrainingSession: Sendable {
    /// Why `run` stopped.
    public enum StopReason: String, Sendable, Codable {
        /// Every step asked for was taken.
        case completed
        /// The next step would have taken the energy spent past the limit.
        case energyLimit = "energy_budget"
        /// The caller's `shouldStop` said so (a deadline, a cancellation).
        case stopped
    }

    /// What one `run` did.
    public struct Outcome: Sendable, Equatable {
        /// Steps taken.
        public var steps: Int
        /// Samples trained on.
        public var samples: Int
        /// Of those, how many the model classified right in the forward pass of their step (training accuracy).
        public var correct = 0
        /// Why it stopped.
        public var stopReason: StopReason
    }

    /// The run's configuration (`epochs` is not used by a session: the caller says how many steps).
    public let configuration: TrainingConfiguration
    /// The network being trained: the one copy of the model.
    public private(set) var network: Network
    /// The training data.
    public let data: Dataset
    private var controller: PrecisionController
    private var context: StepContext
    private var shuffle: RandomSource
    private var controlRandom: RandomSource
    private var order: [Int]
    private var position = 0
    private let costModel: CostModel
    /// The last step's sheets and what they were priced for (batch; weight, activation and error bits): reused
    /// while all hold.
    private var cachedSheets: (batch: Int, bits: [[Int]], sheets: [CostSheet])? = nil
    /// Steps taken.
    public private(set) var iteration = 0
    /// Samples trained on.
    public private(set) var samplesTrained = 0
    /// Epochs started (an epoch starts at its first step, with a fresh shuffle).
    public private(set) var epoch = 0
    /// Seconds spent in training steps.
    public private(set) var trainSeconds = 0.0
    /// Weight bits of each weighted layer over the iterations.
    public private(set) var bitsHistory: [BitsHistory]
    /// Precision changes the controller made.
    public private(set) var precisionChanges = 0
    /// The largest training-memory footprint of the steps taken (before the first step: that of the configuration
    /// as it stands).
    public private(set) var peakMemory: MemoryFootprint
    /// The footprint of a step at the current bits.
    private var currentMemory: MemoryFootprint
    private var epochLossSum = 0.0
    private var epochLossCount = 0
    /// Mean training loss over the current epoch's steps so far (the whole epoch once it has finished, until the
    /// next one starts).
    public private(set) var lastEpochLoss = 0.0

    /// Starts a session on `data` with a network built from the configuration's seed.
    public init(configuration: TrainingConfiguration, data: Dataset) throws {
        try configuration.validate()
        let network = try Network(
            spec: configuration.model, mode: configuration.precision, quantization: configuration.quantization,
            seed: configuration.seed)
        self.init(configuration: configuration, network: network, data: data)
    }

    /// Starts a session on `data` training `network` (built for `configuration`, or loaded).
    public init(configuration c: TrainingConfiguration, network: Network, data: Dataset) {
        precondition(data.count > 0, "TrainingSession needs training data")
        self.configuration = c
        self.network = network
        self.data = data
        controller = PrecisionController(settings: c.controller)
        context = StepContext(
            mode: c.precision, quantization: c.quantization,
            hyper: UpdateHyperparameters(learningRate: c.learningRate, momentum: c.momentum),
            random: RandomSource(seed: c.seed &+ 1),
            meter: EnergyMeter(profile: c.profile, layers: network.layers.count),
            training: true)
        shuffle = RandomSource(seed: c.seed &+ 2)
        controlRandom = RandomSource(seed: c.seed &+ 3)
        order = Array(0..<data.count)
        costModel = network.costModel(momentum: c.momentum, profile: c.profile)
        if c.precision == .apt {
            // The controller's code widths start at the settings' width, within their ranges.
            let n = self.network.activationBits.count
            let all = { (range: ClosedRange<Int>?) in range.map { [ClosedRange<Int>](repeating: $0, count: n) } }
            try? self.network.setCodeBits(
                activations: TrainingSession.clamp(self.network.activationBits, to: all(c.controller.activationBits)),
                errors: TrainingSession.clamp(self.network.errorBits, to: all(c.controller.errorBits)))
        }
        bitsHistory = TrainingSession.histories(of: self.network)
        currentMemory = network.trainingMemory(batch: c.batchSize, momentum: c.momentum)
        peakMemory = currentMemory
        resetUnderflow()
        ProcessMemory.keepStepBuffers(bytes: currentMemory.totalBytes)
    }

    /// What the meter has recorded.
    public var meter: EnergyMeter { context.meter }
    /// Energy spent so far, J.
    public var energyJ: Double { context.meter.totalJoules }
    /// Steps in one pass over the data.
    public var stepsPerEpoch: Int { (data.count + configuration.batchSize - 1) / configuration.batchSize }
    /// Steps taken in the current epoch (0 at its start).
    public var stepInEpoch: Int { (position + configuration.batchSize - 1) / configuration.batchSize }
    /// Samples in the next step (the last step of an epoch may be short).
    public var nextBatchSize: Int { min(configuration.batchSize, data.count - position) }
    /// The energy the next step will cost, J (what the meter will record for it).
    public var nextStepCost: Double {
        costModel.stepJoules(
            batch: nextBatchSize, weightBits: network.weightBits, activationBits: network.activationBits,
            errorBits: network.errorBits)
    }

    /// The sheets of a step of `batch` samples at the current bits, priced once and reused.
    private mutating func sheets(batch: Int) -> [CostSheet] {
        let bits = [network.weightBits, network.activationBits, network.errorBits]
        if let c = cachedSheets, c.batch == batch, c.bits == bits { return c.sheets }
        let sheets = costModel.stepSheets(
            batch: batch, weightBits: bits[0], activationBits: bits[1], errorBits: bits[2])
        cachedSheets = (batch, bits, sheets)
        return sheets
    }

    /// Takes one step; returns its mean loss.
    @discardableResult
    public mutating func step() -> Float {
        let c = configuration
        if position == 0 {
            order.shuffle(using: &shuffle)
            epoch += 1
            epochLossSum = 0
            epochLossCount = 0
        }
        let hi = min(data.count, position + c.batchSize)
        let idx = Array(order[position..<hi])
        let n = idx.count
        let q = network.quantization
        let x =
            network.takesInputCodes
            ? data.codeBatch(
                indices: idx, bits: network.activationBits.first ?? q.activationBits, rounding: q.activationRounding,
                random: &context.random)
            : data.batch(indices: idx)
        let labels = data.labels(at: idx)
        let t0 = MonotonicClock.seconds()
        let stepSheets = sheets(batch: n)
        if iteration == 0 || currentMemory.totalBytes > peakMemory.totalBytes { peakMemory = currentMemory }
        // The last steps before each decision measure how much of each activation and error tensor underflows.
        let toDecision = c.controller.interval - (iteration % c.controller.interval)
        context.measuringCodes = c.precision == .apt && measuresCodes && toDecision <= TrainingSession.measuredSteps
        let loss = network.trainStep(consume x, labels: labels[...], context: &context, sheets: stepSheets)
        trainSeconds += MonotonicClock.seconds() - t0
        iteration += 1
        samplesTrained += n
        epochLossSum += Double(loss) * Double(n)
        epochLossCount += n
        position = hi
        if c.precision == .apt && iteration % c.controller.interval == 0 { adaptPrecision() }
        lastEpochLoss = epochLossSum / Double(max(epochLossCount, 1))
        if position == data.count { position = 0 }
        return loss
    }

    private mutating func adaptPrecision() {
        if TrainingSession.traceCodes {
            let a = context.activationUnderflow.map { String(Int(($0.fraction * 1000).rounded())) }
            let e = context.errorUnderflow.map { String(Int(($0.fraction * 1000).rounded())) }
            let line =
                "codes \(iteration) a‰ \(a.joined(separator: ",")) e‰ \(e.joined(separator: ",")) loss \(lastEpochLoss)\n"
            _ = line.utf8CString.withUnsafeBufferPointer { write(2, $0.baseAddress, $0.count - 1) }
        }
        let before = network.precision
        let made = controller.evaluate(network: &network, iteration: iteration, random: &controlRandom)
        noteWeightFormats(since: before)
        // Activation and error widths from their measured underflow.
        let s = configuration.controller
        let n = network.activationBits.count
        var activations = network.activationBits
        var errors = network.errorBits
        // A policy's ranges, else the settings' range for every layer; neither: the widths stay.
        if let ranges = codeBitRanges?.activations ?? s.activationBits.map({ .init(repeating: $0, count: n) }) {
            activations = controller.decideCodeBits(
                kind: 0, bits: activations, underflow: context.activationUnderflow, ranges: ranges,
                thresholds: s.activationUnderflow)
        }
        if let ranges = codeBitRanges?.errors ?? s.errorBits.map({ .init(repeating: $0, count: n) }) {
            errors = controller.decideCodeBits(
                kind: 1, bits: errors, underflow: context.errorUnderflow, ranges: ranges,
                thresholds: s.errorUnderflow)
        }
        let codeChanges = (try? applyCodeBits(activations: activations, errors: errors)) ?? 0
        resetUnderflow()
        precisionChanges += made.count + codeChanges
        if made.count + codeChanges > 0 { updateMemoryFootprint() }
    }

    /// Empties the underflow counts, one per weighted layer, for the next window.
    private mutating func resetUnderflow() {
        let n = network.activationBits.count
        context.activationUnderflow = [UnderflowCounts](repeating: UnderflowCounts(), count: n)
        context.errorUnderflow = [UnderflowCounts](repeating: UnderflowCounts(), count: n)
    }

    /// `bits`, each moved into its range (unchanged without ranges).
    static func clamp(_ bits: [Int], to ranges: [ClosedRange<Int>]?) -> [Int] {
        guard let ranges else { return bits }
        return zip(bits, ranges).map { min(max($0, $1.lowerBound), $1.upperBound) }
    }

    /// Records in `bitsHistory` every weight format that differs from `before`.
    private mutating func noteWeightFormats(since before: [LayerPrecision]) {
        for (h, (was, now)) in zip(before, network.precision).enumerated()
        where was.bits != now.bits || was.fractionBits != now.fractionBits {
            bitsHistory[h].points.append([iteration, now.bits, now.fractionBits])
        }
    }

    /// Gives the network these activation and error widths (validated), recording each change in `bitsHistory`;
    /// returns the number of widths that changed. The caller re-prices a step's memory.
    @discardableResult
    private mutating func applyCodeBits(activations: [Int], errors: [Int]) throws(ConfigurationError) -> Int {
        let n = network.activationBits.count
        let (oldActivations, oldErrors) = (network.activationBits, network.errorBits)
        try network.setCodeBits(activations: activations, errors: errors)
        var changed = 0
        for k in 0..<n where activations[k] != oldActivations[k] {
            bitsHistory[n + k].points.append([iteration, activations[k]])
            changed += 1
        }
        for k in 0..<n where errors[k] != oldErrors[k] {
            bitsHistory[2 * n + k].points.append([iteration, errors[k]])
            changed += 1
        }
        return changed
    }

    /// Steps measured for the code widths before each decision.
    static let measuredSteps = 5

    /// Whether the steps before a decision measure code underflow: when the controller adapts code widths
    /// (its settings or a policy's ranges ask it to), or `APT_CODE_TRACE` asks for the figures.
    private var measuresCodes: Bool {
        configuration.controller.activationBits != nil || configuration.controller.errorBits != nil
            || codeBitRanges != nil || TrainingSession.traceCodes
    }

    /// One history per weighted layer and tensor kind (weights, then activations, then errors), each starting
    /// with the network's widths now.
    static func histories(of network: Network) -> [BitsHistory] {
        let p = network.precision
        return p.map {
            BitsHistory(layer: $0.layer, name: $0.name, kind: .weights, points: [[0, $0.bits, $0.fractionBits]])
        }
            + p.indices.map {
                BitsHistory(
                    layer: p[$0].layer, name: p[$0].name, kind: .activations, points: [[0, network.activationBits[$0]]])
            }
            + p.indices.map {
                BitsHistory(layer: p[$0].layer, name: p[$0].name, kind: .errors, points: [[0, network.errorBits[$0]]])
            }
    }

    /// Whether `APT_CODE_TRACE` asks for each decision's measured underflow on stderr (per mille, activations
    /// and errors of each weighted layer): a research aid for choosing the thresholds.
    static let traceCodes = getenv("APT_CODE_TRACE") != nil

    /// Re-prices a step's memory after the bits changed (the peak follows at the next step taken).
    private mutating func updateMemoryFootprint() {
        currentMemory = network.trainingMemory(batch: configuration.batchSize, momentum: configuration.momentum)
        if iteration == 0 { peakMemory = currentMemory }
    }

    /// Takes up to `steps` steps. Before each it checks that the step's cost keeps the energy spent within
    /// `energyLimit` (J, counted from the session's start) and asks `shouldStop`; `progress` is called after
    /// every 20th step of an epoch and at its end.
    @discardableResult
    public mutating func run(
        steps: Int, energyLimit: Double? = nil, shouldStop: (() -> Bool)? = nil,
        progress: ((TrainingProgress) -> Void)? = nil
    ) -> Outcome {
        var outcome = Outcome(steps: 0, samples: 0, stopReason: .completed)
        let totalEpochs = max(configuration.epochs, 1)
        while outcome.steps < steps {
            if let limit = energyLimit {
                // A relative margin of 1e-9 absorbs the rounding between the predicted sum and the meter's own
                // sum of the same terms, so the energy recorded never exceeds the limit.
                if energyJ + nextStepCost > limit * (1 - 1e-9) {
                    outcome.stopReason = .energyLimit
                    break
                }
            }
            if let shouldStop, shouldStop() {
                outcome.stopReason = .stopped
                break
            }
            let n = nextBatchSize
            step()
            outcome.steps += 1
            outcome.samples += n
            outcome.correct += context.correct
            if let progress {
                let inEpoch = position == 0 ? stepsPerEpoch : stepInEpoch
                if (inEpoch - 1) % 20 == 0 || inEpoch == stepsPerEpoch {
                    progress(
                        TrainingProgress(
                            epoch: epoch, epochs: totalEpochs, step: inEpoch, stepsPerEpoch: stepsPerEpoch,
                            loss: lastEpochLoss, bits: network.precision.map(\.bits), energyJ: energyJ))
                }
            }
        }
        return outcome
    }

    /// Limits each weighted layer's weight bits to `ranges` (one per weighted layer, in order, within 2...16),
    /// as a coordinator's policy does. A layer outside its range is moved into it at once: fewer bits keep
    /// its range and coarsen its step, more bits refine its step. The APT controller then adapts within the
    /// ranges. Ignored in fp32 (no weight bits).
    public mutating func setWeightBitRanges(_ ranges: [ClosedRange<Int>]) throws(ConfigurationError) {
        let weighted = network.parametricIndices
        guard ranges.count == weighted.count else {
            throw ConfigurationError(
                "weight-bit ranges: \(ranges.count) given, model '\(configuration.model.name)' has \(weighted.count) "
                    + "weighted layers")
        }
        for (k, r) in ranges.enumerated()
        where r.lowerBound < FixedPointFormat.minSupportedBits || r.upperBound > FixedPointFormat.maxSupportedBits {
            throw ConfigurationError(field: "layerBits[\(k)]", value: "\(r)", requirement: "within 2...16")
        }
        guard network.mode.isFixedPoint else { return }
        let before = network.precision
        for (k, i) in weighted.enumerated() {
            controller.setRange(ranges[k], for: i)
            network.withParametricLayer(at: i) { layer in
                guard let f = layer.weights.format, !ranges[k].contains(f.bits) else { return }
                let bits = min(max(f.bits, ranges[k].lowerBound), ranges[k].upperBound)
                layer.weights.requantize(
                    to: FixedPointFormat(bits: bits, fractionBits: f.fractionBits + bits - f.bits),
                    random: &controlRandom)
            }
        }
        noteWeightFormats(since: before)
        updateMemoryFootprint()
    }

    /// Limits each weighted layer's activation and error widths to `activations[k]` and `errors[k]` (one per
    /// weighted layer, within 2...16), as a coordinator's policy does: a width outside its range moves into it
    /// at once, and from then on the controller adapts each width within its range from its underflow (a range
    /// of one width pins it). Ignored in fp32.
    public mutating func setCodeBitRanges(
        activations: [ClosedRange<Int>], errors: [ClosedRange<Int>]
    ) throws(ConfigurationError) {
        let n = network.activationBits.count
        for (name, ranges) in [("activationBits", activations), ("errorBits", errors)] {
            guard ranges.count == n else {
                throw ConfigurationError(
                    "\(name) ranges: \(ranges.count) given, model '\(configuration.model.name)' has \(n) weighted layers"
                )
            }
            for (k, r) in ranges.enumerated() where r.lowerBound < 2 || r.upperBound > 16 {
                throw ConfigurationError(field: "\(name)[\(k)]", value: "\(r)", requirement: "within 2...16")
            }
        }
        guard network.mode.isFixedPoint else { return }
        codeBitRanges = (activations, errors)
        try applyCodeBits(
            activations: TrainingSession.clamp(network.activationBits, to: activations),
            errors: TrainingSession.clamp(network.errorBits, to: errors))
        updateMemoryFootprint()
    }

    /// The per-layer activation and error width ranges a policy set (nil: the controller's settings apply).
    public private(set) var codeBitRanges: (activations: [ClosedRange<Int>], errors: [ClosedRange<Int>])? = nil

    /// Sets the bits of each weighted layer's input activation codes and error codes (one each per weighted layer,
    /// in 2...16), from the next step on, recording the changes in `bitsHistory`. Ignored in fp32.
    public mutating func setCodeBits(activations: [Int], errors: [Int]) throws(ConfigurationError) {
        guard network.mode.isFixedPoint else { return }
        try applyCodeBits(activations: activations, errors: errors)
        updateMemoryFootprint()
    }

    /// Replaces the model with fixed-point codes at their own formats (a coordinator's global model, sent at
    /// this node's precision), keeping the optimiser state, random streams and place in the data.
    public mutating func loadParameters(codes tensors: [FixedPointTensor]) throws(ConfigurationError) {
        let before = network.precision
        try network.loadParameters(codes: tensors)
        noteWeightFormats(since: before)
        cachedSheets = nil
        updateMemoryFootprint()
    }

    /// Replaces the model with real values (a float32 node's global model), each tensor quantised into its
    /// current format when the network is fixed point; keeps the optimiser state, random streams and place in
    /// the data. A refused load (wrong count or size, a non-finite value) changes nothing.
    public mutating func loadParameters(_ values: [[Float]]) throws(ConfigurationError) {
        try network.loadParameters(values)
        cachedSheets = nil
        updateMemoryFootprint()
    }

    /// The model's parameter tensors as stored now, in wire order.
    public var parameterSnapshot: [ParameterBlock.Values] { network.parameterSnapshot }

    /// The weight-bit range of each weighted layer now.
    public var weightBitRanges: [ClosedRange<Int>] { network.parametricIndices.map { controller.range(for: $0) } }

    /// Accuracy and mean loss of the current model on `test` (no energy counted).
    public mutating func evaluate(_ test: Dataset) -> (accuracy: Double, loss: Double) { network.evaluate(test) }

    /// Adds the current model's results on `chunk` to `sums` (a test set streamed chunk by chunk).
    public mutating func evaluate(_ chunk: Dataset, into sums: inout EvaluationSums) {
        network.accumulateEvaluation(chunk, into: &sums)
    }

    /// The report of the session so far, with `test` evaluated now.
    public mutating func report(test: Dataset, epochs: Int, stopReason: StopReason) -> TrainingReport {
        let (accuracy, testLoss) = network.evaluate(test)
        return report(accuracy: accuracy, testLoss: testLoss, epochs: epochs, stopReason: stopReason)
    }

    /// The report of the session so far, with a test accuracy and loss measured by the caller (e.g. over a
    /// test set streamed in chunks through `evaluate`).
    public mutating func report(accuracy: Double, testLoss: Double, epochs: Int, stopReason: StopReason)
        -> TrainingReport
    {
        let c = configuration
        let n = network.activationBits.count
        for (h, p) in network.precision.enumerated() where bitsHistory[h].points.last?[0] != iteration {
            bitsHistory[h].points.append([iteration, p.bits, p.fractionBits])
        }
        for k in 0..<n where bitsHistory[n + k].points.last?[0] != iteration {
            bitsHistory[n + k].points.append([iteration, network.activationBits[k]])
        }
        for k in 0..<n where bitsHistory[2 * n + k].points.last?[0] != iteration {
            bitsHistory[2 * n + k].points.append([iteration, network.errorBits[k]])
        }
        let totals = context.meter.perLayer.reduce(into: OperationCounts()) { $0.add($1) }
        updateMemoryFootprint()
        let end = currentMemory
        let peak = peakMemory
        let meter = context.meter
        return TrainingReport(
            model: c.model.name, precision: c.precision.description, tradeoff: c.tradeoff, profile: c.profile.name,
            seed: c.seed, epochs: epochs, batch: c.batchSize, lr: Double(c.learningRate), accuracy: accuracy,
            loss: testLoss, trainLoss: lastEpochLoss, energyJ: meter.totalJoules, energyBreakdown: meter.breakdown(),
            energyPerLayer: network.layers.indices.map { i in
                let counts = meter.perLayer[i]
                return LayerEnergy(
                    layer: i, name: network.layers[i].name, energy: meter.breakdown(layers: i..<i + 1),
                    macs: counts.macs, bytesMoved: counts.bytesMoved)
            },
            macs: totals.macs, paramBytes: end.parameterBytes, optimizerBytes: end.optimizerBytes,
            savedActivationBytes: peak.savedActivationBytes, gradientBytes: peak.gradientBytes,
            workspaceBytes: peak.workspaceBytes, peakTrainBytes: peak.totalBytes,
            peakRssBytes: ProcessMemory.peakResidentBytes(),
            samplesPerS: trainSeconds > 0 ? Double(samplesTrained) / trainSeconds : 0, trainSeconds: trainSeconds,
            samplesTrained: samplesTrained, iterations: iteration, bits: network.precision.map(\.bits),
            bitsHistory: bitsHistory, precisionChanges: precisionChanges, stopReason: stopReason.rawValue)
    }
}
