import Testing

@testable import APTCore

@Suite("APT precision controller")
struct ControllerTests {
    func stats(gavg: Double, saturationRate: Double = 0, n: Int = 1000) -> UpdateStatistics {
        var s = UpdateStatistics()
        s.elements = n
        s.sumAbsSteps = gavg * Double(n)
        s.saturations = Int(saturationRate * Double(n))
        return s
    }

    @Test("underflowing updates raise the bitwidth by one fractional bit")
    func raisesOnUnderflow() {
        var c = PrecisionController(settings: ControllerSettings(lowerThreshold: 1, upperThreshold: 8))
        let f = FixedPointFormat(bits: 8, fractionBits: 10)
        let d = c.decide(layer: 0, statistics: stats(gavg: 0.2), format: f, maxAbsCode: 100)
        #expect(d?.0 == FixedPointFormat(bits: 9, fractionBits: 11))
        #expect(d?.1 == .underflow)
        // At maxBits nothing grows.
        var capped = PrecisionController(settings: ControllerSettings(lowerThreshold: 1, upperThreshold: 8, maxBits: 8))
        #expect(capped.decide(layer: 0, statistics: stats(gavg: 0.2), format: f, maxAbsCode: 100) == nil)
    }

    @Test("large updates lower the bitwidth after `patience` evaluations")
    func lowersOnLargeUpdates() {
        var c = PrecisionController(settings: ControllerSettings(lowerThreshold: 1, upperThreshold: 8, patience: 2))
        let f = FixedPointFormat(bits: 12, fractionBits: 14)
        #expect(c.decide(layer: 3, statistics: stats(gavg: 20), format: f, maxAbsCode: 1500) == nil)
        let d = c.decide(layer: 3, statistics: stats(gavg: 20), format: f, maxAbsCode: 1500)
        #expect(d?.0 == FixedPointFormat(bits: 11, fractionBits: 13))
        #expect(d?.1 == .largeUpdates)
        // In between the thresholds: no change (and range in use: no trimming).
        #expect(c.decide(layer: 3, statistics: stats(gavg: 3), format: f, maxAbsCode: 1500) == nil)
    }

    @Test("saturating weights widen the range; an unused top bit is dropped")
    func rangeRules() {
        var c = PrecisionController(settings: ControllerSettings())
        let f = FixedPointFormat(bits: 8, fractionBits: 9)
        let grow = c.decide(layer: 0, statistics: stats(gavg: 3, saturationRate: 0.01), format: f, maxAbsCode: 127)
        #expect(grow?.0 == FixedPointFormat(bits: 9, fractionBits: 9))
        #expect(grow?.1 == .saturation)
        let trim = c.decide(layer: 0, statistics: stats(gavg: 3), format: f, maxAbsCode: 20)
        #expect(trim?.0 == FixedPointFormat(bits: 7, fractionBits: 9))
        #expect(trim?.1 == .unusedRange)
    }

    @Test("the knob moves the thresholds: higher knob, lower thresholds; from 0.75 it adapts code widths")
    func knob() {
        let lo = ControllerSettings.forTradeoff(0.25)
        let mid = ControllerSettings.forTradeoff(0.5)
        let hi = ControllerSettings.forTradeoff(0.75)
        #expect(lo.lowerThreshold > mid.lowerThreshold && mid.lowerThreshold > hi.lowerThreshold)
        #expect(mid.activationBits == nil && mid.errorBits == nil)
        for t in [0.75, 1] {
            let c = TrainingConfiguration(model: .mlp, precision: .apt, tradeoff: t)
            let w = c.quantization.activationBits
            #expect(c.activationBitRange == (w - 1)...(w + 1) && c.errorBitRange == c.activationBitRange)
        }
        let q = TrainingConfiguration.defaultQuantization(precision: .apt, tradeoff: 1)
        #expect(
            q.activationBits < TrainingConfiguration.defaultQuantization(precision: .apt, tradeoff: 0.5).activationBits)
    }

    @Test("each step up of the knob prices a step for less energy and holds less memory, from the spec alone")
    func knobStepsSaveEnergyAndMemory() throws {
        for spec in [ModelSpec.mlp, .lenet] {
            for profile in DeviceProfile.builtIn {
                var last: (knob: Double, joules: Double, bytes: Int)?
                for t in [0, 0.25, 0.5, 0.75, 1] {
                    let c = TrainingConfiguration(model: spec, precision: .apt, tradeoff: t, profile: profile)
                    // The widest weights and codes the knob allows: what a node's budget check holds it to.
                    let memory = try MemoryModel(
                        spec: spec, mode: .apt, quantization: c.quantization, momentum: c.momentum)
                    let n = memory.weightedLayerCount
                    let bits = [Int](repeating: c.controller.maxBits, count: n)
                    let (a, e) = (
                        [Int](repeating: c.activationBitRange.upperBound, count: n),
                        [Int](repeating: c.errorBitRange.upperBound, count: n)
                    )
                    let joules = try CostModel(
                        spec: spec, mode: .apt, quantization: c.quantization, momentum: c.momentum, profile: profile
                    ).stepJoules(batch: 64, weightBits: bits, activationBits: a, errorBits: e)
                    let bytes = try Trainer.plannedMemory(configuration: c, batch: 64).totalBytes
                    #expect(
                        bytes
                            == memory.footprint(batch: 64, weightBits: bits, activationBits: a, errorBits: e).totalBytes
                    )
                    if let last {
                        #expect(
                            joules < last.joules,
                            "\(spec.name) \(profile.name): knob \(t) costs no less than \(last.knob)")
                        #expect(
                            bytes < last.bytes,
                            "\(spec.name) \(profile.name): knob \(t) holds no less than \(last.knob)")
                    }
                    last = (t, joules, bytes)
                }
            }
        }
    }

    @Test("in a real network, tiny learning rates make every layer gain bits")
    func networkGainsBits() throws {
        var c = TrainingConfiguration(model: .mlp, precision: .apt)
        c.learningRate = 1e-4
        var net = try Network(spec: .mlp, mode: .apt, quantization: c.quantization, seed: 1)
        var ctx = StepContext(
            mode: .apt, quantization: c.quantization,
            hyper: UpdateHyperparameters(learningRate: c.learningRate, momentum: 0),
            random: RandomSource(seed: 2), meter: EnergyMeter(profile: .generic45nm, layers: 6),
            training: true)
        var random = RandomSource(seed: 3)
        let x = Batch(values: (0..<(16 * 784)).map { _ in random.nextUnitFloat() }, count: 16, shape: [1, 28, 28])
        let labels = (0..<16).map { UInt8($0 % 10) }
        let before = net.precision.map(\.bits)
        for _ in 0..<3 { _ = net.trainStep(x, labels: labels[...], context: &ctx) }
        for p in net.parametricIndices {
            let s = net.withParametricLayer(at: p) { $0.weights.statistics }
            #expect(s.underflowRate > 0.5, "layer \(p) underflow rate \(s.underflowRate)")
        }
        var controller = PrecisionController(settings: c.controller)
        let changes = controller.evaluate(network: &net, iteration: 3, random: &random)
        #expect(changes.count == 3)
        #expect(zip(before, net.precision.map(\.bits)).allSatisfy { $0 + 1 == $1 })
        #expect(changes.allSatisfy { $0.reason == .underflow })
    }

    @Test("code widths: a bit more above the underflow range, a bit less after `patience` looks below it, within range")
    func codeWidths() {
        var c = PrecisionController(settings: ControllerSettings(patience: 2))
        func counts(_ fractions: [Double]) -> [UnderflowCounts] {
            fractions.map {
                var u = UnderflowCounts()
                u.nonzero = 1000
                u.under = Int($0 * 1000)
                return u
            }
        }
        let range = 4...8
        let thresholds = 0.1...0.5
        // Layer 0 above the range, layer 1 inside, layer 2 below, layer 3 unmeasured.
        var u = counts([0.7, 0.3, 0.05, 0])
        u[3].nonzero = 0
        var bits = c.decideCodeBits(kind: 1, bits: [6, 6, 6, 6], underflow: u, range: range, thresholds: thresholds)
        #expect(bits == [7, 6, 6, 6])  // layer 2 waits for a second look below
        bits = c.decideCodeBits(kind: 1, bits: bits, underflow: u, range: range, thresholds: thresholds)
        #expect(bits == [8, 6, 5, 6])
        bits = c.decideCodeBits(kind: 1, bits: bits, underflow: u, range: range, thresholds: thresholds)
        #expect(bits == [8, 6, 5, 6])  // at the top of the range; layer 2's patience restarted
        // A look inside the range resets the patience: one more look below does not lower it.
        bits = c.decideCodeBits(
            kind: 1, bits: bits, underflow: counts([0.7, 0.3, 0.3, 0]), range: range, thresholds: thresholds)
        bits = c.decideCodeBits(kind: 1, bits: bits, underflow: u, range: range, thresholds: thresholds)
        #expect(bits[2] == 5)
        // Activations keep their own patience.
        let a = c.decideCodeBits(kind: 0, bits: [4, 4, 4, 4], underflow: u, range: range, thresholds: thresholds)
        #expect(a == [5, 4, 4, 4])
    }
}
