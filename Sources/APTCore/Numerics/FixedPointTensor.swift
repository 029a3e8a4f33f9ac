/// The backing store of a fixed-point tensor: the narrowest signed integer type that holds its bitwidth.
public enum FixedPointStorage: Sendable, Equatable {
    /// Codes of formats with at most 8 bits.
    case int8([Int8])
    /// Codes of formats with 9 to 16 bits.
    case int16([Int16])

    /// Number of stored codes.
    public var count: Int {
        switch self {
        case .int8(let a): return a.count
        case .int16(let a): return a.count
        }
    }

    /// Bytes actually held by the codes.
    public var byteCount: Int {
        switch self {
        case .int8(let a): return a.count
        case .int16(let a): return a.count * 2
        }
    }

    /// The code at `i`, widened.
    @inline(__always) public subscript(i: Int) -> Int32 {
        switch self {
        case .int8(let a): return Int32(a[i])
        case .int16(let a): return Int32(a[i])
        }
    }

    /// Writes the codes in place through `int8` or `int16`, whichever matches the storage.
    mutating func modifyCodes(
        int8: (UnsafeMutableBufferPointer<Int8>) -> Void, int16: (UnsafeMutableBufferPointer<Int16>) -> Void
    ) {
        switch self {
        case .int8(var a):
            self = .int8([])  // drop this reference so that `a` is unique and written in place
            a.withUnsafeMutableBufferPointer { int8($0) }
            self = .int8(a)
        case .int16(var a):
            self = .int16([])
            a.withUnsafeMutableBufferPointer { int16($0) }
            self = .int16(a)
        }
    }
}

/// A tensor of fixed-point values sharing one `FixedPointFormat` (a per-tensor power-of-two scale).
///
/// This is the engine's only copy of a quantised model's parameters: there is no float master copy. Storage
/// shrinks with the format (`Int8` up to 8 bits, `Int16` up to 16 bits). The type is a plain value: it can be
/// copied, compared, serialised as codes plus format, and re-quantised to another format.
public struct FixedPointTensor: Sendable, Equatable {
    /// Logical shape, outermost first.
    public private(set) var shape: [Int]
    /// The shared number format.
    public private(set) var format: FixedPointFormat
    /// The integer codes.
    public internal(set) var storage: FixedPointStorage

    /// Element count.
    public var count: Int { storage.count }

    /// Creates a tensor from codes that already fit `format` (checked).
    public init(shape: [Int], format: FixedPointFormat, codes: [Int32]) {
        precondition(shape.reduce(1, *) == codes.count, "shape \(shape) does not match \(codes.count) codes")
        self.shape = shape
        self.format = format
        let m = format.maxCode
        precondition(codes.allSatisfy { abs($0) <= m }, "codes exceed \(format)")
        if format.bits <= 8 {
            storage = .int8(codes.map { Int8(truncatingIfNeeded: $0) })
        } else {
            storage = .int16(codes.map { Int16(truncatingIfNeeded: $0) })
        }
    }

    /// A tensor of zero codes, stored at the width of `format` (no wider array is made on the way).
    public init(zerosWithShape shape: [Int], format: FixedPointFormat) {
        self.shape = shape
        self.format = format
        let n = shape.reduce(1, *)
        storage = format.bits <= 8 ? .int8([Int8](repeating: 0, count: n)) : .int16([Int16](repeating: 0, count: n))
    }

    /// Wraps byte codes that fit `format` (a format of at most 8 bits; the caller guarantees the range).
    init(shape: [Int], format: FixedPointFormat, int8Codes codes: [Int8]) {
        precondition(format.bits <= 8 && shape.reduce(1, *) == codes.count, "codes do not match \(shape), \(format)")
        self.shape = shape
        self.format = format
        self.storage = .int8(codes)
    }

    /// Wraps codes stored at the width of `format` (the caller guarantees the range).
    init(shape: [Int], format: FixedPointFormat, storage: FixedPointStorage) {
        switch storage {
        case .int8(let a): self.init(shape: shape, format: format, int8Codes: a)
        case .int16(let a): self.init(shape: shape, format: format, int16Codes: a)
        }
    }

    /// Wraps 16-bit codes that fit `format` (a format of 9 to 16 bits; the caller guarantees the range).
    init(shape: [Int], format: FixedPointFormat, int16Codes codes: [Int16]) {
        precondition(format.bits > 8 && shape.reduce(1, *) == codes.count, "codes do not match \(shape), \(format)")
        self.shape = shape
        self.format = format
        self.storage = .int16(codes)
    }

    /// Quantises `values` into `format`. Returns the tensor; `clipped` counts saturated elements.
    public init(
        quantizing values: [Float], shape: [Int], format: FixedPointFormat, rounding: RoundingMode,
        random: inout RandomSource
    ) {
        precondition(shape.reduce(1, *) == values.count, "shape \(shape) does not match \(values.count) values")
        self.shape = shape
        self.format = format
        if format.bits <= 8 {
            var out = [Int8](repeating: 0, count: values.count)
            Quantizer.quantize(values, into: &out, format: format, rounding: rounding, random: &random)
            storage = .int8(out)
        } else {
            var out = [Int16](repeating: 0, count: values.count)
            Quantizer.quantize(values, into: &out, format: format, rounding: rounding, random: &random)
            storage = .int16(out)
        }
    }

    /// The real values `q · 2^-f`.
    public func dequantized() -> [Float] {
        let s = format.step
        switch storage {
        case .int8(let a): return a.map { Float($0) * s }
        case .int16(let a): return a.map { Float($0) * s }
        }
    }

    /// Bytes held by the codes.
    public var byteCount: Int { storage.byteCount }

    /// The same codes and format under another shape of the same element count.
    public func reshaped(_ newShape: [Int]) -> FixedPointTensor {
        precondition(newShape.reduce(1, *) == count, "cannot reshape \(count) codes to \(newShape)")
        var t = self
        t.shape = newShape
        return t
    }

    /// Runs `int8` or `int16` on the codes in place, by their storage type (no copy when this tensor holds the
    /// only reference to them).
    mutating func modifyCodes(
        int8: (UnsafeMutableBufferPointer<Int8>) -> Void, int16: (UnsafeMutableBufferPointer<Int16>) -> Void
    ) {
        storage.modifyCodes(int8: int8, int16: int16)
    }

    /// The largest stored magnitude.
    public var maxAbsCode: Int32 {
        switch storage {
        case .int8(let a): return a.reduce(Int32(0)) { max($0, abs(Int32($1))) }
        case .int16(let a): return a.reduce(Int32(0)) { max($0, abs(Int32($1))) }
        }
    }

    /// Moves the tensor to `newFormat`. Finer steps (larger `f`) are exact shifts; coarser steps round with
    /// `rounding`; values beyond the new range saturate. Returns how many codes saturated.
    @discardableResult
    public mutating func requantize(
        to newFormat: FixedPointFormat, rounding: RoundingMode, random: inout RandomSource
    ) -> Int {
        if newFormat == format { return 0 }
        let shift = newFormat.fractionBits - format.fractionBits
        let m = newFormat.maxCode
        var clipped = 0
        // One code on the new grid: a left shift when the step gets finer, a rounded right shift when coarser.
        func convert(_ q: Int32) -> Int32 {
            var r: Int32
            if shift >= 0 {
                r = Int32(clamping: Int64(q) << Int64(min(shift, 40)))
            } else {
                let s = -shift
                if s >= 31 {
                    r = 0
                } else {
                    let floor = q >> s
                    let rem = q - (floor << s)
                    switch rounding {
                    case .nearest:
                        // Round half to even on an arithmetic shift.
                        let half = Int32(1) << (s - 1)
                        r = rem > half || (rem == half && (floor & 1) == 1) ? floor + 1 : floor
                    case .stochastic:
                        let threshold = Int32(truncatingIfNeeded: random.next() >> UInt64(64 - s))
                        r = rem > threshold ? floor + 1 : floor
                    }
                }
            }
            if r > m || r < -m { clipped += 1 }
            return saturate(r, m)
        }
        // In place when the storage width stays (self's reference is dropped first, so the bound array is the
        // only one and is written in place); otherwise straight into storage of the new width. No wider copy.
        switch storage {
        case .int8(var a):
            storage = .int8([])
            if newFormat.bits <= 8 {
                a.withUnsafeMutableBufferPointer { p in
                    for i in p.indices { p[i] = Int8(truncatingIfNeeded: convert(Int32(p[i]))) }
                }
                storage = .int8(a)
            } else {
                storage = .int16(a.map { Int16(truncatingIfNeeded: convert(Int32($0))) })
            }
        case .int16(var a):
            storage = .int8([])
            if newFormat.bits > 8 {
                a.withUnsafeMutableBufferPointer { p in
                    for i in p.indices { p[i] = Int16(truncatingIfNeeded: convert(Int32(p[i]))) }
                }
                storage = .int16(a)
            } else {
                storage = .int8(a.map { Int8(truncatingIfNeeded: convert(Int32($0))) })
            }
        }
        format = newFormat
        return clipped
    }
}

/// Vectorised float → fixed-point conversion used by tensors and layers.
public enum Quantizer {
    /// The largest magnitude in `values` (NaN is treated as infinite).
    @inline(__always)
    public static func maxAbs(_ values: UnsafeBufferPointer<Float>) -> Float {
        var m = SIMD16<Float>(repeating: 0)
        var i = 0
        let n = values.count
        let base = values.baseAddress!
        while i + 16 <= n {
            let v = UnsafeRawPointer(base + i).loadUnaligned(as: SIMD16<Float>.self)
            m = maxNonNegative16(m, abs16(v))
            i += 16
        }
        var s = m.max()
        while i < n {
            s = max(s, abs(base[i]))
            i += 1
        }
        return s
    }

    /// Quantises `values` into `out` with `format`; returns the number of saturated elements.
    @discardableResult
    @inline(__always)
    public static func quantize<T: FixedWidthInteger & SignedInteger & SIMDScalar>(
        _ values: [Float], into out: inout [T], format: FixedPointFormat, rounding: RoundingMode,
        random: inout RandomSource
    ) -> Int {
        precondition(out.count == values.count)
        return values.withUnsafeBufferPointer { src in
            out.withUnsafeMutableBufferPointer { dst in
                quantize(src, into: dst, format: format, rounding: rounding, random: &random)
            }
        }
    }

    /// Pointer form of `quantize(_:into:format:rounding:random:)`: 16 lanes at a time, scalar tail.
    @inline(__always)
    public static func quantize<T: FixedWidthInteger & SignedInteger & SIMDScalar>(
        _ src: UnsafeBufferPointer<Float>, into dst: UnsafeMutableBufferPointer<T>, format: FixedPointFormat,
        rounding: RoundingMode, random: inout RandomSource
    ) -> Int {
        let n = src.count
        let inv = format.inverseStep
        let m = Float(format.maxCode)
        let s = src.baseAddress!
        let d = dst.baseAddress!
        // A value is clipped when it lies half a step or more beyond the largest code (it would round past it).
        let clipAt = (m + 0.5).nextDown
        var clippedLanes = SIMD16<Int32>()
        var i = 0
        let stochastic = rounding == .stochastic
        while i + 16 <= n {
            let x = load16(s + i) * inv
            clippedLanes &-= outsideMask16(x, clipAt)
            let c = clamp16(x, m)
            let q: SIMD16<Int32>
            if stochastic {
                q = clampInts16(floorToInt16(c + random.nextUnitFloats16()), Int32(m))
            } else {
                q = roundToInt16(c)
            }
            storeCodes16(q, d + i)
            i += 16
        }
        var clipped = Int(clippedLanes.wrappedSum())
        while i < n {
            var x = s[i] * inv
            if !(abs(x) <= clipAt) { clipped += 1 }
            _ = clampCode(&x, m)
            if stochastic {
                x += random.nextUnitFloat()
                _ = clampCode(&x, m)
                d[i] = T(truncatingIfNeeded: Int32(floorSmall(x)))
            } else {
                d[i] = T(truncatingIfNeeded: Int32(roundHalfEven(x)))
            }
            i += 1
        }
        return clipped
    }
}
