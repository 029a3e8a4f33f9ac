import Testing

@testable import APTCore

/// The resumable session a node drives round by round.
@Suite("Resumable training session")
struct TrainingSessionTests {
    static let model = ModelSpec(
        name: "small", input: [1, 28, 28], classes: 10,
        layers: [.flatten, .linear(outputs: 32), .relu, .linear(outputs: 16), .relu, .linear(outputs: 10)])

    static func data(count: Int, seed: UInt64 = 9) -> Dataset {
        var random = RandomSource(seed: seed)
        let labels = (0..<count).map { UInt8($0 % 10) }
        var images = [UInt8](repeating: 0, count: count * 784)
        for i in 0..<count {
            for j in 0..<784 { images[i * 784 + j] = UInt8(truncatingIfNeeded: random.next() % 64) }
            for j in 0..<70 { images[i * 784 + Int(labels[i]) * 70 + j] = 255 }
        }
        return Dataset(images: images, labels: labels, rows: 28, cols: 28)
    }

    static func configuration(_ mode: PrecisionMode) -> TrainingConfiguration {
        var c = TrainingConfiguration(model: model, precision: mode)
        c.batchSize = 16
        c.controller.interval = 3  // several precision decisions within a few steps
        return c
    }

    @Test("two run(steps: n) calls equal one run(steps: 2n), bit for bit", arguments: ["apt", "fp32", "fixed:8"])
    func resumable(mode: String) throws {
        let c = Self.configuration(try PrecisionMode(parsing: mode))
        let d = Self.data(count: 200)  // 13 steps per epoch: 2n = 22 crosses an epoch boundary
        var once = try TrainingSession(configuration: c, data: d)
        var twice = try TrainingSession(configuration: c, data: d)
        once.run(steps: 22)
        twice.run(steps: 11)
        twice.run(steps: 11)
        #expect(once.network.parameterSnapshot == twice.network.parameterSnapshot)
        #expect(once.energyJ == twice.energyJ)
        #expect(once.iteration == 22 && twice.iteration == 22)
        #expect(once.epoch == 2 && twice.epoch == 2)
        #expect(once.bitsHistory == twice.bitsHistory)
        #expect(once.lastEpochLoss == twice.lastEpochLoss)
        // And the next steps keep agreeing (the random streams and the data order carried over too).
        once.run(steps: 5)
        twice.run(steps: 5)
        #expect(once.network.parameterSnapshot == twice.network.parameterSnapshot)
        if mode == "apt" { #expect(once.precisionChanges > 0, "the controller acted during the test") }
    }

    @Test("the next step's cost is known before it is taken")
    func nextStepCost() throws {
        var s = try TrainingSession(configuration: Self.configuration(.apt), data: Self.data(count: 40))
        for _ in 0..<6 {  // includes the short last step of each epoch (40 = 16 + 16 + 8)
            let predicted = s.nextStepCost
            let before = s.energyJ
            s.step()
            #expect(isApproximatelyEqual(s.energyJ - before, predicted, absolute: 0, relative: 1e-12))
        }
    }

    @Test("run stops before a step that would pass the energy limit, or when told to")
    func stops() throws {
        var s = try TrainingSession(configuration: Self.configuration(.apt), data: Self.data(count: 64))
        let perStep = s.nextStepCost
        let limit = perStep * 3.5
        let outcome = s.run(steps: 100, energyLimit: limit)
        #expect(outcome.stopReason == .energyLimit)
        #expect(outcome.steps == 3)
        #expect(s.energyJ <= limit)
        var calls = 0
        let stopped = s.run(
            steps: 100,
            shouldStop: {
                calls += 1
                return calls > 2
            })
        #expect(stopped.steps == 2 && stopped.samples == 32 && stopped.stopReason == .stopped)
        #expect((0...32).contains(stopped.correct))
    }

    @Test("per-layer weight-bit ranges are honoured at once and by the controller")
    func bitRanges() throws {
        var s = try TrainingSession(configuration: Self.configuration(.apt), data: Self.data(count: 160))
        s.run(steps: 4)
        let ranges = [4...6, 12...14, 9...9]
        try s.setWeightBitRanges(ranges)
        for (b, r) in zip(s.network.precision.map(\.bits), ranges) { #expect(r.contains(b)) }
        for _ in 0..<10 {
            s.run(steps: 6)
            for (b, r) in zip(s.network.precision.map(\.bits), ranges) { #expect(r.contains(b), "\(b) outside \(r)") }
        }
        #expect(s.weightBitRanges == ranges)
        for (h, r) in zip(s.bitsHistory, ranges) {
            for point in h.points where point[0] >= 4 { #expect(r.contains(point[1]), "history \(point) outside \(r)") }
        }
        #expect(throws: ConfigurationError.self) { try s.setWeightBitRanges([4...6]) }
        #expect(throws: ConfigurationError.self) { try s.setWeightBitRanges([1...6, 4...4, 4...4]) }
        // Narrowing keeps the layer's range (a coarser step), so large weights are not clipped.
        var w = try TrainingSession(configuration: Self.configuration(.apt), data: Self.data(count: 160))
        let before = w.network.parametricLayers[0].layer.weights.values.dequantized()
        try w.setWeightBitRanges([4...4, 16...16, 8...8])
        let after = w.network.parametricLayers[0].layer.weights.values.dequantized()
        let maxBefore = before.map(abs).max() ?? 0
        let maxAfter = after.map(abs).max() ?? 0
        #expect(maxAfter >= maxBefore * 0.5, "narrowing clipped the weights: \(maxBefore) → \(maxAfter)")
    }

    @Test("a policy's code-width ranges alone turn the adaptation on within them; without them the widths stay")
    func policyRangesAdapt() throws {
        var c = Self.configuration(.apt)
        c.controller.activationUnderflow = 0.0...0.001  // any underflow asks for a bit more
        c.controller.errorUnderflow = 0.0...0.001
        var fixed = try TrainingSession(configuration: c, data: Self.data(count: 160))
        let start = fixed.network.activationBits + fixed.network.errorBits
        fixed.run(steps: 60)
        #expect(fixed.network.activationBits + fixed.network.errorBits == start, "widths moved with no range given")
        var s = try TrainingSession(configuration: c, data: Self.data(count: 160))
        let a = [8...8, 6...10, 8...12]
        let e = [8...14, 8...9, 8...11]
        try s.setCodeBitRanges(activations: a, errors: e)
        s.run(steps: 60)
        #expect(s.network.errorBits == e.map(\.upperBound))
        #expect(Array(s.network.activationBits.dropFirst()) == a.dropFirst().map(\.upperBound))
    }

    @Test("per-layer activation and error width ranges are honoured while the controller adapts code widths")
    func codeBitRanges() throws {
        var c = Self.configuration(.apt)
        c.controller.activationBits = 2...16
        c.controller.errorBits = 2...16
        c.controller.activationUnderflow = 0.0...0.001  // any underflow asks for a bit more
        c.controller.errorUnderflow = 0.0...0.001
        var s = try TrainingSession(configuration: c, data: Self.data(count: 160))
        let a = [4...5, 6...9, 3...10]
        let e = [7...9, 5...6, 8...12]
        try s.setCodeBitRanges(activations: a, errors: e)
        for (b, r) in zip(s.network.activationBits, a) { #expect(r.contains(b), "\(b) outside \(r) at once") }
        for (b, r) in zip(s.network.errorBits, e) { #expect(r.contains(b), "\(b) outside \(r) at once") }
        let clamped = s.network.activationBits + s.network.errorBits
        for _ in 0..<10 {
            s.run(steps: 6)
            for (b, r) in zip(s.network.activationBits, a) { #expect(r.contains(b), "\(b) outside \(r)") }
            for (b, r) in zip(s.network.errorBits, e) { #expect(r.contains(b), "\(b) outside \(r)") }
        }
        // The controller moved within the ranges: underflow pushes widths up to each range's top (the first
        // layer's activations, the input image, are not measured and keep theirs).
        #expect(s.network.activationBits + s.network.errorBits != clamped)
        #expect(s.network.errorBits == e.map(\.upperBound))
        #expect(Array(s.network.activationBits.dropFirst()) == a.dropFirst().map(\.upperBound))
        #expect(throws: ConfigurationError.self) { try s.setCodeBitRanges(activations: [4...5], errors: e) }
        #expect(throws: ConfigurationError.self) {
            try s.setCodeBitRanges(activations: a, errors: [1...6, 4...4, 4...4])
        }
    }

    @Test("parameters load as codes at their own formats, exactly", arguments: ["apt", "fp32"])
    func loadCodes(mode: String) throws {
        let m = try PrecisionMode(parsing: mode)
        let q = TrainingConfiguration.defaultQuantization(precision: .apt, tradeoff: 0.5)
        var source = try Network(spec: .lenet, mode: .apt, quantization: q, seed: 1)
        var random = RandomSource(seed: 4)
        // The source at mixed widths, as a coordinator would encode it for this node.
        for (k, i) in source.parametricIndices.enumerated() {
            source.withParametricLayer(at: i) { l in
                if let f = l.weights.format {
                    l.weights.requantize(
                        to: FixedPointFormat(bits: 6 + k, fractionBits: f.fractionBits - 2 + k), random: &random)
                }
            }
        }
        let tensors: [FixedPointTensor] = source.parameterSnapshot.map {
            guard case .fixed(let t) = $0 else { preconditionFailure("fixed-point source") }
            return t
        }
        var target = try Network(
            spec: .lenet, mode: m, quantization: TrainingConfiguration.defaultQuantization(precision: m, tradeoff: 0.5),
            seed: 2)
        try target.loadParameters(codes: tensors)
        if m == .apt {
            #expect(target.parameterSnapshot == source.parameterSnapshot)
            #expect(target.precision.map(\.bits) == [6, 7, 8, 9, 10])
        } else {
            #expect(
                target.parameterSnapshot.map { $0.dequantized() } == source.parameterSnapshot.map { $0.dequantized() })
        }
        #expect(throws: ConfigurationError.self) { try target.loadParameters(codes: Array(tensors.dropLast())) }
        // A session records the formats it was given in bits_history (bits and fractional length).
        guard m == .apt else { return }
        let tiny = Dataset(
            images: [UInt8](repeating: 7, count: 4 * 784), labels: [0, 1, 2, 3], rows: 28, cols: 28)
        var c = TrainingConfiguration(model: .lenet, precision: .apt)
        c.batchSize = 2
        var session = try TrainingSession(configuration: c, data: tiny)
        session.run(steps: 1)
        try session.loadParameters(codes: tensors)
        let loaded = source.precision
        let weights = session.bitsHistory.filter { $0.kind == .weights }
        for (h, p) in zip(weights, loaded) {
            #expect(h.points.last?.dropFirst() == [p.bits, p.fractionBits], "layer \(p.layer): \(h.points)")
        }
        // The loaded formats differ from the session's own in most layers: those are recorded at the load.
        #expect(weights.filter { $0.points.last?.first == 1 }.count >= 3)
    }
}

/// The controller on real training: Fashion-MNIST, the mlp, code widths adapted.
@Suite("Adaptive precision on real training")
struct AdaptivePrecisionTests {
    @Test("weight bits go down as well as up, and activation or error bits change, while the model learns")
    func bitsMoveBothWays() throws {
        guard let spec = ModelSpec.builtIn["mlp"] else { throw ConfigurationError("no mlp") }
        var c = TrainingConfiguration(model: spec, precision: .apt)
        // Start at the widest weights, so that early updates are large in steps; let code widths move in 4...8.
        c.quantization.initialWeightBits = 16
        c.controller.minBits = 6
        c.controller.activationBits = 4...8
        c.controller.errorBits = 4...8
        let train = try Dataset.split(directory: fashionMNIST, train: true, keeping: Array(0..<6400))
        let test = try Dataset.split(directory: fashionMNIST, train: false, keeping: Array(0..<1000))
        var s = try TrainingSession(configuration: c, data: train)
        s.run(steps: 300)
        let weights = s.bitsHistory.filter { $0.kind == .weights }
        let codes = s.bitsHistory.filter { $0.kind != .weights }
        func moves(_ h: BitsHistory) -> (down: Bool, up: Bool) {
            let bits = h.points.map { $0[1] }
            return (zip(bits, bits.dropFirst()).contains { $1 < $0 }, zip(bits, bits.dropFirst()).contains { $1 > $0 })
        }
        #expect(weights.contains { moves($0).down }, "no weight bits went down: \(weights.map(\.points))")
        #expect(weights.contains { moves($0).up }, "no weight bits went up: \(weights.map(\.points))")
        #expect(codes.contains { $0.points.count > 1 }, "no activation or error bits changed")
        // Weight histories record the fractional length with the bits.
        #expect(weights.allSatisfy { $0.points.allSatisfy { $0.count == 3 } })
        #expect(s.evaluate(test).accuracy > 0.7)
    }
}
