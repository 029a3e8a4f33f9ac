/// A layer of a sequential network. Backward passes are written by hand.
public protocol Layer: Sendable {
    /// A short name such as `linear(784→256)`.
    var name: String { get }
    /// The per-sample output shape for a per-sample input shape.
    func outputShape(for input: [Int]) -> [Int]
    /// Computes the output; keeps what `backward` needs when `context.training`.
    mutating func forward(_ x: consuming Batch, context: inout StepContext) -> Batch
    /// Given the loss gradient w.r.t. the output, updates the parameters (if any) and returns the gradient
    /// w.r.t. the input, or `nil` when `needsInputGradient` is false.
    mutating func backward(_ dy: consuming Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch?
    /// Bytes currently held for the backward pass.
    var savedBytes: Int { get }
    /// Drops what was kept for the backward pass.
    mutating func releaseSaved()
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
    if mode.isFixedPoint {
        // Straight into codes, a row of floats at a time, so that no float copy of the weights is ever held: a
        // first pass over a copy of the generator finds the range, a second draws the same values and quantises.
        var probe = random
        var maxAbs: Float = 0
        for _ in 0..<(rows * fanIn) { maxAbs = max(maxAbs, abs((probe.nextUnitFloat() * 2 - 1) * bound)) }
        let format = FixedPointFormat.covering(maxAbs: maxAbs, bits: quantization.initialWeightBits)
        var row = [Float](repeating: 0, count: fanIn)
        var unused = RandomSource(seed: 0)
        func draw<T: FixedWidthInteger & SignedInteger & SIMDScalar>(_ codes: inout [T]) {
            codes.withUnsafeMutableBufferPointer { dst in
                row.withUnsafeMutableBufferPointer { x in
                    for r in 0..<rows {
                        for j in 0..<fanIn { x[j] = (random.nextUnitFloat() * 2 - 1) * bound }
                        _ = Quantizer.quantize(
                            UnsafeBufferPointer(x),
                            into: UnsafeMutableBufferPointer(rebasing: dst[(r * fanIn)..<((r + 1) * fanIn)]),
                            format: format, rounding: .nearest, random: &unused)
                    }
                }
            }
        }
        let codes: FixedPointTensor
        if format.bits <= 8 {
            var a = [Int8](repeating: 0, count: rows * fanIn)
            draw(&a)
            codes = FixedPointTensor(shape: [rows, fanIn], format: format, int8Codes: a)
        } else {
            var a = [Int16](repeating: 0, count: rows * fanIn)
            draw(&a)
            codes = FixedPointTensor(shape: [rows, fanIn], format: format, int16Codes: a)
        }
        var b = [Float](repeating: 0, count: rows)
        for i in b.indices { b[i] = (random.nextUnitFloat() * 2 - 1) * bound }
        let bias = ParameterBlock(
            shape: [rows], quantizing: b, bits: quantization.biasBits, settings: quantization, random: &random)
        return (ParameterBlock(codes: codes, settings: quantization), bias)
    }
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
