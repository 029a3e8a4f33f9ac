/// A 2-D convolution with square kernels, stride and zero padding, computed per image as
/// `Y[outChannels × positions] = W[outChannels × patch] · im2col(x)[patch × positions]`.
public struct Conv2d: ParametricLayer {
    /// Input channels.
    public let inChannels: Int
    /// Output channels.
    public let outChannels: Int
    /// Kernel size.
    public let kernel: Int
    /// Stride.
    public let stride: Int
    /// Padding.
    public let padding: Int
    /// `outChannels × (inChannels · kernel²)` weights.
    public var weights: ParameterBlock
    /// `outChannels` biases.
    public var bias: ParameterBlock
    private var saved: SavedTensor?
    private var savedGeometry: ConvGeometry?
    /// The format the last batch's output codes took (see `forwardCodes`).
    private var outputFormatHint: FixedPointFormat?
    /// Training forward passes that handed on codes, and how many of them had to make their output twice.
    private(set) var codePasses = (batches: 0, remade: 0)

    /// Creates a layer with PyTorch's default initialisation, U(±1/√fanIn), in `mode`.
    public init(
        inChannels: Int, outChannels: Int, kernel: Int, stride: Int = 1, padding: Int = 0, mode: PrecisionMode,
        quantization: QuantizationSettings, random: inout RandomSource
    ) {
        precondition(
            inChannels > 0 && outChannels > 0 && kernel > 0 && stride > 0 && padding >= 0,
            "Conv2d needs positive channels, kernel and stride and non-negative padding")
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.stride = stride
        self.padding = padding
        (weights, bias) = initialParameters(
            rows: outChannels, fanIn: inChannels * kernel * kernel, mode: mode, quantization: quantization,
            random: &random)
    }

    public var name: String { "conv\(kernel)x\(kernel)(\(inChannels)→\(outChannels),s\(stride),p\(padding))" }

    func geometry(for input: [Int]) -> ConvGeometry {
        precondition(
            input.count == 3 && input[0] == inChannels,
            "Conv2d expects [\(inChannels), H, W] input, got \(input)")
        let g = ConvGeometry(
            channels: input[0], height: input[1], width: input[2], kernel: kernel, stride: stride,
            padding: padding)
        precondition(g.outHeight > 0 && g.outWidth > 0, "Conv2d kernel \(kernel) does not fit input \(input)")
        return g
    }

    public func outputShape(for input: [Int]) -> [Int] {
        let g = geometry(for: input)
        return [outChannels, g.outHeight, g.outWidth]
    }

    public func forwardMACsPerSample(input: [Int]) -> Int {
        let g = geometry(for: input)
        return outChannels * g.patch * g.positions
    }

    public var savedBytes: Int { saved?.byteCount ?? 0 }
    public mutating func releaseSaved() { saved = nil }

    public mutating func forward(_ x: consuming Batch, context: inout StepContext) -> Batch {
        let g = geometry(for: x.shape)
        let bsz = x.count
        let inSize = x.sampleSize
        let p = g.positions
        let outSize = outChannels * p
        var y: [Float] = []
        switch weights.values {
        case .float(let w):
            y = [Float](repeating: 0, count: bsz * outSize)
            var cols = [Float](repeating: 0, count: g.patch * p)
            x.values.withUnsafeBufferPointer { xp in
                w.withUnsafeBufferPointer { wp in
                    y.withUnsafeMutableBufferPointer { yp in
                        cols.withUnsafeMutableBufferPointer { cp in
                            for n in 0..<bsz {
                                g.im2col(xp.baseAddress! + n * inSize, cp.baseAddress!)
                                GEMM.float(
                                    m: outChannels, n: p, k: g.patch, a: wp.baseAddress!, lda: g.patch,
                                    b: cp.baseAddress!, ldb: p, c: yp.baseAddress! + n * outSize, ldc: p, alpha: 1,
                                    accumulate: false)
                            }
                        }
                    }
                }
            }
            if context.training { saved = SavedTensor(float: x.values) }
        case .fixed(let w):
            let q = context.quantization
            // An input batch that arrives as codes is taken as it is.
            let xq =
                x.codes
                ?? quantizeDynamic(
                    x.values, shape: [bsz] + x.shape, bits: q.activationBits,
                    rounding: q.activationRounding, random: &context.random)
            _ = consume x
            if context.quantizeOutput && context.codesBetweenLayers {
                let yq = forwardCodes(xq, weights: w, geometry: g, context: &context)
                if context.training {
                    saved = SavedTensor(fixed: xq)
                    savedGeometry = g
                }
                return Batch(codes: yq, count: bsz, shape: Array(yq.shape.dropFirst()))
            }
            let alpha = pow2(-(xq.format.fractionBits + w.format.fractionBits))
            y = [Float](repeating: 0, count: bsz * outSize)
            y.withUnsafeMutableBufferPointer { yp in
                var cols = FixedPointStorage.int8([])
                for n in 0..<bsz {
                    xq.storage.im2col(offset: n * inSize, geometry: g, into: &cols)
                    integerGEMM(
                        m: outChannels, n: p, k: g.patch, a: w.storage, lda: g.patch, maxA: w.format.maxCode,
                        b: cols, ldb: p, maxB: xq.format.maxCode, c: yp.baseAddress! + n * outSize, ldc: p,
                        alpha: alpha, accumulate: false)
                }
            }
            if context.training { saved = SavedTensor(fixed: xq) }
        }
        let b = bias.values.dequantized()
        y.withUnsafeMutableBufferPointer { yp in
            for n in 0..<bsz {
                for c in 0..<outChannels {
                    let base = n * outSize + c * p
                    for i in 0..<p { yp[base + i] += b[c] }
                }
            }
        }
        if context.quantizeOutput && context.mode.isFixedPoint {
            requantizeOutput(&y, bits: context.outputBits)
        }
        if context.training { savedGeometry = g }
        return Batch(values: y, count: bsz, shape: [outChannels, g.outHeight, g.outWidth])
    }

    public mutating func backward(_ dy: consuming Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch?
    {
        guard let saved, let g = savedGeometry else {
            preconditionFailure("Conv2d.backward called without a training forward pass")
        }
        self.saved = nil
        let bsz = dy.count
        let p = g.positions
        let outSize = outChannels * p
        precondition(dy.sampleSize == outSize, "Conv2d backward expects \(outSize) errors, got \(dy.sampleSize)")
        let inSize = g.channels * g.height * g.width
        var grad = [Float](repeating: 0, count: outChannels * g.patch)
        var gb = [Float](repeating: 0, count: outChannels)
        let fixedPoint = weights.format != nil
        // The float input error, unless its codes are made an image at a time for the pooling layer beneath.
        let floatInputError = needsInputGradient && !(fixedPoint && context.inputErrorCodes != nil)
        var dx: [Float]? = floatInputError ? [Float](repeating: 0, count: bsz * inSize) : nil
        // The unfolded input error of one image: whole in fp32; in fixed point the rows of a few input channels
        // at a time (`errorChunkChannels`), each chunk folded back before the next is made.
        let dcolsRows =
            fixedPoint
            ? Conv2d.errorChunkChannels(channels: g.channels, kernel: g.kernel) * g.kernel * g.kernel : g.patch
        var dcols = [Float](repeating: 0, count: needsInputGradient ? dcolsRows * p : 0)

        switch (weights.values, saved.storage) {
        case (.float(let w), .float(let x)):
            var wT = [Float](repeating: 0, count: w.count)
            w.withUnsafeBufferPointer { s in
                wT.withUnsafeMutableBufferPointer { d in
                    GEMM.transpose(rows: outChannels, cols: g.patch, src: s.baseAddress!, dst: d.baseAddress!)
                }
            }
            var cols = [Float](repeating: 0, count: g.patch * p)
            var colsT = cols
            let alpha = 1 / Float(bsz)
            for n in 0..<bsz {
                x.withUnsafeBufferPointer { xp in
                    cols.withUnsafeMutableBufferPointer { cp in
                        g.im2col(xp.baseAddress! + n * inSize, cp.baseAddress!)
                    }
                }
                cols.withUnsafeBufferPointer { s in
                    colsT.withUnsafeMutableBufferPointer { d in
                        GEMM.transpose(rows: g.patch, cols: p, src: s.baseAddress!, dst: d.baseAddress!)
                    }
                }
                dy.values.withUnsafeBufferPointer { dp in
                    colsT.withUnsafeBufferPointer { ct in
                        grad.withUnsafeMutableBufferPointer { gp in
                            GEMM.float(
                                m: outChannels, n: g.patch, k: p, a: dp.baseAddress! + n * outSize, lda: p,
                                b: ct.baseAddress!, ldb: g.patch, c: gp.baseAddress!, ldc: g.patch, alpha: alpha,
                                accumulate: true)
                        }
                    }
                }
                if needsInputGradient {
                    dy.values.withUnsafeBufferPointer { dp in
                        wT.withUnsafeBufferPointer { wp in
                            dcols.withUnsafeMutableBufferPointer { dc in
                                GEMM.float(
                                    m: g.patch, n: p, k: outChannels, a: wp.baseAddress!, lda: outChannels,
                                    b: dp.baseAddress! + n * outSize, ldb: p, c: dc.baseAddress!, ldc: p, alpha: 1,
                                    accumulate: false)
                                dx!.withUnsafeMutableBufferPointer { xp in
                                    g.col2im(dc.baseAddress!, xp.baseAddress! + n * inSize)
                                }
                            }
                        }
                    }
                }
            }
            for n in 0..<bsz {
                for c in 0..<outChannels {
                    var s: Float = 0
                    for i in 0..<p { s += dy.values[n * outSize + c * p + i] }
                    gb[c] += s
                }
            }
            for c in 0..<outChannels { gb[c] *= alpha }

        case (.fixed(let w), .fixed), (.fixed(let w), .packed):
            // The saved input's codes: kept whole, or packed below a byte and unpacked an image at a time (below).
            guard let (xFormat, xWhole, xPacked) = saved.codes.map({ ($0.format, $0.whole, $0.packed) }) else {
                preconditionFailure("Conv2d: saved codes without codes")
            }
            let q = context.quantization
            // The error's codes, with a scale per image (`ImageErrorCodes`): made an image at a time by the
            // pooling layer above, or made here from the float error (freed at once).
            var error = dy
            var pooled = error.pooledError.take()
            var own: ImageErrorCodes? = nil
            if pooled == nil {
                var underflow = context.errorUnderflowCounter()
                own = ImageErrorCodes(
                    quantizing: error.takeValues(), imageSize: outSize,
                    bits: q.errorBits, mask: nil, rounding: q.errorRounding, random: &context.errorRandom,
                    underflow: &underflow)
                context.addErrorUnderflow(underflow)
            }
            _ = consume error
            let wT = w.storage.transposed(rows: outChannels, cols: g.patch)
            // The input error: floats, or (for the pooling layer beneath) its codes made an image at a time.
            let handOn = context.inputErrorCodes
            var inputCodes = handOn.map { ImageErrorCodes(count: bsz, imageSize: inSize, bits: $0.bits) }
            var inputImage = [Float](repeating: 0, count: handOn == nil ? 0 : inSize)
            var inputUnderflow = handOn.flatMap { context.errorUnderflowCounter(ordinal: $0.ordinal) }
            grad.withUnsafeMutableBufferPointer { gp in
                var cols = FixedPointStorage.int8([])
                var image = [Int8](repeating: 0, count: xPacked == nil ? 0 : inSize)
                for n in 0..<bsz {
                    // This image's error codes and format.
                    let e: FixedPointStorage
                    let eOffset: Int
                    let eFormat: FixedPointFormat
                    if var p = pooled.take() {
                        (e, eFormat) = p.next()
                        eOffset = 0
                        pooled = p
                    } else {
                        e = own?.storage ?? .int8([])
                        eFormat = own?.formats[n] ?? FixedPointFormat.covering(maxAbs: 0, bits: q.errorBits)
                        eOffset = n * outSize
                    }
                    // Weight gradient: dot products of error rows with patch rows, both contiguous over positions.
                    if let xPacked {
                        image.withUnsafeMutableBufferPointer {
                            xPacked.unpackInt8(from: n * inSize, count: inSize, into: $0.baseAddress!)
                        }
                        FixedPointStorage.int8(image).im2col(offset: 0, geometry: g, into: &cols)
                    } else {
                        xWhole?.im2col(offset: n * inSize, geometry: g, into: &cols)
                    }
                    integerGEMMNT(
                        m: outChannels, n: g.patch, k: p, a: e, aOffset: eOffset, lda: p,
                        maxA: eFormat.maxCode, b: cols, ldb: p, maxB: xFormat.maxCode,
                        c: gp.baseAddress!, ldc: g.patch,
                        alpha: pow2(-(xFormat.fractionBits + eFormat.fractionBits)) / Float(bsz), accumulate: true)
                    if needsInputGradient {
                        let kk = g.kernel * g.kernel
                        let xAlpha = pow2(-(eFormat.fractionBits + w.format.fractionBits))
                        /// Folds this image's input error into `target`, a few input channels at a time.
                        func fold(into target: UnsafeMutablePointer<Float>) {
                            dcols.withUnsafeMutableBufferPointer { dc in
                                var c0 = 0
                                while c0 < g.channels {
                                    let c1 = min(g.channels, c0 + dcolsRows / kk)
                                    integerGEMM(
                                        m: (c1 - c0) * kk, n: p, k: outChannels, a: wT, aOffset: c0 * kk * outChannels,
                                        lda: outChannels, maxA: w.format.maxCode, b: e, bOffset: eOffset, ldb: p,
                                        maxB: eFormat.maxCode, c: dc.baseAddress!, ldc: p, alpha: xAlpha,
                                        accumulate: false)
                                    g.col2im(dc.baseAddress!, target, channels: c0..<c1)
                                    c0 = c1
                                }
                            }
                        }
                        if let handOn {
                            inputImage.withUnsafeMutableBufferPointer { ip in
                                ip.update(repeating: 0)
                                fold(into: ip.baseAddress!)
                                inputCodes?.make(
                                    image: n, from: ip, mask: handOn.mask, rounding: q.errorRounding,
                                    random: &context.errorRandom, underflow: &inputUnderflow)
                            }
                        } else {
                            dx!.withUnsafeMutableBufferPointer { fold(into: $0.baseAddress! + n * inSize) }
                        }
                    }
                    let ds = eFormat.step / Float(bsz)
                    for c in 0..<outChannels { gb[c] += Float(e.sum(from: eOffset + c * p, count: p)) * ds }
                }
            }
            if let handOn { context.addErrorUnderflow(inputUnderflow, ordinal: handOn.ordinal) }
            if let inputCodes {
                weightUpdate(grad: &grad, biasGradient: &gb, context: &context)
                return Batch(imageErrors: inputCodes, shape: [g.channels, g.height, g.width])
            }

        default:
            preconditionFailure("Conv2d: saved input and weights disagree on the number format")
        }
        weightUpdate(grad: &grad, biasGradient: &gb, context: &context)
        guard let dx else { return nil }
        return Batch(values: dx, count: bsz, shape: [g.channels, g.height, g.width])
    }

    /// Applies the step's weight and bias gradients.
    private mutating func weightUpdate(grad: inout [Float], biasGradient gb: inout [Float], context: inout StepContext)
    {
        let hyper = context.hyper
        grad.withUnsafeMutableBufferPointer {
            weights.applyGradient($0, offset: 0, hyper: hyper, random: &context.random)
        }
        gb.withUnsafeMutableBufferPointer { bias.applyGradient($0, offset: 0, hyper: hyper, random: &context.random) }
        weights.endStep(random: &context.random)
        bias.endStep(random: &context.random)
    }
}

extension Conv2d {
    /// Input channels whose rows of the unfolded input error a fixed-point backward pass makes at a time: enough
    /// for about 32 rows (one channel of a 5 × 5 kernel, three of a 3 × 3), at least one, at most all.
    static func errorChunkChannels(channels: Int, kernel: Int) -> Int {
        min(channels, max(1, 32 / (kernel * kernel)))
    }

    /// The forward pass of a fixed-point layer that hands on activation codes. Each image's outputs are made in a
    /// float buffer of one image, biased and quantised (nearest) into the batch's codes, so the batch's float
    /// output is never held. The format must cover the whole batch's largest output, known only once every image
    /// is made: the images are quantised at the format of the last batch's output, and made a second time in a
    /// batch where that format no longer fits. The codes are those of quantising the whole float output at once.
    ///
    /// With `context.fusedPool` (a max-pooling layer above, through a ReLU or not), each image's codes are also
    /// rectified and pooled at once, from a buffer of one image's codes: the batch's full-size codes never exist
    /// either. The pooled codes, arg-maxes and signs are those the ReLU and pooling layers make of the full-size
    /// codes; the arg-maxes and signs go to `context.fusedPoolResult` for the pooling layer to keep.
    mutating func forwardCodes(
        _ xq: FixedPointTensor, weights w: FixedPointTensor, geometry g: ConvGeometry, context: inout StepContext
    ) -> FixedPointTensor {
        let bsz = xq.shape[0]
        let p = g.positions
        let outSize = outChannels * p
        let inSize = g.channels * g.height * g.width
        let bits = context.outputBits
        let alpha = pow2(-(xq.format.fractionBits + w.format.fractionBits))
        let b = bias.values.dequantized()
        let pool = context.fusedPool
        let outChannels = self.outChannels
        let (oh, ow) = (g.outHeight, g.outWidth)
        let outShape = pool.map { [outChannels, oh / $0.size, ow / $0.size] } ?? [outChannels, oh, ow]
        let imageOut = outShape.reduce(1, *)  // codes handed on per image
        var image = [Float](repeating: 0, count: outSize)
        var cols = FixedPointStorage.int8([])
        var unused = RandomSource(seed: 0)
        let measuring = context.measuringCodes
        let training = context.training
        var underflow = UnderflowCounts()  // of the pass that made the codes, when measuring
        var argmax = PackedArgmax()
        /// Makes every image's outputs; quantises them into `out` at `format` when given (and with a fused
        /// pooling layer rectifies and pools them there, through `imageCodes`). Returns the largest magnitude.
        func makeOutputs<T: FixedWidthInteger & SignedInteger & SIMDScalar>(
            _ format: FixedPointFormat?, into out: UnsafeMutableBufferPointer<T>, imageCodes: inout [T]
        ) -> Float {
            var largest: Float = 0
            underflow = UnderflowCounts()
            if let pool, training { argmax = PackedArgmax(count: bsz * imageOut, windowSize: pool.size) }
            image.withUnsafeMutableBufferPointer { yp in
                for n in 0..<bsz {
                    xq.storage.im2col(offset: n * inSize, geometry: g, into: &cols)
                    integerGEMM(
                        m: outChannels, n: p, k: g.patch, a: w.storage, lda: g.patch, maxA: w.format.maxCode,
                        b: cols, ldb: p, maxB: xq.format.maxCode, c: yp.baseAddress!, ldc: p, alpha: alpha,
                        accumulate: false)
                    for c in 0..<outChannels {
                        let bc = b[c]
                        for i in (c * p)..<((c + 1) * p) { yp[i] += bc }
                    }
                    largest = max(largest, Quantizer.maxAbs(UnsafeBufferPointer(yp)))
                    guard let format else { continue }
                    if measuring { underflow.count(UnsafeBufferPointer(yp), step: format.step) }
                    guard let pool else {
                        _ = Quantizer.quantize(
                            UnsafeBufferPointer(yp),
                            into: UnsafeMutableBufferPointer(rebasing: out[(n * outSize)..<((n + 1) * outSize)]),
                            format: format, rounding: .nearest, random: &unused)
                        continue
                    }
                    imageCodes.withUnsafeMutableBufferPointer { ip in
                        _ = Quantizer.quantize(
                            UnsafeBufferPointer(yp), into: ip, format: format, rounding: .nearest, random: &unused)
                        if pool.relu { ReLU.apply(codes: ip.baseAddress!, count: outSize, mask: nil) }
                        argmax.withWriter { writer in
                            MaxPool2d.pool(
                                ip.baseAddress!, out.baseAddress! + n * imageOut, argmax: training ? writer : nil,
                                offset: n * imageOut, planes: outChannels, height: oh, width: ow, size: pool.size)
                        }
                    }
                }
            }
            return largest
        }
        func run<T: FixedWidthInteger & SignedInteger & SIMDScalar>(_ codes: inout [T]) -> FixedPointFormat {
            var imageCodes = [T](repeating: 0, count: pool == nil ? 0 : outSize)
            return codes.withUnsafeMutableBufferPointer { out in
                let hint = outputFormatHint.flatMap { $0.bits == bits ? $0 : nil }
                let format = FixedPointFormat.covering(
                    maxAbs: makeOutputs(hint, into: out, imageCodes: &imageCodes), bits: bits)
                if format != hint {
                    _ = makeOutputs(format, into: out, imageCodes: &imageCodes)
                    if context.training { codePasses.remade += 1 }
                }
                if pool != nil, training {
                    // The pooled outputs' signs, for the pooling layer's error codes.
                    var signs = [UInt64](repeating: 0, count: (out.count + 63) / 64)
                    signs.withUnsafeMutableBufferPointer {
                        MaxPool2d.positiveBits(UnsafePointer(out.baseAddress!), count: out.count, into: $0.baseAddress!)
                    }
                    context.fusedPoolResult = FusedPoolResult(
                        argmax: argmax, signs: signs, inputShape: [outChannels, oh, ow])
                }
                return format
            }
        }
        let format: FixedPointFormat
        let storage: FixedPointStorage
        if bits <= 8 {
            var a = [Int8](repeating: 0, count: bsz * imageOut)
            format = run(&a)
            storage = .int8(a)
        } else {
            var a = [Int16](repeating: 0, count: bsz * imageOut)
            format = run(&a)
            storage = .int16(a)
        }
        outputFormatHint = format
        if context.training { codePasses.batches += 1 }
        context.addActivationUnderflow(underflow)
        return FixedPointTensor(shape: [bsz] + outShape, format: format, storage: storage)
    }
}

extension FixedPointStorage {
    /// The sum of `count` codes from `start`, 16 lanes at a time (a run of at most 2^16 codes of ≤ 16 bits
    /// cannot overflow `Int32`).
    func sum(from start: Int, count: Int) -> Int32 {
        precondition(count <= 1 << 16, "FixedPointStorage.sum over \(count) codes could overflow")
        switch self {
        case .int8(let a): return a.withUnsafeBufferPointer { FixedPointStorage.sum($0.baseAddress! + start, count) }
        case .int16(let a): return a.withUnsafeBufferPointer { FixedPointStorage.sum($0.baseAddress! + start, count) }
        }
    }

    @inline(__always)
    private static func sum<T: FixedWidthInteger & SIMDScalar>(_ p: UnsafePointer<T>, _ count: Int) -> Int32 {
        var acc = SIMD16<Int32>(repeating: 0)
        var i = 0
        while i + 16 <= count {
            acc &+= loadInts16(p + i)
            i += 16
        }
        var s = acc.wrappedSum()
        while i < count {
            s &+= Int32(p[i])
            i += 1
        }
        return s
    }
}
