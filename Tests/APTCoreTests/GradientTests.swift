import Testing

@testable import APTCore

/// Checks every layer's hand-written backward pass against central finite differences, in fp32.
@Suite("Gradients against finite differences")
struct GradientTests {
    static let q = TrainingConfiguration.defaultQuantization(precision: .fp32, tradeoff: 0.5)

    func context(lr: Float = 0) -> StepContext {
        StepContext(
            mode: .fp32, quantization: Self.q, hyper: UpdateHyperparameters(learningRate: lr, momentum: 0),
            random: RandomSource(seed: 1), meter: EnergyMeter(profile: .generic45nm, layers: 1), training: true)
    }

    /// L(x) = Σ forward(x) ⊙ r.
    func loss<L: Layer>(_ layer: L, _ x: Batch, _ r: [Float]) -> Double {
        var l = layer
        var ctx = context()
        ctx.training = false
        let y = l.forward(x, context: &ctx)
        return zip(y.values, r).reduce(0) { $0 + Double($1.0) * Double($1.1) }
    }

    /// Inputs are a shuffled grid with spacing 2/n (no near-ties for max pooling, none near ReLU's kink), and
    /// the step is a fifth of the spacing, so no difference crosses a kink.
    func checkInputGradient<L: Layer>(_ layer: L, input shape: [Int], batch: Int, seed: UInt64) {
        var random = RandomSource(seed: seed)
        let n = batch * shape.reduce(1, *)
        var grid = (0..<n).map { (Float($0) + 0.5) / Float(n) * 2 - 1 }
        grid.shuffle(using: &random)
        let x = Batch(values: grid, count: batch, shape: shape)
        var l = layer
        var ctx = context()
        let y = l.forward(x, context: &ctx)
        let r = (0..<y.values.count).map { _ in random.nextUnitFloat() * 2 - 1 }
        guard
            let dx = l.backward(
                Batch(values: r, count: batch, shape: y.shape), needsInputGradient: true,
                context: &ctx)
        else {
            Issue.record("\(layer.name): no input gradient")
            return
        }
        let eps: Float = 0.4 / Float(n)
        for i in stride(from: 0, to: n, by: max(1, n / 60)) {
            var xp = x
            var xm = x
            xp.values[i] += eps
            xm.values[i] -= eps
            let numeric = (loss(layer, xp, r) - loss(layer, xm, r)) / Double(2 * eps)
            #expect(
                isApproximatelyEqual(Double(dx.values[i]), numeric, absolute: 2e-3, relative: 1e-2),
                "\(layer.name) ∂L/∂x[\(i)]: analytic \(dx.values[i]) numeric \(numeric)")
        }
    }

    /// With lr = 1 and no momentum the update is w ← w − g/B·B… so g = (w_before − w_after) · B / B.
    func checkWeightGradient<L: ParametricLayer>(_ layer: L, input shape: [Int], batch: Int, seed: UInt64) {
        var random = RandomSource(seed: seed)
        let n = batch * shape.reduce(1, *)
        let x = Batch(values: (0..<n).map { _ in random.nextUnitFloat() * 2 - 1 }, count: batch, shape: shape)
        var l = layer
        var ctx = context(lr: 1)
        let y = l.forward(x, context: &ctx)
        let r = (0..<y.values.count).map { _ in random.nextUnitFloat() * 2 - 1 }
        let before = layer.weights.values.dequantized()
        _ = l.backward(Batch(values: r, count: batch, shape: y.shape), needsInputGradient: false, context: &ctx)
        let after = l.weights.values.dequantized()
        let eps: Float = 1e-2
        // The layer applies the batch-mean gradient: (1/B) ∂L/∂w.
        for i in stride(from: 0, to: before.count, by: max(1, before.count / 40)) {
            let analytic = Double(before[i] - after[i]) * Double(batch)
            var plus = layer
            var minus = layer
            var wp = before
            var wm = before
            wp[i] += eps
            wm[i] -= eps
            plus.weights = ParameterBlock(shape: layer.weights.shape, floatValues: wp)
            minus.weights = ParameterBlock(shape: layer.weights.shape, floatValues: wm)
            let numeric = (loss(plus, x, r) - loss(minus, x, r)) / Double(2 * eps)
            #expect(
                isApproximatelyEqual(analytic, numeric, absolute: 3e-3, relative: 1e-2),
                "\(layer.name) ∂L/∂w[\(i)]: analytic \(analytic) numeric \(numeric)")
        }
    }

    @Test("Linear: input and weight gradients")
    func linear() {
        var random = RandomSource(seed: 5)
        let l = Linear(inputs: 7, outputs: 19, mode: .fp32, quantization: Self.q, random: &random)
        checkInputGradient(l, input: [7], batch: 3, seed: 11)
        checkWeightGradient(l, input: [7], batch: 3, seed: 12)
    }

    @Test("Conv2d with stride and padding: input and weight gradients", arguments: [(1, 0), (1, 2), (2, 1)])
    func conv(stride: Int, padding: Int) {
        var random = RandomSource(seed: 6)
        let c = Conv2d(
            inChannels: 2, outChannels: 3, kernel: 3, stride: stride, padding: padding, mode: .fp32,
            quantization: Self.q, random: &random)
        checkInputGradient(c, input: [2, 7, 6], batch: 2, seed: 21)
        checkWeightGradient(c, input: [2, 7, 6], batch: 2, seed: 22)
    }

    @Test(
        "fixed-point Conv2d's input error, made a few input channels at a time, is fp32's within quantisation error",
        arguments: [(3, 5, 1, 2), (5, 3, 1, 1), (7, 3, 2, 0), (2, 1, 1, 0)])
    func fixedConvInputError(channels: Int, kernel: Int, stride: Int, padding: Int) throws {
        let q16 = TrainingConfiguration.defaultQuantization(precision: .fixed(bits: 16), tradeoff: 0.5)
        #expect(Conv2d.errorChunkChannels(channels: channels, kernel: kernel) <= channels)
        var layers: [Conv2d] = []
        for (mode, q) in [(PrecisionMode.fp32, Self.q), (.fixed(bits: 16), q16)] {
            var random = RandomSource(seed: 9)
            layers.append(
                Conv2d(
                    inChannels: channels, outChannels: 4, kernel: kernel, stride: stride, padding: padding,
                    mode: mode, quantization: q, random: &random))
        }
        let shape = [channels, 9, 8]
        var random = RandomSource(seed: 10)
        let x = Batch(
            values: (0..<(2 * shape.reduce(1, *))).map { _ in random.nextUnitFloat() * 2 - 1 }, count: 2,
            shape: shape)
        var errors: [[Float]] = []
        for (k, mode, q) in [(0, PrecisionMode.fp32, Self.q), (1, .fixed(bits: 16), q16)] {
            var ctx = StepContext(
                mode: mode, quantization: q, hyper: UpdateHyperparameters(learningRate: 0, momentum: 0),
                random: RandomSource(seed: 1), meter: EnergyMeter(profile: .generic45nm, layers: 1), training: true)
            let y = layers[k].forward(x, context: &ctx)
            var r = RandomSource(seed: 12)
            let dy = Batch(
                values: (0..<(y.count * y.sampleSize)).map { _ in r.nextUnitFloat() * 2 - 1 }, count: y.count,
                shape: y.shape)
            let dx = try #require(layers[k].backward(dy, needsInputGradient: true, context: &ctx))
            errors.append(dx.values)
        }
        let scale = errors[0].map(abs).max() ?? 1
        #expect(scale > 0)
        for i in errors[0].indices {
            #expect(
                abs(errors[0][i] - errors[1][i]) <= 2e-3 * scale,
                "∂L/∂x[\(i)]: fp32 \(errors[0][i]) vs fixed:16 \(errors[1][i])")
        }
    }

    @Test("ReLU, MaxPool2d and Flatten: input gradients")
    func simpleLayers() {
        checkInputGradient(ReLU(), input: [10], batch: 4, seed: 31)
        checkInputGradient(MaxPool2d(size: 2), input: [2, 6, 4], batch: 2, seed: 32)
        checkInputGradient(Flatten(), input: [2, 3, 3], batch: 2, seed: 33)
    }

    @Test("softmax cross-entropy counts a sample right when its label's logit is the largest (the first on a tie)")
    func softmaxCountsCorrect() {
        // Four samples of three logits: argmax 1, a tie of 0 and 1, argmax 1, a three-way tie.
        let logits = Batch(values: [0.1, 2, -1, 3, 3, 0, -5, -4, -6, 1, 1, 1], count: 4, shape: [3])
        let right: [(labels: [UInt8], correct: Int)] = [([1, 0, 1, 0], 4), ([0, 1, 0, 2], 0), ([1, 1, 1, 0], 3)]
        for (labels, correct) in right {
            #expect(SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels[...]).correct == correct)
        }
    }

    @Test("softmax cross-entropy gradient")
    func softmax() {
        var random = RandomSource(seed: 41)
        let logits = Batch(values: (0..<15).map { _ in random.nextUnitFloat() * 4 - 2 }, count: 3, shape: [5])
        let labels: [UInt8] = [0, 3, 4]
        let (_, g, _) = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels[...])
        let eps: Float = 1e-2
        for i in 0..<15 {
            var p = logits
            var m = logits
            p.values[i] += eps
            m.values[i] -= eps
            let lp = SoftmaxCrossEntropy.lossAndGradient(logits: p, labels: labels[...]).loss
            let lm = SoftmaxCrossEntropy.lossAndGradient(logits: m, labels: labels[...]).loss
            // The returned gradient is of the summed loss; the loss value is the mean.
            let numeric = Double(lp - lm) / Double(2 * eps) * 3
            #expect(
                isApproximatelyEqual(Double(g.values[i]), numeric, absolute: 2e-3, relative: 1e-2),
                "∂L/∂logit[\(i)]: analytic \(g.values[i]) numeric \(numeric)")
        }
    }

    @Test("fixed-point 16-bit forward agrees with fp32 to within quantisation error")
    func fixedMatchesFloat() throws {
        let q16 = TrainingConfiguration.defaultQuantization(precision: .fixed(bits: 16), tradeoff: 0.5)
        var nf = try Network(spec: .lenet, mode: .fp32, quantization: Self.q, seed: 3)
        var nq = try Network(spec: .lenet, mode: .fixed(bits: 16), quantization: q16, seed: 3)
        var random = RandomSource(seed: 4)
        let x = Batch(
            values: (0..<(2 * 784)).map { _ in random.nextUnitFloat() * 2 - 1 }, count: 2, shape: [1, 28, 28])
        let a = nf.logits(x)
        let b = nq.logits(x)
        for i in a.values.indices {
            #expect(
                isApproximatelyEqual(Double(a.values[i]), Double(b.values[i]), absolute: 5e-3, relative: 1e-2),
                "logit \(i): fp32 \(a.values[i]) vs fixed:16 \(b.values[i])")
        }
    }

    @Test(
        "a fixed-point step on the batch as codes equals the step on the float batch, bit for bit",
        arguments: ["mlp", "lenet"])
    func codeInput(model: String) throws {
        let spec = try #require(ModelSpec.builtIn[model])
        let q = TrainingConfiguration.defaultQuantization(precision: .apt, tradeoff: 0.5)
        var random = RandomSource(seed: 8)
        let pixels = (0..<(16 * 28 * 28)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let data = Dataset(images: pixels, labels: (0..<16).map { UInt8($0 % 10) }, rows: 28, cols: 28)
        var nets = [try Network(spec: spec, mode: .apt, quantization: q, seed: 3)]
        nets.append(nets[0])
        #expect(nets[0].takesInputCodes)
        var losses: [Float] = []
        for k in 0..<2 {
            var ctx = StepContext(
                mode: .apt, quantization: q, hyper: UpdateHyperparameters(learningRate: 0.05, momentum: 0.9),
                random: RandomSource(seed: 1), meter: EnergyMeter(profile: .generic45nm, layers: spec.layers.count),
                training: true)
            let idx = Array(0..<16)
            let x =
                k == 0
                ? data.codeBatch(
                    indices: idx, bits: q.activationBits, rounding: q.activationRounding, random: &ctx.random)
                : data.batch(indices: idx)
            #expect((x.codes != nil) == (k == 0))
            losses.append(nets[k].trainStep(x, labels: data.labels(at: idx)[...], context: &ctx))
        }
        #expect(losses[0] == losses[1])
        #expect(nets[0].parameterSnapshot == nets[1].parameterSnapshot)
    }

    /// A spec that pools before its ReLU, pools over 3 × 3 with a remainder row and column, and stacks two ReLUs.
    static let oddSpec = ModelSpec(
        name: "odd", input: [1, 17, 17], classes: 10,
        layers: [
            .conv(outChannels: 4, kernel: 3, stride: 1, padding: 1), .maxPool(size: 2), .relu,
            .conv(outChannels: 8, kernel: 3, stride: 1, padding: 0), .relu, .relu, .maxPool(size: 3), .flatten,
            .linear(outputs: 10),
        ])

    /// A spec whose only (so last) weighted layer lies under a ReLU and a pooling layer: it hands floats on, so
    /// the pooling layer has no signs of codes and the ReLU must keep its mask.
    static let lastConvSpec = ModelSpec(
        name: "lastconv", input: [1, 12, 12], classes: 10,
        layers: [.conv(outChannels: 10, kernel: 11, stride: 1, padding: 0), .relu, .maxPool(size: 2), .flatten])

    @Test(
        "activations and errors handed between layers as codes give the float hand-over's steps, bit for bit",
        arguments: [
            ("lastconv", "apt", 0.5, false),
            ("lenet", "apt", 0.5, false), ("lenet", "apt", 1.0, false), ("mlp", "apt", 0.5, false),
            ("odd", "apt", 0.5, false), ("odd", "apt", 1.0, false), ("lenet", "fixed:10", 0.5, false),
            ("lenet", "apt", 0.5, true), ("mlp", "apt", 0.5, true), ("odd", "apt", 0.5, true),
        ])
    func codesBetweenLayers(model: String, precision: String, tradeoff: Double, mixedBits: Bool) throws {
        let spec = try #require(
            ["odd": Self.oddSpec, "lastconv": Self.lastConvSpec][model] ?? ModelSpec.builtIn[model])
        let mode = try PrecisionMode(parsing: precision)
        let q = TrainingConfiguration.defaultQuantization(precision: mode, tradeoff: tradeoff)
        let side = spec.input[1]
        let batch = 12
        let base = try Network(spec: spec, mode: mode, quantization: q, seed: 5)
        /// Four steps from the same start: codes or floats between layers, each layer's own code widths or not.
        func train(codes: Bool, mixed: Bool) throws -> (losses: [Float], network: Network) {
            var net = base
            if mixed {
                // Different widths per layer, so that a layer handing on codes must use the next one's width.
                let n = net.activationBits.count
                try net.setCodeBits(
                    activations: (0..<n).map { 5 + ($0 * 3) % 4 }, errors: (0..<n).map { 8 - $0 % 3 })
            }
            var ctx = StepContext(
                mode: mode, quantization: q, hyper: UpdateHyperparameters(learningRate: 0.05, momentum: 0.9),
                random: RandomSource(seed: 1), meter: EnergyMeter(profile: .generic45nm, layers: spec.layers.count),
                training: true)
            ctx.codesBetweenLayers = codes
            var data = RandomSource(seed: 2)
            var losses: [Float] = []
            for _ in 0..<4 {
                let x = Batch(
                    values: (0..<(batch * side * side)).map { _ in data.nextUnitFloat() },
                    count: batch, shape: spec.input)
                let labels = (0..<batch).map { _ in UInt8(truncatingIfNeeded: data.next() % 10) }
                losses.append(net.trainStep(x, labels: labels[...], context: &ctx))
            }
            return (losses, net)
        }
        let viaCodes = try train(codes: true, mixed: mixedBits)
        let viaFloats = try train(codes: false, mixed: mixedBits)
        #expect(viaCodes.losses == viaFloats.losses)
        let sameParameters = viaCodes.network.parameterSnapshot == viaFloats.network.parameterSnapshot
        #expect(sameParameters, "the two hand-overs ended with different parameters")
        // The code path was taken: every weighted layer but the last handed on codes in every step.
        for (i, layer) in viaCodes.network.parametricLayers.dropLast() {
            if let conv = layer as? Conv2d { #expect(conv.codePasses.batches == 4, "layer \(i)") }
        }
        #expect(viaCodes.losses.allSatisfy { $0.isFinite })
        if mixedBits {
            // The per-layer widths were used: the same steps at the settings' widths end elsewhere.
            let uniform = try train(codes: true, mixed: false).network.parameterSnapshot
            let differ = uniform != viaCodes.network.parameterSnapshot
            #expect(differ, "per-layer widths made no difference")
        }
    }
}
