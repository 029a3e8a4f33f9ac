/// A fully connected layer `y = x · Wᵀ + b` with `W` stored `outputs × inputs` (one row per output unit).
///
/// In fixed-point runs the input is quantised (activation bits, dynamic scale) and kept as codes for the
/// backward pass; the three products (output, input error, weight gradient) are exact integer dot-product
/// GEMMs on codes. The weight gradient is formed 8 output rows at a time and applied at once, so no full
/// gradient buffer exists.
public struct Linear: ParametricLayer {
    /// Input features.
    public let inputs: Int
    /// Output features.
    public let outputs: Int
    /// `outputs × inputs` weights.
    public var weights: ParameterBlock
    /// `outputs` biases.
    public var bias: ParameterBlock
    private var saved: SavedTensor?
    /// The per-sample shape of the last training input (a linear layer reads any shape flat and hands its
    /// input error back in that shape).
    private var inputShape: [Int] = []

    /// Rows of the weight gradient formed per slice.
    static let gradientRows = 8
    /// Rows (images) of the input error formed at a time when it is handed on as codes with a scale per image.
    static let inputErrorRows = 16

    /// Creates a layer with PyTorch's default initialisation, U(±1/√inputs), in `mode`.
    public init(
        inputs: Int, outputs: Int, mode: PrecisionMode, quantization: QuantizationSettings,
        random: inout RandomSource
    ) {
        precondition(inputs > 0 && outputs > 0, "Linear needs positive sizes, got \(inputs)→\(outputs)")
        self.inputs = inputs
        self.outputs = outputs
        (weights, bias) = initialParameters(
            rows: outputs, fanIn: inputs, mode: mode, quantization: quantization, random: &random)
    }

    public var name: String { "linear(\(inputs)→\(outputs))" }

    public func outputShape(for input: [Int]) -> [Int] {
        precondition(input.reduce(1, *) == inputs, "Linear expects \(inputs) inputs, got shape \(input)")
        return [outputs]
    }

    public func forwardMACsPerSample(input: [Int]) -> Int { inputs * outputs }

    public var savedBytes: Int { saved?.byteCount ?? 0 }
    public mutating func releaseSaved() { saved = nil }

    public mutating func forward(_ x: consuming Batch, context: inout StepContext) -> Batch {
        precondition(x.sampleSize == inputs, "Linear expects \(inputs) inputs, got \(x.sampleSize)")
        let bsz = x.count
        var y = [Float](repeating: 0, count: bsz * outputs)
        switch weights.values {
        case .float(let w):
            // Dot products of input rows with weight rows, on the weights as stored (no transposed copy).
            x.values.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    y.withUnsafeMutableBufferPointer { yp in
                        GEMM.floatNT(
                            m: bsz, n: outputs, k: inputs, a: xp.baseAddress!, lda: inputs, b: wp.baseAddress!,
                            ldb: inputs, c: yp.baseAddress!, ldc: outputs, alpha: 1, accumulate: false)
                    }
                }
            }
            if context.training { saved = SavedTensor(float: x.values) }
        case .fixed(let w):
            let q = context.quantization
            // An input batch that arrives as codes is taken as it is.
            let xq =
                x.codes?.reshaped([bsz, inputs])
                ?? quantizeDynamic(
                    x.values, shape: [bsz, inputs], bits: q.activationBits,
                    rounding: q.activationRounding, random: &context.random)
            let alpha = pow2(-(xq.format.fractionBits + w.format.fractionBits))
            y.withUnsafeMutableBufferPointer { yp in
                integerGEMMNT(
                    m: bsz, n: outputs, k: inputs, a: xq.storage, lda: inputs, maxA: xq.format.maxCode,
                    b: w.storage, ldb: inputs, maxB: w.format.maxCode, c: yp.baseAddress!, ldc: outputs,
                    alpha: alpha, accumulate: false)
            }
            if context.training { saved = SavedTensor(fixed: xq) }
        }
        if context.training { inputShape = x.shape }
        // Bias.
        let b = bias.values.dequantized()
        y.withUnsafeMutableBufferPointer { yp in
            for r in 0..<bsz {
                for j in 0..<outputs { yp[r * outputs + j] += b[j] }
            }
        }
        if context.quantizeOutput && context.mode.isFixedPoint {
            if context.codesBetweenLayers {
                // Handed on as activation codes; the float output is freed once they are made.
                var unused = RandomSource(seed: 0)
                let yq = quantizeDynamic(
                    y, shape: [bsz, outputs], bits: context.outputBits, rounding: .nearest,
                    random: &unused)
                y.withUnsafeBufferPointer { context.countActivationUnderflow($0, step: yq.format.step) }
                return Batch(codes: yq, count: bsz, shape: [outputs])
            }
            requantizeOutput(&y, bits: context.outputBits)
        }
        return Batch(values: y, count: bsz, shape: [outputs])
    }

    public mutating func backward(_ dy: consuming Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch?
    {
        precondition(dy.sampleSize == outputs, "Linear backward expects \(outputs) errors, got \(dy.sampleSize)")
        guard let saved else { preconditionFailure("Linear.backward called without a training forward pass") }
        self.saved = nil
        let bsz = dy.count
        var dx: [Float]? = nil
        var inputCodes: ImageErrorCodes? = nil  // the input error's codes, for the pooling layer beneath
        let hyper = context.hyper
        // The weight gradient's slice buffer, made when a path needs it (after the input's codes are freed).
        var slice: [Float] = []
        var gb = [Float](repeating: 0, count: outputs)

        // The weights are read (input error) in a scope of their own that ends before they are updated, so the
        // update mutates the one copy of them in place (a binding still alive would make it copy them whole).
        // Taken out of `saved`, so that the input's codes can be freed mid-way. Codes kept packed below a byte go
        // straight into the K-pair panel below, two rows at a time: no unpacked copy of the whole batch exists.
        let floatInput = saved.floats
        var codeInput = saved.codes
        _ = consume saved
        if let x = floatInput {
            if needsInputGradient {
                var out = [Float](repeating: 0, count: bsz * inputs)
                if case .float(let w) = weights.values {
                    dy.values.withUnsafeBufferPointer { dp in
                        w.withUnsafeBufferPointer { wp in
                            out.withUnsafeMutableBufferPointer { op in
                                GEMM.float(
                                    m: bsz, n: inputs, k: outputs, a: dp.baseAddress!, lda: outputs,
                                    b: wp.baseAddress!, ldb: inputs, c: op.baseAddress!, ldc: inputs, alpha: 1,
                                    accumulate: false)
                            }
                        }
                    }
                }
                dx = out
            }
            var dyT = [Float](repeating: 0, count: dy.values.count)
            dy.values.withUnsafeBufferPointer { s in
                dyT.withUnsafeMutableBufferPointer { d in
                    GEMM.transpose(rows: bsz, cols: outputs, src: s.baseAddress!, dst: d.baseAddress!)
                }
            }
            let alpha = 1 / Float(bsz)
            var r0 = 0
            while r0 < outputs {
                let rows = min(Linear.gradientRows, outputs - r0)
                dyT.withUnsafeBufferPointer { dp in
                    x.withUnsafeBufferPointer { xp in
                        if slice.isEmpty { slice = [Float](repeating: 0, count: Linear.gradientRows * inputs) }
                        slice.withUnsafeMutableBufferPointer { sp in
                            GEMM.float(
                                m: rows, n: inputs, k: bsz, a: dp.baseAddress! + r0 * bsz, lda: bsz,
                                b: xp.baseAddress!, ldb: inputs, c: sp.baseAddress!, ldc: inputs, alpha: alpha,
                                accumulate: false)
                            weights.applyGradient(
                                UnsafeMutableBufferPointer(rebasing: sp[0..<(rows * inputs)]),
                                offset: r0 * inputs, hyper: hyper, random: &context.random)
                        }
                    }
                }
                r0 += rows
            }
            for r in 0..<bsz { for j in 0..<outputs { gb[j] += dy.values[r * outputs + j] } }
            for j in 0..<outputs { gb[j] *= alpha }

        } else if var xq = codeInput.take() {
            let q = context.quantization
            // The error's codes; the float error is freed at once, before the gradient's workspaces are made.
            var error = dy
            let dq =
                error.takeCodes()?.reshaped([bsz, outputs])
                ?? quantizeDynamic(
                    error.values, shape: [bsz, outputs], bits: q.errorBits, rounding: q.errorRounding,
                    random: &context.errorRandom)
            error.values.withUnsafeBufferPointer { context.countErrorUnderflow($0, step: dq.format.step) }
            _ = consume error
            let ds = dq.format.step / Float(bsz)
            for r in 0..<bsz { for j in 0..<outputs { gb[j] += Float(dq.storage[r * outputs + j]) } }
            for j in 0..<outputs { gb[j] *= ds }
            if needsInputGradient, case .fixed(let w) = weights.values {
                let xAlpha = pow2(-(dq.format.fractionBits + w.format.fractionBits))
                if let handOn = context.inputErrorCodes {
                    // For the pooling layer beneath: a few rows at a time, each row (an image) made into codes.
                    var codes = ImageErrorCodes(count: bsz, imageSize: inputs, bits: handOn.bits)
                    let block = min(bsz, Linear.inputErrorRows)
                    var rowsBuffer = [Float](repeating: 0, count: block * inputs)
                    var underflow = context.errorUnderflowCounter(ordinal: handOn.ordinal)
                    var r0 = 0
                    while r0 < bsz {
                        let rows = min(block, bsz - r0)
                        rowsBuffer.withUnsafeMutableBufferPointer { bp in
                            integerGEMM(
                                m: rows, n: inputs, k: outputs, a: dq.storage, aOffset: r0 * outputs, lda: outputs,
                                maxA: dq.format.maxCode, b: w.storage, ldb: inputs, maxB: w.format.maxCode,
                                c: bp.baseAddress!, ldc: inputs, alpha: xAlpha, accumulate: false)
                            for r in 0..<rows {
                                codes.make(
                                    image: r0 + r,
                                    from: UnsafeMutableBufferPointer(rebasing: bp[(r * inputs)..<((r + 1) * inputs)]),
                                    mask: handOn.mask, rounding: q.errorRounding, random: &context.errorRandom,
                                    underflow: &underflow)
                            }
                        }
                        r0 += rows
                    }
                    context.addErrorUnderflow(underflow, ordinal: handOn.ordinal)
                    inputCodes = codes
                } else {
                    var out = [Float](repeating: 0, count: bsz * inputs)
                    out.withUnsafeMutableBufferPointer { op in
                        integerGEMM(
                            m: bsz, n: inputs, k: outputs, a: dq.storage, lda: outputs, maxA: dq.format.maxCode,
                            b: w.storage, ldb: inputs, maxB: w.format.maxCode, c: op.baseAddress!, ldc: inputs,
                            alpha: xAlpha, accumulate: false)
                    }
                    dx = out
                }
            }
            let alpha = pow2(-(xq.format.fractionBits + dq.format.fractionBits)) / Float(bsz)
            let maxDq = dq.format.maxCode
            // Every slice multiplies the same saved input: pack it into K-pairs once when the codes allow.
            let panel =
                GEMM.int32Suffices(maxA: maxDq, maxB: xq.format.maxCode)
                ? xq.packed.map { PairPanel(packing: $0, k: bsz, n: inputs, maxB: xq.format.maxCode) }
                    ?? xq.whole.map { PairPanel(packing: $0, k: bsz, n: inputs, maxB: xq.format.maxCode) } : nil
            // The panel holds the saved input from here: the codes are freed before the slices' work.
            let maxX = xq.format.maxCode
            let unpaired: FixedPointStorage? =
                panel == nil ? xq.packed.map { .int8($0.unpackedInt8()) } ?? xq.whole : nil
            (xq.whole, xq.packed) = (nil, nil)
            slice = [Float](repeating: 0, count: Linear.gradientRows * inputs)
            var r0 = 0
            while r0 < outputs {
                let rows = min(Linear.gradientRows, outputs - r0)
                // This slice's rows of the error's transpose (outputs × batch), made as needed: no whole copy.
                let dqT = dq.storage.transposedColumns(r0..<(r0 + rows), rows: bsz, cols: outputs)
                slice.withUnsafeMutableBufferPointer { sp in
                    // Short contraction (the batch), vectorised along the inputs.
                    if let panel {
                        integerGEMM(
                            m: rows, a: dqT, aOffset: 0, lda: bsz, maxA: maxDq,
                            panel: panel, c: sp.baseAddress!, ldc: inputs, alpha: alpha, accumulate: false)
                    } else {
                        integerGEMM(
                            m: rows, n: inputs, k: bsz, a: dqT, aOffset: 0, lda: bsz,
                            maxA: maxDq, b: unpaired ?? .int8([]), ldb: inputs, maxB: maxX,
                            c: sp.baseAddress!, ldc: inputs, alpha: alpha, accumulate: false)
                    }
                    weights.applyGradient(
                        UnsafeMutableBufferPointer(rebasing: sp[0..<(rows * inputs)]),
                        offset: r0 * inputs, hyper: hyper, random: &context.random)
                }
                r0 += rows
            }
        } else {
            preconditionFailure("Linear.backward: the saved input is neither floats nor codes")
        }
        gb.withUnsafeMutableBufferPointer { bias.applyGradient($0, offset: 0, hyper: hyper, random: &context.random) }
        weights.endStep(random: &context.random)
        bias.endStep(random: &context.random)
        let shape = inputShape.isEmpty ? [inputs] : inputShape
        if let inputCodes { return Batch(imageErrors: inputCodes, shape: shape) }
        guard let dx else { return nil }
        return Batch(values: dx, count: bsz, shape: shape)
    }
}
