/// Rectified linear unit, on float values or in place on activation codes. Keeps a 1-bit mask of the positive
/// outputs for the backward pass, unless the error will come back as a pooling layer's error codes, which that
/// layer masks by the signs of its own outputs (`StepContext.keepReLUMask`).
public struct ReLU: Layer {
    private var mask: [UInt64] = []
    /// Whether the last training forward pass kept the mask (not when the pooling layer above masks the error).
    private var keptMask = true

    /// Creates the layer.
    public init() {}

    public var name: String { "relu" }
    public func outputShape(for input: [Int]) -> [Int] { input }
    public var savedBytes: Int { mask.count * 8 }
    public mutating func releaseSaved() { mask = [] }
    public mutating func forward(_ x: consuming Batch, context: inout StepContext) -> Batch {
        var y = x
        let n = y.count * y.sampleSize
        var m = [UInt64](repeating: 0, count: context.training && context.keepReLUMask ? (n + 63) / 64 : 0)
        m.withUnsafeMutableBufferPointer { mp in
            let bits = mp.isEmpty ? nil : mp.baseAddress!
            if var codes = y.codes.take() {
                // Activation codes, rectified in place: the codes of the positive values pass.
                codes.modifyCodes(
                    int8: { ReLU.apply(codes: $0.baseAddress!, count: n, mask: bits) },
                    int16: { ReLU.apply(codes: $0.baseAddress!, count: n, mask: bits) })
                y.codes = codes
            } else {
                y.values.withUnsafeMutableBufferPointer { v in ReLU.apply(v.baseAddress!, count: n, mask: bits) }
            }
        }
        if context.training {
            mask = m
            keptMask = context.keepReLUMask
        }
        return y
    }

    public mutating func backward(_ dy: consuming Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch?
    {
        defer { mask = [] }
        guard needsInputGradient else { return nil }
        let n = dy.count * dy.sampleSize
        // Error codes still to be made by the pooling layer above were masked there (by the signs of its outputs).
        if dy.pooledError != nil { return dy }
        precondition(keptMask && mask.count == (n + 63) / 64, "ReLU.backward without a matching forward pass")
        var dx = dy
        mask.withUnsafeBufferPointer { m in
            if var codes = dx.codes.take() {
                codes.modifyCodes(
                    int8: { ReLU.applyMask(m.baseAddress!, toCodes: $0.baseAddress!, count: n) },
                    int16: { ReLU.applyMask(m.baseAddress!, toCodes: $0.baseAddress!, count: n) })
                dx.codes = codes
            } else {
                dx.values.withUnsafeMutableBufferPointer { v in
                    ReLU.applyMask(m.baseAddress!, to: v.baseAddress!, count: v.count)
                }
            }
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
        maskWords(count: n, mask: mask) { base, lanes in
            if lanes == 16 {
                let b = bits16(load16(p + base))
                let nan = (SIMD16<Int32>(repeating: 0x7F80_0000) &- (b & 0x7FFF_FFFF)) &>> 31
                let r = relu16(b) | (b & nan)
                store16(float16(r), p + base)
                return UInt64(truncatingIfNeeded: (nonZeroMask16(r) & laneBits).wrappedSum())
            }
            var bits: UInt64 = 0
            for j in 0..<lanes {
                let x = p[base + j]
                let keep = !(x <= 0)
                bits |= UInt64(keep ? 1 : 0) << UInt64(j)
                p[base + j] = keep ? x : 0
            }
            return bits
        }
    }

    /// Walks `n` values 16 at a time, four chunks to a 64-bit mask word: `chunk(base, lanes)` processes the
    /// `lanes` values at `base` (16, or fewer at the end) and returns one bit per value that passed; the words
    /// go to `mask` when given.
    @inline(__always)
    static func maskWords(
        count n: Int, mask: UnsafeMutablePointer<UInt64>?, _ chunk: (_ base: Int, _ lanes: Int) -> UInt64
    ) {
        for w in 0..<((n + 63) / 64) {
            var word: UInt64 = 0
            for c in 0..<4 {
                let base = (w * 4 + c) * 16
                let lanes = min(16, n - base)
                if lanes > 0 { word |= chunk(base, lanes) << UInt64(16 * c) }
            }
            mask?[w] = word
        }
    }

    /// Zeroes the values whose mask bit is clear, value `i` having bit `first + i` of the mask.
    static func applyMask(
        _ m: UnsafePointer<UInt64>, from first: Int = 0, to p: UnsafeMutablePointer<Float>, count n: Int
    ) {
        let full = n / 16
        for chunk in 0..<full {
            let bit = first + chunk * 16
            let (w, shift) = (bit >> 6, UInt64(bit & 63))
            // The chunk's 16 bits, from one word or straddling two (the second exists: the chunk's last bit is in it).
            var word = m[w] >> shift
            if shift > 48 { word |= m[w + 1] << (64 - shift) }
            let bits = Int32(truncatingIfNeeded: word & 0xFFFF)
            let keep = nonZeroMask16(SIMD16(repeating: bits) & laneBits)
            store16(float16(bits16(load16(p + chunk * 16)) & keep), p + chunk * 16)
        }
        for i in (full * 16)..<n where (m[(first + i) >> 6] >> UInt64((first + i) & 63)) & 1 == 0 { p[i] = 0 }
    }

    /// `max(c, 0)` in place over `count` codes, writing one bit per code (set where it is positive) into `mask`
    /// when given; 16 lanes at a time.
    static func apply<T: FixedWidthInteger & SignedInteger & SIMDScalar>(
        codes p: UnsafeMutablePointer<T>, count n: Int, mask: UnsafeMutablePointer<UInt64>?
    ) {
        maskWords(count: n, mask: mask) { base, lanes in
            if lanes == 16 {
                let r = relu16(loadInts16(p + base))
                storeCodes16(r, p + base)
                return UInt64(truncatingIfNeeded: (nonZeroMask16(r) & laneBits).wrappedSum())
            }
            var bits: UInt64 = 0
            for j in 0..<lanes {
                if p[base + j] > 0 { bits |= 1 << UInt64(j) } else { p[base + j] = 0 }
            }
            return bits
        }
    }

    /// Zeroes the codes whose mask bit is clear.
    static func applyMask<T: FixedWidthInteger & SignedInteger & SIMDScalar>(
        _ m: UnsafePointer<UInt64>, toCodes p: UnsafeMutablePointer<T>, count n: Int
    ) {
        let full = n / 16
        for chunk in 0..<full {
            let bits = Int32(truncatingIfNeeded: (m[chunk >> 2] >> UInt64(16 * (chunk & 3))) & 0xFFFF)
            let keep = nonZeroMask16(SIMD16(repeating: bits) & laneBits)
            storeCodes16(loadInts16(p + chunk * 16) & keep, p + chunk * 16)
        }
        for i in (full * 16)..<n where (m[i >> 6] >> UInt64(i & 63)) & 1 == 0 { p[i] = 0 }
    }
}
