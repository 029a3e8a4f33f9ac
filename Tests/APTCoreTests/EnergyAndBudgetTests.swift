import Testing

@testable import APTCore

@Suite("Energy counting and budgets")
struct EnergyAndBudgetTests {
    static let tiny = ModelSpec(
        name: "tiny", input: [1, 2, 2], classes: 2,
        layers: [.flatten, .linear(outputs: 3), .relu, .linear(outputs: 2)])

    @Test("the meter counts exactly the hand-counted MACs of a tiny network", arguments: ["fp32", "apt", "fixed:8"])
    func handCountedMACs(mode: String) throws {
        let m = try PrecisionMode(parsing: mode)
        let q = TrainingConfiguration.defaultQuantization(precision: m, tradeoff: 0.5)
        var net = try Network(spec: Self.tiny, mode: m, quantization: q, seed: 1)
        var ctx = StepContext(
            mode: m, quantization: q, hyper: UpdateHyperparameters(learningRate: 0.1, momentum: 0.9),
            random: RandomSource(seed: 1), meter: EnergyMeter(profile: .generic45nm, layers: 4),
            training: true)
        let x = Batch(values: (0..<20).map { Float($0) / 20 - 0.5 }, count: 5, shape: [1, 2, 2])
        let predicted = net.stepCost(batch: 5, momentum: 0.9, profile: .generic45nm)
        _ = net.trainStep(x, labels: [0, 1, 0, 1, 1], context: &ctx)
        // Batch 5: layer 1 is 4→3 (60 MACs per product), layer 3 is 3→2 (30). Forward 60+30; the input
        // error is needed only below layer 3 (30); weight gradients 60+30.
        let pass = ctx.meter.perPass
        #expect(pass[.forward]?.macs == 90)
        #expect(pass[.backwardInput]?.macs == 30)
        #expect(pass[.backwardWeights]?.macs == 90)
        let p = DeviceProfile.generic45nm
        let perMAC: Double
        switch m {
        case .fp32: perMAC = p.fp32MultiplyPJ + p.fp32AddPJ
        default: perMAC = p.intMultiplyPJ(8, 8) + p.intAddPJ(32)  // 8-bit weights, activations and errors
        }
        let compute = ctx.meter.perLayer.reduce(0) { $0 + $1.computeJoules }
        #expect(isApproximatelyEqual(compute, 210 * perMAC * 1e-12, absolute: 0, relative: 1e-9))
        #expect(
            isApproximatelyEqual(ctx.meter.totalJoules, predicted, absolute: 0, relative: 1e-9),
            "the step's cost is known before it runs")
    }

    @Test("bytes moved are the hand-counted tensors at their stored widths, codes under 8 bits packed")
    func handCountedTraffic() throws {
        let m = PrecisionMode.fixed(bits: 8)
        var q = TrainingConfiguration.defaultQuantization(precision: m, tradeoff: 0.5)
        q.activationBits = 6
        q.errorBits = 6
        q.momentumBits = 16
        #expect(q.biasBits == 16)
        var net = try Network(spec: Self.tiny, mode: m, quantization: q, seed: 1)
        var ctx = StepContext(
            mode: m, quantization: q, hyper: UpdateHyperparameters(learningRate: 0.1, momentum: 0.9),
            random: RandomSource(seed: 1), meter: EnergyMeter(profile: .generic45nm, layers: 4),
            training: true)
        let x = Batch(values: (0..<20).map { Float($0) / 20 - 0.5 }, count: 5, shape: [1, 2, 2])
        _ = net.trainStep(x, labels: [0, 1, 0, 1, 1], context: &ctx)
        let bytes = ctx.meter.counts.map { $0.map(\.bytesMoved) }  // [layer][pass]
        // Layer 1 (4→3, batch 5, no input error): forward reads 20 6-bit input codes (15 B) and 12 8-bit weights,
        // writes 15 6-bit output codes (12 B); the weight gradient reads the input (15 B) and 15 error codes
        // (12 B); the update reads and writes weights + 16-bit biases (18 B) and 16-bit momentum (30 B).
        #expect(bytes[1] == [15 + 12 + 12, 0, 15 + 12, 2 * 18 + 2 * 30])
        // Layer 3 (3→2, last): forward reads 15 codes (12 B) and 6 weights, writes 10 fp32 logits (40 B);
        // the input error reads 10 error codes (8 B) and the weights, writes 15 error codes (12 B).
        #expect(bytes[3] == [12 + 6 + 40, 8 + 6 + 12, 12 + 8, 2 * 10 + 2 * 16])
        #expect(bytes[0] == [0, 0, 0, 0] && bytes[2] == [0, 0, 0, 0], "flatten and ReLU move nothing of their own")
    }

    @Test("fp32 traffic is the same tensors, hand-counted, four bytes each")
    func handCountedTrafficFloat() throws {
        let q = TrainingConfiguration.defaultQuantization(precision: .fp32, tradeoff: 0.5)
        var net = try Network(spec: Self.tiny, mode: .fp32, quantization: q, seed: 1)
        var ctx = StepContext(
            mode: .fp32, quantization: q, hyper: UpdateHyperparameters(learningRate: 0.1, momentum: 0.9),
            random: RandomSource(seed: 1), meter: EnergyMeter(profile: .generic45nm, layers: 4), training: true)
        let x = Batch(values: (0..<20).map { Float($0) / 20 - 0.5 }, count: 5, shape: [1, 2, 2])
        _ = net.trainStep(x, labels: [0, 1, 0, 1, 1], context: &ctx)
        let bytes = ctx.meter.counts.map { $0.map(\.bytesMoved) }
        // Layer 1 (4→3, batch 5): forward reads 20 inputs and 12 weights, writes 15 outputs; the weight gradient
        // reads the 20 inputs and 15 errors; the update reads and writes 15 parameters and 15 momenta.
        #expect(bytes[1] == [4 * (20 + 12 + 15), 0, 4 * (20 + 15), 4 * (2 * 15 + 2 * 15)])
        // Layer 3 (3→2): forward 15 in, 6 weights, 10 out; input error: 10 errors read, 6 weights, 15 written.
        #expect(bytes[3] == [4 * (15 + 6 + 10), 4 * (10 + 6 + 15), 4 * (15 + 10), 4 * (2 * 8 + 2 * 8)])
    }

    @Test("element-wise work is priced as the operation it is: compares as adds, at the operands' width")
    func elementwisePricing() throws {
        let p = DeviceProfile.generic45nm
        for mode in [PrecisionMode.fixed(bits: 8), .fp32] {
            let q = TrainingConfiguration.defaultQuantization(precision: mode, tradeoff: 0.5)
            let model = try CostModel(spec: Self.tiny, mode: mode, quantization: q, momentum: 0.9, profile: p)
            // The ReLU (index 2) on 5×3 values: one compare forward and one select backward per element.
            let sheet = model.stepSheets(batch: 5, weightBits: [8, 8])[2]
            #expect(sheet.passes.reduce(0) { $0 + $1.scalarOps } == 30)
            let scalar = sheet.passes.reduce(0) { $0 + $1.scalarJoules }
            let each = mode == .fp32 ? p.fp32AddPJ : p.intAddPJ(8)
            #expect(isApproximatelyEqual(scalar, 30 * each * 1e-12, absolute: 0, relative: 1e-9), "\(mode)")
            // The update: per parameter two multiplies and two adds in fp32; two momentum-by-constant multiplies
            // and four 32-bit adds in fixed point.
            let update = model.stepSheets(batch: 5, weightBits: [8, 8])[1][.update]
            let expected =
                mode == .fp32
                ? 15 * 2 * (p.fp32MultiplyPJ + p.fp32AddPJ)
                : 15 * (2 * p.intMultiplyPJ(8, 16) + 4 * p.intAddPJ(32))
            #expect(isApproximatelyEqual(update.scalarJoules, expected * 1e-12, absolute: 0, relative: 1e-9))
        }
    }

    @Test("a CPU profile multiplies at the storage width, an accelerator at the logical width")
    func multiplierWidth() throws {
        var q = TrainingConfiguration.defaultQuantization(precision: .apt, tradeoff: 0.5)
        q.activationBits = 6
        q.errorBits = 6
        for profile in [DeviceProfile.generic45nm, .raspberryPi4] {
            let model = try CostModel(spec: Self.tiny, mode: .apt, quantization: q, momentum: 0.9, profile: profile)
            let forward = model.stepSheets(batch: 5, weightBits: [12, 12])[1][.forward]
            // 60 MACs of 6-bit activations by 12-bit weights into 32-bit sums.
            let width = profile.multiplierWidth == .logical ? (6, 12) : (8, 16)
            let expected = 60 * (profile.intMultiplyPJ(width.0, width.1) + profile.intAddPJ(32))
            #expect(
                isApproximatelyEqual(forward.computeJoules, expected * 1e-12, absolute: 0, relative: 1e-9),
                "\(profile.name)")
        }
        #expect(
            DeviceProfile.builtIn.filter { $0.multiplierWidth == .storage }.map(\.name).sorted() == [
                "cortex-m7", "jetson-nano", "rpi4",
            ])
    }

    @Test("a pass is priced at DRAM when its working set exceeds SRAM, by the same rule for every precision")
    func workingSetRule() throws {
        // The mlp's first layer: 784×256 weights. Its forward working set is the weights plus one sample.
        for (mode, bits) in [(PrecisionMode.fp32, 32), (.apt, 8), (.apt, 16)] {
            let q = TrainingConfiguration.defaultQuantization(precision: mode, tradeoff: 0.5)
            let weightBytes = 784 * 256 * (mode == .fp32 ? 4 : bits <= 8 ? 1 : 2)
            for sram in [weightBytes - 1, weightBytes + 8192] {
                var p = DeviceProfile.generic45nm
                p.sramBytes = sram
                let model = try CostModel(spec: .mlp, mode: mode, quantization: q, momentum: 0.9, profile: p)
                let fwd = model.stepSheets(batch: 64, weightBits: [bits, bits, bits])[1][.forward]
                let rate = fwd.memoryJoules / Double(fwd.bytesMoved) * 1e12
                let expected = sram < weightBytes ? p.dramPJPerByte : p.sramPJPerByte
                #expect(
                    isApproximatelyEqual(rate, expected, absolute: 0, relative: 1e-9), "\(mode) \(bits) SRAM \(sram)")
            }
        }
    }

    @Test("energy per sample never rises more than 10% from batch b to b+1, b = 1…256, every profile")
    func smoothInBatch() throws {
        for profile in DeviceProfile.builtIn {
            for spec in [ModelSpec.mlp, .lenet] {
                for (mode, bits) in [(PrecisionMode.fp32, 32), (.apt, 14), (.apt, 8), (.fixed(bits: 16), 16)] {
                    let q = TrainingConfiguration.defaultQuantization(precision: mode, tradeoff: 0.5)
                    let model = try CostModel(spec: spec, mode: mode, quantization: q, momentum: 0.9, profile: profile)
                    let widths = [Int](repeating: bits, count: model.weightedLayers.count)
                    var previous = model.stepJoules(batch: 1, weightBits: widths)
                    for b in 1...256 {
                        let next = model.stepJoules(batch: b + 1, weightBits: widths) / Double(b + 1)
                        #expect(
                            next <= 1.1 * previous,
                            "\(profile.name) \(spec.name) \(mode): \(previous) J/sample at \(b), \(next) at \(b + 1)")
                        previous = next
                    }
                }
            }
        }
    }

    @Test("a memory budget that cannot fit is refused up front, saying what would fit")
    func memoryRefusal() throws {
        var c = TrainingConfiguration(model: .mlp, precision: .apt)
        // At 16-bit weights the mlp's step needs about 1.12 MB (within 10% of the real heap, see MemoryTests);
        // 8-bit weights or a smaller batch fit in 1.05 MB.
        c.memoryBudget = 1_050_000
        #expect {
            _ = try Trainer(configuration: c)
        } throws: { error in
            let m = (error as? BudgetError)?.message ?? ""
            return m.contains("memory budget 1050000 bytes is too small") && m.contains("would fit: --batch ")
                && m.contains(" or --max-bits 8") && m.contains(" or --precision fixed:8")
        }
        c.memoryBudget = 10_000_000
        #expect(throws: Never.self) { _ = try Trainer(configuration: c) }
        c.memoryBudget = 1000
        #expect {
            _ = try Trainer(configuration: c)
        } throws: { error in ((error as? BudgetError)?.message ?? "").contains("nothing fits") }
    }

    @Test("training stops at the last step that fits the energy budget", arguments: ["apt", "fp32"])
    func energyStop(mode: String) throws {
        let data = syntheticData(count: 64 * 6)
        var probe = TrainingConfiguration(model: Self.tinyImage, precision: try PrecisionMode(parsing: mode))
        probe.epochs = 1
        var t0 = try Trainer(configuration: probe)
        let full = t0.run(train: data, test: data)
        #expect(full.stopReason == "completed")
        var c = probe
        c.energyBudget = full.energyJ * 0.5
        var t = try Trainer(configuration: c)
        let r = t.run(train: data, test: data)
        #expect(r.stopReason == "energy_budget")
        #expect(r.energyJ <= c.energyBudget!)
        #expect(r.iterations >= 2 && r.iterations < full.iterations)
        // It stopped within about a step of the budget (steps differ a little as bits change).
        let perStep = full.energyJ / Double(full.iterations)
        #expect(r.energyJ > c.energyBudget! - 2 * perStep)
    }

    static let tinyImage = ModelSpec(
        name: "tiny-image", input: [1, 28, 28], classes: 10,
        layers: [.flatten, .linear(outputs: 16), .relu, .linear(outputs: 10)])

    func syntheticData(count: Int) -> Dataset {
        var random = RandomSource(seed: 9)
        let labels = (0..<count).map { UInt8($0 % 10) }
        var images = [UInt8](repeating: 0, count: count * 784)
        for i in 0..<count {
            for j in 0..<784 { images[i * 784 + j] = UInt8(truncatingIfNeeded: random.next() % 64) }
            for j in 0..<70 { images[i * 784 + Int(labels[i]) * 70 + j] = 255 }  // a class-specific stripe
        }
        return Dataset(images: images, labels: labels, rows: 28, cols: 28)
    }

    @Test("APT learns the synthetic task; its parameters and energy are below half of fp32's")
    func learnsAndSaves() throws {
        let data = syntheticData(count: 640)
        var results: [String: TrainingReport] = [:]
        for mode in ["apt", "fp32"] {
            var c = TrainingConfiguration(model: Self.tinyImage, precision: try PrecisionMode(parsing: mode))
            c.epochs = 2
            var t = try Trainer(configuration: c)
            results[mode] = t.run(train: data, test: data)
        }
        #expect(results["apt"]!.accuracy > 0.9)
        // Parameters and momentum at 16 bits or fewer: at most half of fp32's (the step's buffers of a model this
        // small are mostly the float input batch, the same in both).
        #expect(
            results["apt"]!.paramBytes + results["apt"]!.optimizerBytes
                <= (results["fp32"]!.paramBytes + results["fp32"]!.optimizerBytes) / 2)
        #expect(results["apt"]!.energyJ < results["fp32"]!.energyJ / 2)
    }
}

/// What lets a coordinator check a node's energy report from its steps and samples alone.
@Suite("Energy is affine in the batch")
struct EnergyAffinityTests {
    @Test(
        "a step's energy is a + b·n for n samples, for every model, precision and profile",
        arguments: [ModelSpec.mlp, ModelSpec.lenet])
    func affine(spec: ModelSpec) throws {
        for mode in [PrecisionMode.apt, .fp32, .fixed(bits: 8)] {
            for profile in DeviceProfile.builtIn {
                let c = TrainingConfiguration(model: spec, precision: mode)
                let cost = try CostModel(
                    spec: spec, mode: mode, quantization: c.quantization, momentum: c.momentum, profile: profile)
                let bits = [Int](repeating: 12, count: cost.weightedLayers.count)
                let j1 = cost.stepJoules(batch: 1, weightBits: bits)
                let b = cost.stepJoules(batch: 2, weightBits: bits) - j1
                let a = j1 - b
                for n in [3, 17, 64, 100, 256] {
                    let j = cost.stepJoules(batch: n, weightBits: bits)
                    #expect(abs(j - (a + b * Double(n))) <= 1e-9 * j, "\(spec.name) \(mode) \(profile.name) n=\(n)")
                }
            }
        }
    }
}
