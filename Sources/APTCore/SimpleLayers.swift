/// Rectified linear unit. Keeps a 1-bit mask of the positive outputs for the backward pass.
public struct ReLU: Layer {
    private var mask: [UInt64] = []

    /// Creates the layer.
    public init() {}

    public var name: String { "relu" }
    public func outputShape(for input: [Int]) -> [Int] { input }
    public var savedBytes: Int { mask.count * 8 }
    public mutating func releaseSaved() { mask = [] }
    public func savedBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int {
        (batch * input.reduce(1, *) + 63) / 64 * 8
    }
    public func workspaceBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int {
        0
    }

    public func cost(batch: Int, input: [Int], needsInputGradient: Bool, settings: CostSettings) -> CostSheet {
        var sheet = CostSheet(profile: settings.profile)
        let n = batch * input.reduce(1, *)
        // One compare (select) per element, on codes in a fixed-point run.
        sheet.elementwise(n, bits: settings.activationCodeBits, pass: .forward)
        if needsInputGradient { sheet.elementwise(n, bits: settings.errorCodeBits, pass: .backwardInput) }
        return sheet
    }

    public mutating func forward(_ x: Batch, context: inout StepContext) -> Batch {
        context.meter.record(cost(batch: x.count, input: x.shape, needsInputGradient: false,
                                  settings: context.costSettings), pass: .forward, layer: context.layerIndex)
        var y = x
        let n = y.values.count
        var m = [UInt64](repeating: 0, count: context.training ? (n + 63) / 64 : 0)
        y.values.withUnsafeMutableBufferPointer { v in
            m.withUnsafeMutableBufferPointer { mp in
                ReLU.apply(v.baseAddress!, count: n, mask: mp.isEmpty ? nil : mp.baseAddress!)
            }
        }
        if context.training { mask = m }
        return y
    }

    public mutating func backward(_ dy: Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch? {
        defer { mask = [] }
        guard needsInputGradient else { return nil }
        context.meter.record(cost(batch: dy.count, input: dy.shape, needsInputGradient: true,
                                  settings: context.costSettings), pass: .backwardInput, layer: context.layerIndex)
        precondition(mask.count == (dy.values.count + 63) / 64, "ReLU.backward without a matching forward pass")
        var dx = dy
        mask.withUnsafeBufferPointer { m in
            dx.values.withUnsafeMutableBufferPointer { v in ReLU.applyMask(m.baseAddress!, to: v.baseAddress!, count: v.count) }
        }
        return dx
    }
}

extension ReLU {
    /// Lane `i` holds `1 << i`: picks one mask bit per lane.
    @inline(__always) static var laneBits: SIMD16<Int32> {
        SIMD16(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384, 32768)
    }

    /// `max(x, 0)` in place over `count` values, writing one bit per value (set where the value passed) into
    /// `mask` when given. Positive values and NaNs pass (so that divergence shows). Works on the IEEE bit patterns, 16 lanes at a
    /// time (a negative float has the sign bit, so it is a negative integer).
    static func apply(_ p: UnsafeMutablePointer<Float>, count n: Int, mask: UnsafeMutablePointer<UInt64>?) {
        let words = (n + 63) / 64
        let full = n / 16
        for w in 0..<words {
            var word: UInt64 = 0
            for c in 0..<4 {
                let chunk = w * 4 + c
                let base = chunk * 16
                if chunk < full {
                    let b = bits16(load16(p + base))
                    let nan = (SIMD16<Int32>(repeating: 0x7F80_0000) &- (b & 0x7FFF_FFFF)) &>> 31
                    let r = relu16(b) | (b & nan)
                    store16(float16(r), p + base)
                    word |= UInt64(truncatingIfNeeded: (nonZeroMask16(r) & laneBits).wrappedSum()) << UInt64(16 * c)
                } else {
                    for j in 0..<max(0, min(16, n - base)) {
                        let x = p[base + j]
                        let keep = !(x <= 0)
                        word |= UInt64(keep ? 1 : 0) << UInt64(16 * c + j)
                        p[base + j] = keep ? x : 0
                    }
                }
            }
            mask?[w] = word
        }
    }

    /// Zeroes the values whose mask bit is clear.
    static func applyMask(_ m: UnsafePointer<UInt64>, to p: UnsafeMutablePointer<Float>, count n: Int) {
        let full = n / 16
        for chunk in 0..<full {
            let bits = Int32(truncatingIfNeeded: (m[chunk >> 2] >> UInt64(16 * (chunk & 3))) & 0xFFFF)
            let keep = nonZeroMask16(SIMD16(repeating: bits) & laneBits)
            store16(float16(bits16(load16(p + chunk * 16)) & keep), p + chunk * 16)
        }
        for i in (full * 16)..<n where (m[i >> 6] >> UInt64(i & 63)) & 1 == 0 { p[i] = 0 }
    }
}

/// Max pooling with a square window and stride equal to the window. Keeps the arg-max (one byte) per output.
public struct MaxPool2d: Layer {
    /// Window size and stride.
    public let size: Int
    private var argmax: [UInt8] = []
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
        precondition(input.count == 3 && input[1] >= size && input[2] >= size,
                     "MaxPool2d(\(size)) expects [C, H, W] with H, W ≥ \(size), got \(input)")
        return [input[0], input[1] / size, input[2] / size]
    }
    public var savedBytes: Int { argmax.count }
    public mutating func releaseSaved() { argmax = [] }
    public func savedBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int {
        batch * outputShape(for: input).reduce(1, *)
    }
    public func workspaceBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int {
        0
    }

    public func cost(batch: Int, input: [Int], needsInputGradient: Bool, settings: CostSettings) -> CostSheet {
        var sheet = CostSheet(profile: settings.profile)
        let n = batch * input.reduce(1, *)
        // One compare per input element; the backward pass routes each output's error to its arg-max.
        sheet.elementwise(n, bits: settings.activationCodeBits, pass: .forward)
        if needsInputGradient {
            sheet.elementwise(batch * outputShape(for: input).reduce(1, *), bits: settings.errorCodeBits,
                              pass: .backwardInput)
        }
        return sheet
    }

    public mutating func forward(_ x: Batch, context: inout StepContext) -> Batch {
        context.meter.record(cost(batch: x.count, input: x.shape, needsInputGradient: false,
                                  settings: context.costSettings), pass: .forward, layer: context.layerIndex)
        let os = outputShape(for: x.shape)
        let (c, h, w) = (x.shape[0], x.shape[1], x.shape[2])
        let (oh, ow) = (os[1], os[2])
        let bsz = x.count
        var y = [Float](repeating: 0, count: bsz * c * oh * ow)
        var am = [UInt8](repeating: 0, count: context.training ? y.count : 0)
        if size == 2 {
            x.values.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    am.withUnsafeMutableBufferPointer { ap in
                        let training = context.training
                        var o = 0
                        for plane in 0..<(bsz * c) {
                            let base = xp.baseAddress! + plane * h * w
                            for oy in 0..<oh {
                                let r0 = base + 2 * oy * w, r1 = r0 + w
                                for ox in 0..<ow {
                                    // Branch-free: which element wins is data-dependent and unpredictable, so
                                    // branches (which the compiler makes of float compares) mispredict often.
                                    // Floats are compared as order-preserving integers; ties keep the first.
                                    var best = MaxPool2d.ordered(r0[2 * ox]), bi: Int64 = 0
                                    MaxPool2d.keepLarger(&best, &bi, MaxPool2d.ordered(r0[2 * ox + 1]), 1)
                                    MaxPool2d.keepLarger(&best, &bi, MaxPool2d.ordered(r1[2 * ox]), 2)
                                    MaxPool2d.keepLarger(&best, &bi, MaxPool2d.ordered(r1[2 * ox + 1]), 3)
                                    yp[o] = MaxPool2d.float(ordered: best)
                                    if training { ap[o] = UInt8(truncatingIfNeeded: bi) }
                                    o += 1
                                }
                            }
                        }
                    }
                }
            }
        } else {
        x.values.withUnsafeBufferPointer { xp in
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
                                    if v > best || (bi == 0 && dy == 0 && dx == 0) { best = v; bi = dy * size + dx }
                                }
                            }
                            y[o] = best
                            if context.training { am[o] = UInt8(bi) }
                            o += 1
                        }
                    }
                }
            }
        }
        }
        if context.training {
            argmax = am
            inputShape = x.shape
        }
        return Batch(values: y, count: bsz, shape: os)
    }

    public mutating func backward(_ dy: Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch? {
        defer { argmax = [] }
        guard needsInputGradient else { return nil }
        precondition(argmax.count == dy.values.count, "MaxPool2d.backward without a matching forward pass")
        context.meter.record(cost(batch: dy.count, input: inputShape, needsInputGradient: true,
                                  settings: context.costSettings), pass: .backwardInput, layer: context.layerIndex)
        let (c, h, w) = (inputShape[0], inputShape[1], inputShape[2])
        let (oh, ow) = (dy.shape[1], dy.shape[2])
        var dx = [Float](repeating: 0, count: dy.count * c * h * w)
        var o = 0
        for n in 0..<dy.count {
            for ch in 0..<c {
                let base = (n * c + ch) * h * w
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        let bi = Int(argmax[o])
                        dx[base + (oy * size + bi / size) * w + ox * size + bi % size] += dy.values[o]
                        o += 1
                    }
                }
            }
        }
        return Batch(values: dx, count: dy.count, shape: inputShape)
    }
}

/// Reshapes `[C, H, W]` samples to flat vectors (no data movement).
public struct Flatten: Layer {
    private var inputShape: [Int] = []
    /// Creates the layer.
    public init() {}
    public var name: String { "flatten" }
    public func outputShape(for input: [Int]) -> [Int] { [input.reduce(1, *)] }
    public var savedBytes: Int { 0 }
    public mutating func releaseSaved() {}
    public func savedBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int {
        0
    }
    public func workspaceBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int {
        0
    }
    public func cost(batch: Int, input: [Int], needsInputGradient: Bool, settings: CostSettings) -> CostSheet {
        CostSheet(profile: settings.profile)
    }
    public mutating func forward(_ x: Batch, context: inout StepContext) -> Batch {
        inputShape = x.shape
        return Batch(values: x.values, count: x.count, shape: [x.sampleSize])
    }
    public mutating func backward(_ dy: Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch? {
        guard needsInputGradient else { return nil }
        return Batch(values: dy.values, count: dy.count, shape: inputShape)
    }
}

/// Softmax followed by cross-entropy against integer labels.
public enum SoftmaxCrossEntropy {
    /// Mean loss over the batch, and `softmax − onehot` per sample (the gradient of the summed loss).
    public static func lossAndGradient(logits: Batch, labels: ArraySlice<UInt8>) -> (loss: Float, gradient: Batch) {
        let k = logits.sampleSize
        precondition(labels.count == logits.count, "\(labels.count) labels for \(logits.count) samples")
        var grad = logits.values
        var total: Double = 0
        var li = labels.startIndex
        for n in 0..<logits.count {
            let base = n * k
            var mx = -Float.infinity
            for j in 0..<k { mx = max(mx, grad[base + j]) }
            var sum: Float = 0
            for j in 0..<k {
                let e = _expf(grad[base + j] - mx)
                grad[base + j] = e
                sum += e
            }
            let label = Int(labels[li])
            precondition(label < k, "label \(label) out of range for \(k) classes")
            li += 1
            for j in 0..<k { grad[base + j] /= sum }
            total += Double(-_logf(max(grad[base + label], 1e-30)))
            grad[base + label] -= 1
        }
        return (Float(total / Double(max(logits.count, 1))), Batch(values: grad, count: logits.count, shape: logits.shape))
    }
}
