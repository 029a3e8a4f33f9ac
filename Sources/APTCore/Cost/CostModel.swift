/// Prices a training step from a description alone — the model spec, the precision, the quantisation
/// settings, each weighted layer's weight bits, the batch size and the device profile — without allocating a
/// network. The engine's meter records exactly these sheets as the layers run, and a planner (the
/// coordinator's policy engine, a node checking its budget before a step) asks the same model what a
/// configuration would cost. One pricing rule for every precision (docs/energy-model.md):
///
/// - MACs at the operands' widths: the logical widths on a device that multiplies at them (an accelerator),
///   the storage widths (8 or 16 bits) on a CPU; fp32 MACs at fp32 prices.
/// - Element-wise work priced as the operation it is: a compare or an add as an add, a multiply as a
///   multiply, at the operands' width (fp32 operations at fp32 prices).
/// - Memory traffic at the stored width of each tensor, priced per byte at the SRAM rate when the pass's
///   working set fits the profile's SRAM, else at the DRAM rate. A pass's working set is what it must keep on
///   chip while it streams the batch through, one sample at a time: what it re-uses for every sample (a
///   product's weights; the weight-gradient buffer it accumulates into) plus one sample of each tensor it
///   streams. The update re-uses nothing (it streams parameters and momentum element by element). The working
///   set does not depend on the batch size, so energy per sample changes smoothly with it.
public struct CostModel: Sendable {
    /// What a layer costs depends on.
    enum Shape: Sendable {
        /// A linear or conv layer: MACs per sample of each of its three products, elements per sample of its
        /// input and output, and its weight and bias counts.
        case weighted(macs: Int, input: Int, output: Int, weights: Int, bias: Int, gradientBuffer: Int)
        /// An element-wise activation over `elements` per sample.
        case relu(elements: Int)
        /// Pooling `input` elements per sample into `output`.
        case maxPool(input: Int, output: Int)
        /// A reshape: free.
        case flatten
    }

    /// The model.
    public let spec: ModelSpec
    /// The arithmetic.
    public let mode: PrecisionMode
    /// Bitwidths of activations, errors, gradients, momentum and biases.
    public let quantization: QuantizationSettings
    /// Momentum coefficient (a momentum buffer is read and written when non-zero).
    public let momentum: Float
    /// Pricing.
    public let profile: DeviceProfile
    let shapes: [Shape]
    /// Index of each weighted layer in `spec.layers`.
    public let weightedLayers: [Int]

    /// A model for `spec` (validated) in `mode`.
    public init(
        spec: ModelSpec, mode: PrecisionMode, quantization: QuantizationSettings, momentum: Float,
        profile: DeviceProfile
    ) throws(ConfigurationError) {
        let inputs = try spec.validate()
        self.init(
            spec: spec, inputShapes: inputs, mode: mode, quantization: quantization, momentum: momentum,
            profile: profile)
    }

    /// A model for a spec already validated, with its per-layer input shapes.
    init(
        spec: ModelSpec, inputShapes: [[Int]], mode: PrecisionMode, quantization: QuantizationSettings,
        momentum: Float, profile: DeviceProfile
    ) {
        self.spec = spec
        self.mode = mode
        self.quantization = quantization
        self.momentum = momentum
        self.profile = profile
        var shapes: [Shape] = []
        var weighted: [Int] = []
        for (i, layer) in spec.layers.enumerated() {
            let input = inputShapes[i]
            let n = input.reduce(1, *)
            switch layer {
            case .linear(let o):
                // The weight gradient is formed a slice of rows at a time (`Linear.gradientRows`), in fp32.
                shapes.append(
                    .weighted(
                        macs: n * o, input: n, output: o, weights: n * o, bias: o,
                        gradientBuffer: min(o, Linear.gradientRows) * n))
                weighted.append(i)
            case .conv(let ch, let k, let s, let p):
                let oh = (input[1] + 2 * p - k) / s + 1
                let ow = (input[2] + 2 * p - k) / s + 1
                let patch = input[0] * k * k
                shapes.append(
                    .weighted(
                        macs: ch * patch * oh * ow, input: n, output: ch * oh * ow, weights: ch * patch, bias: ch,
                        gradientBuffer: ch * patch))
                weighted.append(i)
            case .relu: shapes.append(.relu(elements: n))
            case .maxPool(let s): shapes.append(.maxPool(input: n, output: input[0] * (input[1] / s) * (input[2] / s)))
            case .flatten: shapes.append(.flatten)
            }
        }
        self.shapes = shapes
        self.weightedLayers = weighted
    }

    /// The sheet of every layer for one step of `batch` samples, weighted layer `k` holding `weightBits[k]`-bit
    /// weights, `activationBits[k]`-bit input codes and `errorBits[k]`-bit error codes (ignored in fp32; one
    /// per weighted layer in fixed point; nil: the settings' widths for every layer).
    public func stepSheets(
        batch: Int, weightBits: [Int], activationBits: [Int]? = nil, errorBits: [Int]? = nil
    ) -> [CostSheet] {
        let count = weightedLayers.count
        let aBits = activationBits ?? [Int](repeating: quantization.activationBits, count: count)
        let eBits = errorBits ?? [Int](repeating: quantization.errorBits, count: count)
        precondition(
            !mode.isFixedPoint || (weightBits.count == count && aBits.count == count && eBits.count == count),
            "CostModel: widths must be given for each of \(count) weighted layers")
        let first = weightedLayers.first ?? 0
        let last = weightedLayers.last ?? 0
        var sheets: [CostSheet] = []
        var k = 0
        for (i, shape) in shapes.enumerated() {
            // Element-wise layers work on the codes the weighted layer below hands on (the next weighted layer's
            // activation width) and route the errors the weighted layer below receives (fp32: nil).
            let activationBits = mode.isFixedPoint ? aBits[min(k, max(count - 1, 0))] : nil
            let errorBits = mode.isFixedPoint && k > 0 ? eBits[k - 1] : nil
            switch shape {
            case .weighted(let macs, let input, let output, let weights, let bias, let gradientBuffer):
                sheets.append(
                    weightedSheet(
                        batch: batch, macs: macs, input: input, output: output, weights: weights, bias: bias,
                        gradientBuffer: gradientBuffer,
                        weightBits: mode.isFixedPoint ? weightBits[k] : 32,
                        activationBits: mode.isFixedPoint ? aBits[k] : 32,
                        outputBits: mode.isFixedPoint ? aBits[min(k + 1, count - 1)] : 32,
                        errorBits: mode.isFixedPoint ? eBits[k] : 32,
                        inputErrorBits: mode.isFixedPoint && k > 0 ? eBits[k - 1] : 32,
                        needsInputGradient: i > first, quantizedOutput: mode.isFixedPoint && i != last))
                k += 1
            case .relu(let n):
                var sheet = CostSheet(profile: profile)
                // One compare (a select) per element, forward; the error routed through the mask, backward.
                sheet.adds(batch * n, bits: activationBits, pass: .forward)
                if i > first { sheet.adds(batch * n, bits: errorBits, pass: .backwardInput) }
                sheets.append(sheet)
            case .maxPool(let input, let output):
                var sheet = CostSheet(profile: profile)
                // One compare per input element; each output's error routed to its arg-max.
                sheet.adds(batch * input, bits: activationBits, pass: .forward)
                if i > first { sheet.adds(batch * output, bits: errorBits, pass: .backwardInput) }
                sheets.append(sheet)
            case .flatten:
                sheets.append(CostSheet(profile: profile))
            }
        }
        return sheets
    }

    /// The energy of one step, J.
    public func stepJoules(
        batch: Int, weightBits: [Int], activationBits: [Int]? = nil, errorBits: [Int]? = nil
    ) -> Double {
        stepSheets(batch: batch, weightBits: weightBits, activationBits: activationBits, errorBits: errorBits)
            .reduce(0) { $0 + $1.joules }
    }

    /// The energy of `steps` steps over `samples` samples in all, J, however the samples were split into batches:
    /// a step's price is affine in its batch (`a + b·n`), so the round costs `steps·a + samples·b`.
    public func roundJoules(
        steps: Int, samples: Int, weightBits: [Int], activationBits: [Int]? = nil, errorBits: [Int]? = nil
    ) -> Double {
        let one = stepJoules(batch: 1, weightBits: weightBits, activationBits: activationBits, errorBits: errorBits)
        let perSample =
            stepJoules(batch: 2, weightBits: weightBits, activationBits: activationBits, errorBits: errorBits) - one
        return Double(steps) * (one - perSample) + Double(samples) * perSample
    }

    /// The width a multiplier works at for `bits`-bit codes: the logical width, or on a CPU the storage width
    /// (8 bits for codes up to 8 bits, else 16).
    func multiplierBits(_ bits: Int) -> Int {
        switch profile.multiplierWidth {
        case .logical: return bits
        case .storage: return bits <= 8 ? 8 : 16
        }
    }

    /// Bytes of `count` values of a tensor kind with `bits`-bit codes as stored and moved (fp32: 4 each).
    func bytes(_ count: Int, bits: Int) -> Int { mode.isFixedPoint ? codeBytes(count: count, bits: bits) : count * 4 }

    /// Bytes of `count` parameters stored at `bits` (Int8 up to 8 bits, else Int16; fp32: 4 each).
    func parameterBytes(_ count: Int, bits: Int) -> Int { mode.isFixedPoint ? count * (bits <= 8 ? 1 : 2) : count * 4 }

    func weightedSheet(
        batch: Int, macs: Int, input: Int, output: Int, weights: Int, bias: Int, gradientBuffer: Int,
        weightBits wb: Int, activationBits ab: Int, outputBits: Int, errorBits eb: Int, inputErrorBits: Int,
        needsInputGradient: Bool, quantizedOutput: Bool
    ) -> CostSheet {
        var sheet = CostSheet(profile: profile)
        let q = quantization
        let fixed = mode.isFixedPoint
        let params = weights + bias
        let wBytes = parameterBytes(weights, bits: wb)
        let pBytes = wBytes + parameterBytes(bias, bits: fixed ? q.biasBits : 32)
        let mBytes = momentum == 0 ? 0 : parameterBytes(params, bits: fixed ? q.momentumBits : 32)
        // What a layer hands on: activation codes, or 32-bit values (the last layer's logits, and fp32).
        let outputBytes = { (count: Int) in quantizedOutput ? self.bytes(count, bits: outputBits) : count * 4 }
        // Working sets: what a pass re-uses for every sample plus one sample of each tensor it streams.
        sheet.setWorkingSet(wBytes + bytes(input, bits: ab) + outputBytes(output), pass: .forward)
        sheet.setWorkingSet(wBytes + bytes(output, bits: eb) + bytes(input, bits: inputErrorBits), pass: .backwardInput)
        sheet.setWorkingSet(
            4 * gradientBuffer + bytes(input, bits: ab) + bytes(output, bits: eb), pass: .backwardWeights)
        sheet.setWorkingSet(0, pass: .update)

        let m = batch * macs
        let inElements = batch * input
        let outElements = batch * output
        if fixed {
            let accForward = accumulatorBits(
                maxA: FixedPointFormat.maxCode(bits: ab), maxB: FixedPointFormat.maxCode(bits: wb))
            sheet.integerMACs(
                m, bitsA: multiplierBits(ab), bitsB: multiplierBits(wb), accumulatorBits: accForward, pass: .forward)
            // Quantising the input: a range scan (a compare) and a shift-round-saturate (an add) per element.
            sheet.adds(2 * inElements, bits: 32, pass: .forward)
            // Bias add into the 32-bit accumulators.
            sheet.adds(outElements, bits: 32, pass: .forward)
            // The output re-quantised to activation codes (range scan, shift-round-saturate), or written as
            // 32-bit logits by the last layer.
            if quantizedOutput { sheet.adds(2 * outElements, bits: 32, pass: .forward) }
            // The output error quantised where this layer receives it.
            sheet.adds(2 * outElements, bits: 32, pass: .backwardInput)
            if needsInputGradient {
                let acc = accumulatorBits(
                    maxA: FixedPointFormat.maxCode(bits: eb), maxB: FixedPointFormat.maxCode(bits: wb))
                sheet.integerMACs(
                    m, bitsA: multiplierBits(eb), bitsB: multiplierBits(wb), accumulatorBits: acc,
                    pass: .backwardInput)
            }
            let accGrad = accumulatorBits(
                maxA: FixedPointFormat.maxCode(bits: ab), maxB: FixedPointFormat.maxCode(bits: eb))
            sheet.integerMACs(
                m, bitsA: multiplierBits(ab), bitsB: multiplierBits(eb), accumulatorBits: accGrad,
                pass: .backwardWeights)
            // Update, per parameter: gradient quantisation, μ·m + g and w − lr·m rounded onto the weight grid —
            // two multiplies of a momentum-width code by a 16-bit constant and four 32-bit adds or shifts.
            let mb = momentum != 0 ? q.momentumBits : q.gradientBits
            sheet.multiplies(2 * params, bitsA: multiplierBits(mb), bitsB: 16, pass: .update)
            sheet.adds(4 * params, bits: 32, pass: .update)
        } else {
            sheet.floatMACs(m, pass: .forward)
            sheet.adds(outElements, bits: nil, pass: .forward)  // bias
            if needsInputGradient { sheet.floatMACs(m, pass: .backwardInput) }
            sheet.floatMACs(m, pass: .backwardWeights)
            // Update, per parameter: m = μ·m + g and w = w − lr·m: two multiplies and two adds.
            sheet.multiplies(2 * params, bitsA: 32, bitsB: 32, pass: .update, float: true)
            sheet.adds(2 * params, bits: nil, pass: .update)
        }
        // Traffic, the same tensors for every precision at their stored widths.
        sheet.traffic(bytes(inElements, bits: ab), pass: .forward)  // input
        sheet.traffic(wBytes, pass: .forward)  // weights
        sheet.traffic(outputBytes(outElements), pass: .forward)  // output
        if needsInputGradient {
            sheet.traffic(bytes(outElements, bits: eb), pass: .backwardInput)  // errors
            sheet.traffic(wBytes, pass: .backwardInput)  // weights
            // The input error, written once as error codes: ReLU and pooling routing beneath are fused into this
            // product's epilogue, and the receiving layer's error quantisation is priced there.
            sheet.traffic(bytes(inElements, bits: inputErrorBits), pass: .backwardInput)
        }
        sheet.traffic(bytes(inElements, bits: ab), pass: .backwardWeights)  // saved input
        sheet.traffic(bytes(outElements, bits: eb), pass: .backwardWeights)  // errors
        // Update: parameters and momentum, each read and written.
        sheet.traffic(2 * pBytes + 2 * mBytes, pass: .update)
        return sheet
    }
}
