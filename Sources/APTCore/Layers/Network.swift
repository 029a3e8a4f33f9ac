/// Precision of one weighted layer at a moment of training.
public struct LayerPrecision: Hashable, Sendable, Codable {
    /// Index of the layer in the network.
    public var layer: Int
    /// Layer name.
    public var name: String
    /// Weight bitwidth (32 for fp32).
    public var bits: Int
    /// Fractional length (0 for fp32).
    public var fractionBits: Int
}

/// A sequential network built from a `ModelSpec` in one `PrecisionMode`: the single copy of the model.
public struct Network: Sendable {
    /// The description it was built from.
    public let spec: ModelSpec
    /// The arithmetic used.
    public let mode: PrecisionMode
    /// Bitwidths and rounding (fixed point).
    public let quantization: QuantizationSettings
    /// The layers.
    public internal(set) var layers: [any Layer]
    /// Per-sample input shape of each layer.
    public let inputShapes: [[Int]]
    /// Bits of each weighted layer's input activation codes, in layer order (fixed point): the settings' width at
    /// first, then as set by `setCodeBits` (the APT controller, a policy).
    public private(set) var activationBits: [Int]
    /// Bits of each weighted layer's error codes (the error of its output), in layer order.
    public private(set) var errorBits: [Int]
    /// Each layer's position among the weighted layers (nil for the others).
    let weightedOrdinal: [Int?]
    /// For each layer, the position of the nearest weighted layer below it (whose error it hands on).
    let weightedBelow: [Int?]
    /// For each layer, whether a ReLU there keeps its mask in fixed point (`reluKeepsMask`).
    let reluKeepsMask: [Bool]
    /// For each weighted layer, the pooling layer it makes error codes for (`poolBelow`).
    let poolBelow: [Int?]
    /// For each layer, the pooling layer fused into it (`fusedPool`; fixed point only).
    let fusedPools: [(pool: Int, size: Int, relu: Bool)?]

    /// Builds and initialises the network from `seed`.
    public init(spec: ModelSpec, mode: PrecisionMode, quantization: QuantizationSettings, seed: UInt64)
        throws(ConfigurationError)
    {
        let shapes = try spec.validate()
        if mode.isFixedPoint { try quantization.validate() }
        self.spec = spec
        self.mode = mode
        self.quantization = quantization
        self.inputShapes = shapes
        (weightedOrdinal, weightedBelow) = Network.weightedPositions(spec.layers)
        reluKeepsMask = spec.layers.indices.map { Network.reluKeepsMask(spec.layers, at: $0) }
        poolBelow = spec.layers.indices.map { Network.poolBelow(spec.layers, weighted: $0) }
        fusedPools = spec.layers.indices.map { mode.isFixedPoint ? Network.fusedPool(spec.layers, at: $0) : nil }
        let weighted = weightedOrdinal.compactMap { $0 }.count
        activationBits = [Int](repeating: quantization.activationBits, count: weighted)
        errorBits = [Int](repeating: quantization.errorBits, count: weighted)
        var random = RandomSource(seed: seed ^ 0x4150_5446_4C45_4554)
        var built: [any Layer] = []
        for (i, l) in spec.layers.enumerated() {
            let shape = shapes[i]
            switch l {
            case .linear(let o):
                built.append(
                    Linear(
                        inputs: shape.reduce(1, *), outputs: o, mode: mode, quantization: quantization,
                        random: &random))
            case .conv(let ch, let k, let s, let p):
                built.append(
                    Conv2d(
                        inChannels: shape[0], outChannels: ch, kernel: k, stride: s, padding: p,
                        mode: mode, quantization: quantization, random: &random))
            case .relu: built.append(ReLU())
            case .maxPool(let s): built.append(MaxPool2d(size: s))
            case .flatten: built.append(Flatten())
            }
        }
        layers = built
    }

    /// Each layer's position among the weighted layers, and the position of the nearest weighted layer below it.
    static func weightedPositions(_ layers: [LayerSpec]) -> (ordinal: [Int?], below: [Int?]) {
        var ordinal: [Int?] = []
        var below: [Int?] = []
        var k = 0
        for l in layers {
            below.append(k > 0 ? k - 1 : nil)
            ordinal.append(isWeighted(l) ? k : nil)
            if isWeighted(l) { k += 1 }
        }
        return (ordinal, below)
    }

    /// Sets the bits of each weighted layer's input activation codes and error codes (one each per weighted
    /// layer, in 2...16). They take effect at the next pass.
    public mutating func setCodeBits(activations: [Int], errors: [Int]) throws(ConfigurationError) {
        let n = activationBits.count
        for (name, bits) in [("activationBits", activations), ("errorBits", errors)] {
            guard bits.count == n else {
                throw ConfigurationError("\(name): \(bits.count) given, model '\(spec.name)' has \(n) weighted layers")
            }
            for (k, b) in bits.enumerated() where !(FixedPointFormat.minSupportedBits...16).contains(b) {
                throw ConfigurationError(field: "\(name)[\(k)]", value: b, requirement: "in 2...16")
            }
        }
        activationBits = activations
        errorBits = errors
    }

    /// Puts the bits layer `i` works at into `context`: a weighted layer's own activation and error bits and the
    /// next one's activation bits (for the codes it hands on); for any other layer, the error bits of the
    /// weighted layer below (whose error it hands on).
    func setBits(forLayer i: Int, _ context: inout StepContext) {
        guard mode.isFixedPoint else { return }
        if let k = weightedOrdinal[i] {
            context.quantization.activationBits = activationBits[k]
            context.quantization.errorBits = errorBits[k]
            context.outputBits = activationBits[min(k + 1, activationBits.count - 1)]
            context.codeOrdinals = (k + 1 < activationBits.count ? k + 1 : nil, k)
        } else if let k = weightedBelow[i] {
            context.quantization.errorBits = errorBits[k]
            context.codeOrdinals = (nil, k)
        } else {
            context.codeOrdinals = (nil, nil)
        }
    }

    /// Indices of the layers with weights.
    public var parametricIndices: [Int] { layers.indices.filter { layers[$0] is any ParametricLayer } }

    /// Index of the first layer that has parameters (no input error is needed below it).
    var firstParametric: Int { parametricIndices.first ?? 0 }

    /// Whether layer `i` hands on activation codes: every weighted layer but the last, in fixed point.
    func quantizesOutput(_ i: Int) -> Bool {
        mode.isFixedPoint && layers[i] is any ParametricLayer && i != parametricIndices.last
    }

    /// For layer `i` of a fixed-point network, a pooling layer: whether its input error goes to a weighted layer
    /// through ReLUs only (then it hands the error on as codes), and whether a ReLU lies on the way.
    func errorPath(below i: Int, context: StepContext) -> (codes: Bool, throughReLU: Bool) {
        guard mode.isFixedPoint else { return (false, false) }
        return Network.poolErrorPath(spec.layers, below: i)
    }

    /// For weighted layer `i` of `layers`: the pooling layer its input error goes to straight (through flattens
    /// only), when that layer hands its error on as codes (`poolErrorPath`): layer `i` then makes the pooled
    /// codes itself, an image at a time.
    static func poolBelow(_ layers: [LayerSpec], weighted i: Int) -> Int? {
        guard isWeighted(layers[i]) else { return nil }
        var j = i - 1
        while j >= 0, case .flatten = layers[j] { j -= 1 }
        guard j >= 0, poolErrorPath(layers, below: j).codes else { return nil }
        return j
    }

    /// How weighted layer `i` hands its input error on when it goes to a pooling layer that hands codes on
    /// (nil otherwise, or when layers hand floats to each other).
    func inputErrorCodes(_ i: Int, context: StepContext) -> InputErrorCodes? {
        guard mode.isFixedPoint, context.codesBetweenLayers, let j = poolBelow[i], let k = weightedBelow[j] else {
            return nil
        }
        let signs =
            Network.poolErrorPath(spec.layers, below: j).throughReLU ? (layers[j] as? MaxPool2d)?.outputSigns : nil
        return InputErrorCodes(mask: signs, bits: errorBits[k], ordinal: k)
    }

    /// For layer `i` of `layers` in a fixed-point network: whether it is a pooling layer whose input error goes to
    /// a weighted layer through ReLUs only, and whether a ReLU lies on the way (the one rule `MemoryModel` shares).
    /// That weighted layer must hand on activation codes (not be the last weighted layer): the pooling layer
    /// then pools codes and keeps the signs of its outputs, which stand in for the ReLUs' masks.
    static func poolErrorPath(_ layers: [LayerSpec], below i: Int) -> (codes: Bool, throughReLU: Bool) {
        guard case .maxPool = layers[i] else { return (false, false) }
        var j = i - 1
        while j >= 0, case .relu = layers[j] { j -= 1 }
        guard j >= 0, isWeighted(layers[j]), layers[(j + 1)...].contains(where: isWeighted) else {
            return (false, false)
        }
        return (true, j < i - 1)
    }

    /// Whether the ReLU at `i` of `layers` keeps its mask for the backward pass in a fixed-point network: not
    /// when the error reaching it is a pooling layer's error codes (`poolErrorPath`), already masked by the
    /// signs that pooling layer kept.
    static func reluKeepsMask(_ layers: [LayerSpec], at i: Int) -> Bool {
        var j = i + 1
        while j < layers.count, case .relu = layers[j] { j += 1 }
        return j == layers.count || !poolErrorPath(layers, below: j).codes
    }

    /// Whether `layer` has weights (linear or convolution).
    static func isWeighted(_ layer: LayerSpec) -> Bool {
        switch layer {
        case .linear, .conv: return true
        default: return false
        }
    }

    /// The weighted layers with their indices, in layer order.
    public var parametricLayers: [(index: Int, layer: any ParametricLayer)] {
        layers.indices.compactMap { i in (layers[i] as? any ParametricLayer).map { (i, $0) } }
    }

    /// The weight precision of each weighted layer.
    public var precision: [LayerPrecision] {
        parametricLayers.map { i, p in
            let f = p.weights.format
            return LayerPrecision(layer: i, name: p.name, bits: f?.bits ?? 32, fractionBits: f?.fractionBits ?? 0)
        }
    }

    /// Number of trainable parameters.
    public var parameterCount: Int { parametricLayers.reduce(0) { $0 + $1.layer.weights.count + $1.layer.bias.count } }

    /// Bytes of all weights and biases as stored now.
    public var parameterBytes: Int { parametricLayers.reduce(0) { $0 + $1.layer.parameterBytes } }

    /// Bytes of the optimiser state (momentum) for coefficient `momentum`.
    public func optimizerBytes(momentum: Float) -> Int {
        parametricLayers.reduce(0) {
            $0 + $1.layer.weights.optimizerBytes(momentum: momentum) + $1.layer.bias.optimizerBytes(momentum: momentum)
        }
    }

    /// Calls `body` on the weighted layer at `index`.
    public mutating func withParametricLayer<R>(at index: Int, _ body: (inout any ParametricLayer) -> R) -> R {
        guard var p = layers[index] as? any ParametricLayer else {
            preconditionFailure("layer \(index) has no parameters")
        }
        layers[index] = Flatten()  // drop the reference so `p` is uniquely owned while mutated
        let r = body(&p)
        layers[index] = p
        return r
    }

    /// Forward pass. With `context.training`, layers keep what the backward pass needs.
    public mutating func forward(_ x: Batch, context: inout StepContext) -> Batch {
        forwardPass(x, context: &context) { _, _ in }
    }

    /// The forward pass, layer by layer; `after(i, &context)` is called once layer `i`'s pass is done. In a
    /// fixed-point network handing codes on, a convolution with a max-pooling layer above it (through a ReLU or
    /// not) runs the three as one (`fusedPool`), handing the pooling layer what it keeps.
    private mutating func forwardPass(
        _ x: consuming Batch, context: inout StepContext, after: (Int, inout StepContext) -> Void
    ) -> Batch {
        var h = x
        var i = 0
        while i < layers.count {
            context.layerIndex = i
            context.quantizeOutput = quantizesOutput(i)
            setBits(forLayer: i, &context)
            context.keepReLUMask = !mode.isFixedPoint || !context.codesBetweenLayers || reluKeepsMask[i]
            if let fused = fusedPools[i], context.codesBetweenLayers {
                context.fusedPool = FusedPool(size: fused.size, relu: fused.relu)
                h = layers[i].forward(consume h, context: &context)
                context.fusedPool = nil
                if let result = context.fusedPoolResult.take(), var pool = layers[fused.pool] as? MaxPool2d {
                    layers[fused.pool] = Flatten()  // drop the reference so `pool` is uniquely owned
                    pool.adopt(result)
                    layers[fused.pool] = pool
                }
                for k in i...fused.pool { after(k, &context) }
                i = fused.pool + 1
                continue
            }
            // Handed over, not shared: a layer that works in place (ReLU) then owns the only reference.
            h = layers[i].forward(consume h, context: &context)
            after(i, &context)
            i += 1
        }
        context.quantizeOutput = false
        return h
    }

    /// For layer `i` of `layers` in a fixed-point network: the max-pooling layer (its index and window) fused
    /// into it when it is a convolution that hands on codes (not the last weighted layer) with that pooling layer
    /// directly above it or above one ReLU (`relu`).
    static func fusedPool(_ layers: [LayerSpec], at i: Int) -> (pool: Int, size: Int, relu: Bool)? {
        guard case .conv = layers[i], layers[(i + 1)...].contains(where: isWeighted) else { return nil }
        var j = i + 1
        let relu = j < layers.count && layers[j] == .relu
        if relu { j += 1 }
        guard j < layers.count, case .maxPool(let size) = layers[j] else { return nil }
        return (j, size, relu)
    }

    /// The pricing of this network's steps under `momentum` and `profile` (the same sheets the meter records).
    public func costModel(momentum: Float, profile: DeviceProfile) -> CostModel {
        CostModel(
            spec: spec, inputShapes: inputShapes, mode: mode, quantization: quantization, momentum: momentum,
            profile: profile)
    }

    /// Whether a training step's input batch is handed over as activation codes (`Dataset.codeBatch`) rather than
    /// floats: in a fixed-point network whose first layer (after any flatten) is linear or a convolution, which
    /// takes the codes as they are.
    public var takesInputCodes: Bool { mode.isFixedPoint && Self.firstLayerTakesCodes(spec) }

    /// Whether `spec`'s first layer after any flatten is linear or a convolution.
    static func firstLayerTakesCodes(_ spec: ModelSpec) -> Bool {
        spec.layers.first(where: { $0 != .flatten }).map(isWeighted) ?? false
    }

    /// The weight bits of each weighted layer now (32 for fp32).
    public var weightBits: [Int] { precision.map(\.bits) }

    /// One SGD step on a batch: forward, loss, backward with in-place updates. Returns the mean loss. The
    /// step's priced sheets (`costModel`, at the weight bits the step starts with) go to `context.meter` pass by
    /// pass as the layers run them.
    /// `observe`, when given, is called after each layer's forward pass and each layer's backward pass (with the
    /// layer index and whether it was the backward pass): a probe of the heap between them uses it.
    /// `sheets`, when given, are this step's sheets from `costModel(…).stepSheets(batch:weightBits:)` at the
    /// current bits (a session caches them between steps).
    /// The batch is consumed: once the first weighted layer has taken what it keeps (codes, in fixed point),
    /// the float input is freed.
    public mutating func trainStep(
        _ x: consuming Batch, labels: ArraySlice<UInt8>, context: inout StepContext, sheets given: [CostSheet]? = nil,
        observe: ((_ layer: Int, _ backward: Bool) -> Void)? = nil
    ) -> Float {
        context.training = true
        let sheets =
            given
            ?? costModel(momentum: context.hyper.momentum, profile: context.meter.profile)
            .stepSheets(batch: x.count, weightBits: weightBits, activationBits: activationBits, errorBits: errorBits)
        let h = forwardPass(consume x, context: &context) { i, context in
            context.meter.record(sheets[i], pass: .forward, layer: i)
            observe?(i, false)
        }
        let (loss, grad, correct) = SoftmaxCrossEntropy.lossAndGradient(logits: h, labels: labels)
        context.correct = correct
        var d: Batch? = grad
        let first = firstParametric
        for i in layers.indices.reversed() {
            guard let dy = d.take() else { break }
            context.layerIndex = i
            context.quantizeOutput = quantizesOutput(i)
            (context.quantizeInputError, context.maskNonPositiveOutputs) = errorPath(below: i, context: context)
            context.inputErrorCodes = i > first ? inputErrorCodes(i, context: context) : nil
            setBits(forLayer: i, &context)
            d = layers[i].backward(consume dy, needsInputGradient: i > first, context: &context)
            for pass in [TrainingPass.backwardInput, .backwardWeights, .update] {
                context.meter.record(sheets[i], pass: pass, layer: i)
            }
            observe?(i, true)
        }
        context.quantizeInputError = false
        context.maskNonPositiveOutputs = false
        context.inputErrorCodes = nil
        for i in layers.indices { layers[i].releaseSaved() }
        return loss
    }

    /// The energy of one training step on `batch` samples at the current bitwidths, J: what the meter will
    /// record for it.
    public func stepCost(batch: Int, momentum: Float, profile: DeviceProfile) -> Double {
        costModel(momentum: momentum, profile: profile).stepJoules(
            batch: batch, weightBits: weightBits, activationBits: activationBits, errorBits: errorBits)
    }

    /// Peak bytes of a training step at the current weight bits (or, with `weightBits`, every weighted layer at
    /// that width, to plan for the widest format APT may reach): `MemoryModel`'s figure, which the heap probe's
    /// test ties to the real heap.
    public func trainingMemory(batch: Int, momentum: Float, weightBits: Int? = nil) -> MemoryFootprint {
        let bits = weightBits.map { [Int](repeating: $0, count: parametricIndices.count) } ?? self.weightBits
        return MemoryModel(
            spec: spec, inputShapes: inputShapes, mode: mode, quantization: quantization, momentum: momentum
        )
        .footprint(batch: batch, weightBits: bits, activationBits: activationBits, errorBits: errorBits)
    }

    /// Class scores for a batch (no state kept, no energy counted).
    public mutating func logits(_ x: Batch, profile: DeviceProfile = .generic45nm) -> Batch {
        var ctx = StepContext(
            mode: mode, quantization: quantization,
            hyper: UpdateHyperparameters(learningRate: 0, momentum: 0),
            random: RandomSource(seed: 7), meter: EnergyMeter(profile: profile, layers: layers.count),
            training: false)
        return forward(x, context: &ctx)
    }

    /// Accuracy and mean loss on `data`, in batches of `batch`.
    public mutating func evaluate(_ data: Dataset, batch: Int = 1000) -> (accuracy: Double, loss: Double) {
        var sums = EvaluationSums()
        accumulateEvaluation(data, into: &sums, batch: batch)
        return (sums.accuracy, sums.meanLoss)
    }

    /// Adds `data`'s correct predictions and summed loss to `sums`, in batches of `batch`: a test set streamed
    /// in chunks of `batch` samples gets exactly the figures `evaluate` gives on it whole.
    public mutating func accumulateEvaluation(_ data: Dataset, into sums: inout EvaluationSums, batch: Int = 1000) {
        var start = 0
        while start < data.count {
            let n = min(batch, data.count - start)
            let x = data.batch(indices: Array(start..<(start + n)))
            let logits = self.logits(x)
            let labels = data.labels[start..<(start + n)]
            let (l, _, correct) = SoftmaxCrossEntropy.lossAndGradient(logits: logits, labels: labels)
            sums.lossSum += Double(l) * Double(n)
            sums.correct += correct
            sums.count += n
            start += n
        }
    }
}

/// Running totals of an evaluation.
public struct EvaluationSums: Sendable, Equatable {
    /// Samples predicted correctly.
    public var correct = 0
    /// Samples seen.
    public var count = 0
    /// Sum of per-sample cross-entropy.
    public var lossSum = 0.0
    /// Empty totals.
    public init() {}
    /// Fraction correct (0 with no samples).
    public var accuracy: Double { Double(correct) / Double(max(count, 1)) }
    /// Mean loss (0 with no samples).
    public var meanLoss: Double { lossSum / Double(max(count, 1)) }
}

/// What a training step holds in memory, by kind.
public struct MemoryFootprint: Sendable, Codable, Equatable {
    /// Weights and biases.
    public var parameterBytes: Int
    /// Momentum.
    public var optimizerBytes: Int
    /// Everything kept from the forward pass for the backward pass.
    public var savedActivationBytes: Int
    /// The largest weight-gradient buffer any layer holds at once.
    public var gradientBytes: Int
    /// The largest transient buffer of any layer (layer outputs, transposes, unfolded patches), reported
    /// separately: not part of `totalBytes`.
    public var workspaceBytes: Int
    /// The peak of everything a step holds besides parameters and optimiser state (the batch, saved tensors,
    /// tensors in flight, every workspace), when known from `MemoryModel`.
    public var stepBytes: Int?

    /// Creates a footprint.
    public init(
        parameterBytes: Int, optimizerBytes: Int, savedActivationBytes: Int, gradientBytes: Int, workspaceBytes: Int,
        stepBytes: Int? = nil
    ) {
        self.parameterBytes = parameterBytes
        self.optimizerBytes = optimizerBytes
        self.savedActivationBytes = savedActivationBytes
        self.gradientBytes = gradientBytes
        self.workspaceBytes = workspaceBytes
        self.stepBytes = stepBytes
    }

    /// Peak training bytes: parameters + optimiser state + the step's peak (or, without a step figure, saved
    /// activations + gradients).
    public var totalBytes: Int { parameterBytes + optimizerBytes + (stepBytes ?? savedActivationBytes + gradientBytes) }
}
