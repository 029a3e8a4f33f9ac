/// A layer of a sequential network. Backward passes are written by hand.
public protocol Layer: Sendable {
    /// A short name such as `linear(784→256)`.
    var name: String { get }
    /// The per-sample output shape for a per-sample input shape.
    func outputShape(for input: [Int]) -> [Int]
    /// Computes the output; keeps what `backward` needs when `context.training`.
    mutating func forward(_ x: Batch, context: inout StepContext) -> Batch
    /// Given the loss gradient w.r.t. the output, updates the parameters (if any) and returns the gradient
    /// w.r.t. the input, or `nil` when `needsInputGradient` is false.
    mutating func backward(_ dy: Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch?
    /// Bytes currently held for the backward pass.
    var savedBytes: Int { get }
    /// Drops what was kept for the backward pass.
    mutating func releaseSaved()
    /// Bytes the layer would keep for the backward pass for `batch` samples of `input` shape.
    func savedBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int
    /// Largest transient buffer the layer's passes allocate, bytes.
    func workspaceBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int
    /// Bytes of the weight-gradient buffer the layer's backward pass holds at once (0 without parameters).
    var gradientBufferBytes: Int { get }
    /// The priced operations of one training step on `batch` samples of `input` shape at the layer's current
    /// bitwidths. The layer records exactly these figures as it runs each pass.
    func cost(batch: Int, input: [Int], needsInputGradient: Bool, settings: CostSettings) -> CostSheet
}

extension ParametricLayer {
    /// Prices a layer computing `macs` MACs per product with the three products of a weighted layer.
    func weightedLayerCost(
        batch: Int, macs: Int, inputElements: Int, outputElements: Int, needsInputGradient: Bool,
        settings s: CostSettings
    ) -> CostSheet {
        var sheet = CostSheet(profile: s.profile)
        let q = s.quantization
        let paramCount = weights.count + bias.count
        let wBytes = weights.parameterBytes + bias.parameterBytes
        let mBytes = weights.optimizerBytes(momentum: s.momentum) + bias.optimizerBytes(momentum: s.momentum)
        if let wf = weights.format {
            let ab = q.activationBits
            let eb = q.errorBits
            let aBytes = codeBytes(count: inputElements, bits: ab)
            let eBytes = codeBytes(count: outputElements, bits: eb)
            let dxBytes = codeBytes(count: inputElements, bits: eb)
            sheet.integerMACs(
                macs, bitsA: ab, bitsB: wf.bits,
                accumulatorBits: accumulatorBits(maxA: FixedPointFormat.maxCode(bits: ab), maxB: wf.maxCode),
                pass: .forward)
            // Quantising the input: a range scan and a shift-round-saturate per element.
            sheet.elementwise(2 * inputElements, bits: 32, pass: .forward)
            sheet.traffic(tensorBytes: aBytes, pass: .forward)
            sheet.traffic(tensorBytes: weights.parameterBytes, pass: .forward)
            sheet.elementwise(2 * outputElements, bits: 32, pass: .backwardInput)  // error quantisation
            if needsInputGradient {
                sheet.integerMACs(
                    macs, bitsA: eb, bitsB: wf.bits,
                    accumulatorBits: accumulatorBits(maxA: FixedPointFormat.maxCode(bits: eb), maxB: wf.maxCode),
                    pass: .backwardInput)
                sheet.traffic(tensorBytes: eBytes, pass: .backwardInput)
                sheet.traffic(tensorBytes: weights.parameterBytes, pass: .backwardInput)
                // The input error is written once, as error-bit codes: the ReLU and pooling steps below are
                // element-wise routing fused into this product's epilogue, and the receiving layer's error
                // quantisation (priced there) is where the codes are formed.
                sheet.traffic(tensorBytes: dxBytes, pass: .backwardInput)
            }
            sheet.integerMACs(
                macs, bitsA: ab, bitsB: eb,
                accumulatorBits: accumulatorBits(
                    maxA: FixedPointFormat.maxCode(bits: ab), maxB: FixedPointFormat.maxCode(bits: eb)),
                pass: .backwardWeights)
            sheet.traffic(tensorBytes: aBytes, pass: .backwardWeights)
            sheet.traffic(tensorBytes: eBytes, pass: .backwardWeights)
            // Bias add into the 32-bit accumulators, then the output write: activation-bit codes when
            // re-quantised (range scan, shift-round-saturate), else 32-bit values.
            sheet.elementwise(outputElements, bits: 32, pass: .forward)
            if s.quantizedOutput {
                sheet.elementwise(2 * outputElements, bits: 32, pass: .forward)
                sheet.traffic(tensorBytes: codeBytes(count: outputElements, bits: ab), pass: .forward)
            } else {
                sheet.traffic(tensorBytes: outputElements * 4, pass: .forward)
            }
            // Update, per parameter: gradient quantisation, momentum μ·m + g, weight w − lr·m rounded onto the
            // weight grid — two multiplies by a 16-bit constant and four 32-bit adds or shifts.
            let mb = s.momentum != 0 ? q.momentumBits : q.gradientBits
            sheet.elementwiseMultiplies(2 * paramCount, bitsA: mb, bitsB: 16, pass: .update)
            sheet.elementwise(4 * paramCount, bits: 32, pass: .update)
        } else {
            sheet.floatMACs(macs, pass: .forward)
            sheet.traffic(tensorBytes: inputElements * 4, pass: .forward)
            sheet.traffic(tensorBytes: weights.parameterBytes, pass: .forward)
            if needsInputGradient {
                sheet.floatMACs(macs, pass: .backwardInput)
                sheet.traffic(tensorBytes: weights.parameterBytes, pass: .backwardInput)
                sheet.traffic(tensorBytes: inputElements * 4, pass: .backwardInput)
            }
            sheet.floatMACs(macs, pass: .backwardWeights)
            sheet.traffic(tensorBytes: inputElements * 4, pass: .backwardWeights)
            sheet.traffic(tensorBytes: outputElements * 4, pass: .backwardWeights)
            // Bias add, output write, and the update's arithmetic (3 fp32 operations per parameter).
            sheet.scalarOps(outputElements, pass: .forward)
            sheet.traffic(tensorBytes: outputElements * 4, pass: .forward)
            sheet.scalarOps(paramCount * 3, pass: .update)
        }
        // Update traffic: read and write weights and momentum.
        sheet.traffic(tensorBytes: wBytes, pass: .update)
        sheet.traffic(tensorBytes: wBytes, pass: .update)
        sheet.traffic(tensorBytes: mBytes, pass: .update)
        sheet.traffic(tensorBytes: mBytes, pass: .update)
        return sheet
    }
}

/// A layer with weights and a bias whose precision the controller adapts.
public protocol ParametricLayer: Layer {
    /// The weights.
    var weights: ParameterBlock { get set }
    /// The bias.
    var bias: ParameterBlock { get set }
    /// Multiply-accumulates per sample in the forward pass.
    func forwardMACsPerSample(input: [Int]) -> Int
}

extension Layer {
    /// Layers without parameters hold no gradient.
    public var gradientBufferBytes: Int { 0 }
}

extension ParametricLayer {
    /// Bytes of weights and bias.
    public var parameterBytes: Int { weights.parameterBytes + bias.parameterBytes }
}

/// PyTorch's default initialisation of a weighted layer, U(±1/√fanIn) for weights and bias, in `mode`: a
/// `rows × fanIn` weight matrix and a bias of `rows`, drawn in that order from `random`, then quantised (in a
/// fixed-point mode) at the initial weight bits and the bias bits.
func initialParameters(
    rows: Int, fanIn: Int, mode: PrecisionMode, quantization: QuantizationSettings, random: inout RandomSource
) -> (weights: ParameterBlock, bias: ParameterBlock) {
    let bound = 1 / Float(fanIn).squareRoot()
    var w = [Float](repeating: 0, count: rows * fanIn)
    for i in w.indices { w[i] = (random.nextUnitFloat() * 2 - 1) * bound }
    var b = [Float](repeating: 0, count: rows)
    for i in b.indices { b[i] = (random.nextUnitFloat() * 2 - 1) * bound }
    if mode == .fp32 {
        return (ParameterBlock(shape: [rows, fanIn], floatValues: w), ParameterBlock(shape: [rows], floatValues: b))
    }
    let weights = ParameterBlock(
        shape: [rows, fanIn], quantizing: w, bits: quantization.initialWeightBits, settings: quantization,
        random: &random)
    let bias = ParameterBlock(
        shape: [rows], quantizing: b, bits: quantization.biasBits, settings: quantization, random: &random)
    return (weights, bias)
}
