/// Max pooling with a square window and stride equal to the window, on float values or on activation codes.
/// Keeps the arg-max per output (packed: 2 bits for a 2 × 2 window, `PackedArgmax`), and in a fixed-point network
/// one bit per output that says whether it was positive.
///
/// In a fixed-point network whose error goes from here to a weighted layer below through ReLUs only, the
/// backward pass hands the input error on as error-bit codes (`StepContext.quantizeInputError`) with a scale per
/// image (`ImageErrorCodes`), found from the pooled errors, so the full-size float error is never made. A ReLU
/// below masks exactly the arg-max positions whose pooled output was not positive, so the pooled errors are
/// masked by this layer's signs before each image's scale is chosen: the codes are the ones the ReLU's masked
/// float error would have been quantised to. The weighted layer above makes those pooled codes itself, an image
/// at a time, when its input error comes straight here (`StepContext.inputErrorCodes`).
public struct MaxPool2d: Layer {
    /// Window size and stride.
    public let size: Int
    private var argmax = PackedArgmax()
    private var positive: [UInt64] = []
    private var inputShape: [Int] = []

    /// Creates a pooling layer with a `size × size` window (1...15).
    public init(size: Int) {
        precondition(size >= 1 && size <= 15, "MaxPool2d size must be in 1...15, got \(size)")
        self.size = size
    }

    public var name: String { "maxpool\(size)" }

    /// An integer that orders like the float: ±magnitude bits, so −0 and +0 are equal (NaNs lie beyond ±∞).
    @inline(__always) static func ordered(_ x: Float) -> Int64 {
        let b = Int32(bitPattern: x.bitPattern)
        let m = b &>> 31
        return Int64(((b & 0x7FFF_FFFF) ^ m) &- m)
    }

    /// The float whose `ordered` value is `o` (a zero comes back as +0).
    @inline(__always) static func float(ordered o: Int64) -> Float {
        let v = Int32(truncatingIfNeeded: o)
        let m = v &>> 31
        let magnitude = (v ^ m) &- m
        return Float(bitPattern: UInt32(bitPattern: magnitude | (m & Int32.min)))
    }

    /// Replaces (`best`, `index`) by (`x`, `i`) when `x > best`, without a branch.
    @inline(__always) static func keepLarger(_ best: inout Int64, _ index: inout Int64, _ x: Int64, _ i: Int64) {
        let take = (best &- x) &>> 63  // −1 when x > best (no overflow: both fit in 32 bits)
        best ^= (best ^ x) & take
        index ^= (index ^ i) & take
    }
    public func outputShape(for input: [Int]) -> [Int] {
        precondition(
            input.count == 3 && input[1] >= size && input[2] >= size,
            "MaxPool2d(\(size)) expects [C, H, W] with H, W ≥ \(size), got \(input)")
        return [input[0], input[1] / size, input[2] / size]
    }
    public var savedBytes: Int { argmax.byteCount + positive.count * 8 }
    public mutating func releaseSaved() {
        argmax = PackedArgmax()
        positive = []
    }
    public mutating func forward(_ x: consuming Batch, context: inout StepContext) -> Batch {
        if x.codes != nil { return forwardCodes(x, context: &context) }
        let os = outputShape(for: x.shape)
        let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (oh, ow) = (os[1], os[2])
        let bsz = x.count
        var y = [Float](repeating: 0, count: bsz * c * oh * ow)
        var am = PackedArgmax(count: context.training ? y.count : 0, windowSize: size)
        if size == 2 {
            x.values.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    am.withWriter { ap in
                        let training = context.training
                        var o = 0
                        for plane in 0..<(bsz * c) {
                            let base = xp.baseAddress! + plane * h * w
                            for oy in 0..<oh {
                                let r0 = base + 2 * oy * w
                                let r1 = r0 + w
                                for ox in 0..<ow {
                                    // Branch-free: which element wins is data-dependent and unpredictable, so
                                    // branches (which the compiler makes of float compares) mispredict often.
                                    // Floats are compared as order-preserving integers; ties keep the first.
                                    var best = MaxPool2d.ordered(r0[2 * ox])
                                    var bi: Int64 = 0
                                    MaxPool2d.keepLarger(&best, &bi, MaxPool2d.ordered(r0[2 * ox + 1]), 1)
                                    MaxPool2d.keepLarger(&best, &bi, MaxPool2d.ordered(r1[2 * ox]), 2)
                                    MaxPool2d.keepLarger(&best, &bi, MaxPool2d.ordered(r1[2 * ox + 1]), 3)
                                    yp[o] = MaxPool2d.float(ordered: best)
                                    if training { ap.set(o, bi) }
                                    o += 1
                                }
                            }
                        }
                    }
                }
            }
        } else {
            x.values.withUnsafeBufferPointer { xp in
                let training = context.training
                am.withWriter { ap in
                    var o = 0
                    for n in 0..<bsz {
                        for ch in 0..<c {
                            let plane = xp.baseAddress! + (n * c + ch) * h * w
                            for oy in 0..<oh {
                                for ox in 0..<ow {
                                    var best = -Float.infinity
                                    var bi = 0
                                    for dy in 0..<size {
                                        for dx in 0..<size {
                                            let v = plane[(oy * size + dy) * w + ox * size + dx]
                                            if v > best || (bi == 0 && dy == 0 && dx == 0) {
                                                best = v
                                                bi = dy * size + dx
                                            }
                                        }
                                    }
                                    y[o] = best
                                    if training { ap.set(o, Int64(bi)) }
                                    o += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        if context.training {
            argmax = am
            inputShape = x.shape
            if context.mode.isFixedPoint {
                // The signs of the outputs, for an error handed back as codes (`deferredCodes`).
                positive = [UInt64](repeating: 0, count: (y.count + 63) / 64)
                for (o, v) in y.enumerated() where v > 0 { positive[o >> 6] |= 1 << UInt64(o & 63) }
            }
        }
        return Batch(values: y, count: bsz, shape: os)
    }

    public mutating func backward(_ dy: consuming Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch?
    {
        defer { releaseSaved() }
        guard needsInputGradient else { return nil }
        let images = dy.count
        let outputs = images * dy.sampleSize
        precondition(argmax.count == outputs, "MaxPool2d.backward without a matching forward pass")
        var error = dy
        if let codes = error.imageErrors.take() {
            // Made an image at a time by the weighted layer above, masked by this layer's signs.
            precondition(context.quantizeInputError, "MaxPool2d: error codes handed in for a float error path")
            return deferredCodes(codes)
        }
        let e = error.takeValues()
        _ = consume error
        if context.quantizeInputError {
            var underflow = context.errorUnderflowCounter()
            let codes = ImageErrorCodes(
                quantizing: consume e, imageSize: outputs / images, bits: context.quantization.errorBits,
                mask: context.maskNonPositiveOutputs ? positive : nil, rounding: context.quantization.errorRounding,
                random: &context.errorRandom, underflow: &underflow)
            context.addErrorUnderflow(underflow)
            return deferredCodes(codes)
        }
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        let (oh, ow) = (h / size, w / size)
        let count = outputs / (c * oh * ow)
        var dx = [Float](repeating: 0, count: count * c * h * w)
        var o = 0
        argmax.withReader { argmax in
            for n in 0..<count {
                for ch in 0..<c {
                    let base = (n * c + ch) * h * w
                    for oy in 0..<oh {
                        for ox in 0..<ow {
                            let bi = argmax[o]
                            dx[base + (oy * size + bi / size) * w + ox * size + bi % size] += e[o]
                            o += 1
                        }
                    }
                }
            }
        }
        return Batch(values: dx, count: count, shape: inputShape)
    }
}

extension MaxPool2d {
    /// The forward pass on activation codes: the output has the input's format and storage type.
    mutating func forwardCodes(_ x: consuming Batch, context: inout StepContext) -> Batch {
        guard let xq = x.codes else { preconditionFailure("MaxPool2d.forwardCodes without codes") }
        let os = outputShape(for: x.shape)
        let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let bsz = x.count
        let planes = bsz * c
        let outputs = planes * os[1] * os[2]
        var am = PackedArgmax(count: outputs, windowSize: size)
        var pos = [UInt64](repeating: 0, count: context.training ? (outputs + 63) / 64 : 0)
        let size = self.size
        func pool<T: FixedWidthInteger & SignedInteger & SIMDScalar>(_ a: [T]) -> [T] {
            var y = [T](repeating: 0, count: outputs)
            a.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    am.withWriter { ap in
                        MaxPool2d.pool(
                            xp.baseAddress!, yp.baseAddress!, argmax: ap, planes: planes, height: h,
                            width: w, size: size)
                    }
                    pos.withUnsafeMutableBufferPointer { pp in
                        if !pp.isEmpty {
                            MaxPool2d.positiveBits(yp.baseAddress!, count: outputs, into: pp.baseAddress!)
                        }
                    }
                }
            }
            return y
        }
        let storage: FixedPointStorage
        switch xq.storage {
        case .int8(let a): storage = .int8(pool(a))
        case .int16(let a): storage = .int16(pool(a))
        }
        if context.training {
            argmax = am
            positive = pos
            inputShape = x.shape
        }
        let y = FixedPointTensor(shape: [bsz] + os, format: xq.format, storage: storage)
        return Batch(codes: y, count: bsz, shape: os)
    }

    /// Max over each window of `planes` planes of `height × width` codes, ties to the first, with its arg-max
    /// (when asked for) written at `offset` onwards.
    static func pool<T: FixedWidthInteger & SignedInteger & SIMDScalar>(
        _ x: UnsafePointer<T>, _ y: UnsafeMutablePointer<T>, argmax: PackedArgmax.Writer?, offset: Int = 0,
        planes: Int,
        height h: Int, width w: Int, size: Int
    ) {
        let (oh, ow) = (h / size, w / size)
        // Arg-maxes are gathered into a 64-bit word and written a word at a time (1, 2, 4 and 8 divide 64).
        let bits = argmax?.bits ?? 0
        var word: UInt64 = 0
        var wordBits = 0
        var wordAt = offset * bits
        @inline(__always) func keep(_ index: Int64) {
            word |= UInt64(truncatingIfNeeded: index) << UInt64(wordBits)
            wordBits += bits
            if wordBits == 64 {
                argmax?.or(word, bits: 64, at: wordAt)
                wordAt += 64
                word = 0
                wordBits = 0
            }
        }
        var o = 0
        for plane in 0..<planes {
            let base = x + plane * h * w
            for oy in 0..<oh {
                let r0 = base + size * oy * w
                if size == 2 {
                    // Branch-free: which element wins is data-dependent and unpredictable.
                    let r1 = r0 + w
                    for ox in 0..<ow {
                        var best = Int64(r0[2 * ox])
                        var bi: Int64 = 0
                        keepLarger(&best, &bi, Int64(r0[2 * ox + 1]), 1)
                        keepLarger(&best, &bi, Int64(r1[2 * ox]), 2)
                        keepLarger(&best, &bi, Int64(r1[2 * ox + 1]), 3)
                        y[o] = T(truncatingIfNeeded: best)
                        keep(bi)
                        o += 1
                    }
                } else {
                    for ox in 0..<ow {
                        var best = Int64(r0[ox * size])
                        var bi: Int64 = 0
                        for dy in 0..<size {
                            for dx in 0..<size where dy + dx > 0 {
                                keepLarger(&best, &bi, Int64(r0[dy * w + ox * size + dx]), Int64(dy * size + dx))
                            }
                        }
                        y[o] = T(truncatingIfNeeded: best)
                        keep(bi)
                        o += 1
                    }
                }
            }
        }
        if wordBits > 0 { argmax?.or(word, bits: wordBits, at: wordAt) }
    }

    /// One bit per code, set where it is positive, 16 codes at a time (ReLU's mask, without applying it).
    static func positiveBits<T: FixedWidthInteger & SignedInteger & SIMDScalar>(
        _ p: UnsafePointer<T>, count n: Int, into mask: UnsafeMutablePointer<UInt64>
    ) {
        ReLU.maskWords(count: n, mask: mask) { base, lanes in
            if lanes == 16 {
                return UInt64(
                    truncatingIfNeeded: (nonZeroMask16(relu16(loadInts16(p + base))) & ReLU.laneBits).wrappedSum())
            }
            var bits: UInt64 = 0
            for j in 0..<lanes where p[base + j] > 0 { bits |= 1 << UInt64(j) }
            return bits
        }
    }

    /// Keeps what a training forward pass made inside the convolution below (`Conv2d.forwardCodes` with a fused
    /// pooling layer): the arg-maxes, the output signs and the input shape.
    mutating func adopt(_ result: FusedPoolResult) {
        argmax = result.argmax
        positive = result.signs
        inputShape = result.inputShape
    }

    /// The sign bits of the last training pass's outputs on codes (set where the output was positive).
    var outputSigns: [UInt64] { positive }

    /// The input error as error codes, from the pooled errors' codes: each goes to its arg-max, and the
    /// full-size codes are made an image at a time when the convolution below asks for them (`PooledErrorCodes`).
    mutating func deferredCodes(_ pooled: ImageErrorCodes) -> Batch {
        let am = argmax
        argmax = PackedArgmax()
        positive = []
        let codes = PooledErrorCodes(
            pooled: pooled, argmax: am, channels: inputShape[0], height: inputShape[1], width: inputShape[2],
            size: size)
        return Batch(pooledError: codes, shape: inputShape)
    }
}
