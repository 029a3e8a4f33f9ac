/// Vector helpers for the element-wise fixed-point kernels (quantisers and the weight update).
///
/// Everything here is integer and float *arithmetic* on `SIMD16` values: the standard library's
/// `pointwiseMin`, `replacing(with:where:)` and mask combinations run lane by lane, so clamps, selects and
/// counts are written with bit operations instead (non-negative IEEE floats order like their bit patterns).

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

@inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

/// Sign- or zero-extends 16 lanes. Written out so that it inlines into the caller's loop and vectorises
/// (the standard library's generic `init(truncatingIfNeeded:)` is often left as an out-of-line call).
@inline(__always)
func widen16<T: FixedWidthInteger & SIMDScalar, R: FixedWidthInteger & SIMDScalar>(_ v: SIMD16<T>, to: R.Type)
    -> SIMD16<R>
{
    var r = SIMD16<R>()
    for i in 0..<16 { r[i] = R(truncatingIfNeeded: v[i]) }
    return r
}

@inline(__always)
func loadInts16<T: FixedWidthInteger & SIMDScalar>(_ p: UnsafePointer<T>) -> SIMD16<Int32> {
    widen16(UnsafeRawPointer(p).loadUnaligned(as: SIMD16<T>.self), to: Int32.self)
}

@inline(__always)
func loadCodes16<T: FixedWidthInteger & SIMDScalar>(_ p: UnsafePointer<T>) -> SIMD16<Float> {
    floats16(loadInts16(p))
}

/// Stores 16 codes narrowed to `T`. The concrete conversions compile to vector truncations; the generic
/// lane loop would extract and store each byte separately.
@inline(__always)
func storeCodes16<T: FixedWidthInteger & SIMDScalar>(_ v: SIMD16<Int32>, _ p: UnsafeMutablePointer<T>) {
    if T.self == Int8.self {
        UnsafeMutableRawPointer(p).storeBytes(of: SIMD16<Int8>(truncatingIfNeeded: v), as: SIMD16<Int8>.self)
    } else if T.self == Int16.self {
        UnsafeMutableRawPointer(p).storeBytes(of: SIMD16<Int16>(truncatingIfNeeded: v), as: SIMD16<Int16>.self)
    } else {
        UnsafeMutableRawPointer(p).storeBytes(of: widen16(v, to: T.self), as: SIMD16<T>.self)
    }
}

/// Converts 16 integer lanes to floats, inline (the standard library's generic conversion is an out-of-line call).
@inline(__always)
func floats16(_ v: SIMD16<Int32>) -> SIMD16<Float> {
    var f = SIMD16<Float>()
    for l in 0..<16 { f[l] = Float(v[l]) }
    return f
}

@inline(__always) func bits16(_ x: SIMD16<Float>) -> SIMD16<Int32> { unsafeBitCast(x, to: SIMD16<Int32>.self) }
@inline(__always) func float16(_ x: SIMD16<Int32>) -> SIMD16<Float> { unsafeBitCast(x, to: SIMD16<Float>.self) }

/// max(x, 0) for integers.
@inline(__always) func relu16(_ x: SIMD16<Int32>) -> SIMD16<Int32> { x & ~(x &>> 31) }

/// −1 in lanes where `x < 0`, else 0.
@inline(__always) func negativeMask16(_ x: SIMD16<Int32>) -> SIMD16<Int32> { x &>> 31 }

/// −1 in lanes where `x != 0`, else 0.
@inline(__always) func nonZeroMask16(_ x: SIMD16<Int32>) -> SIMD16<Int32> { (x | (0 &- x)) &>> 31 }

/// Clamps integers to ±m (m ≥ 0).
@inline(__always)
func clampInts16(_ x: SIMD16<Int32>, _ m: Int32) -> SIMD16<Int32> {
    let mv = SIMD16<Int32>(repeating: m)
    let upper = x &- relu16(x &- mv)
    return upper &+ relu16((0 &- mv) &- upper)
}

/// |x| by clearing the sign bit.
@inline(__always)
func abs16(_ x: SIMD16<Float>) -> SIMD16<Float> { float16(bits16(x) & 0x7FFF_FFFF) }

/// Lane-wise maximum of non-negative floats (compares bit patterns).
@inline(__always)
func maxNonNegative16(_ a: SIMD16<Float>, _ b: SIMD16<Float>) -> SIMD16<Float> {
    let x = bits16(a)
    let y = bits16(b)
    return float16(x &+ relu16(y &- x))
}

/// −1 in lanes outside ±m, NaN included, else 0.
@inline(__always)
func outsideMask16(_ x: SIMD16<Float>, _ m: Float) -> SIMD16<Int32> {
    negativeMask16(SIMD16<Int32>(repeating: Int32(bitPattern: m.bitPattern)) &- (bits16(x) & 0x7FFF_FFFF))
}

/// Clamps to ±m (m ≥ 0, finite); NaN lanes become 0.
@inline(__always)
func clamp16(_ x: SIMD16<Float>, _ m: Float) -> SIMD16<Float> {
    let b = bits16(x)
    let magnitude = b & 0x7FFF_FFFF
    let mb = SIMD16<Int32>(repeating: Int32(bitPattern: m.bitPattern))
    let clipped = magnitude &- relu16(magnitude &- mb)
    let notNaN = ~negativeMask16(SIMD16<Int32>(repeating: 0x7F80_0000) &- magnitude)
    return float16((clipped | (b & Int32(bitPattern: 0x8000_0000))) & notNaN)
}

/// Round half to even and convert, for |x| < 2^22 (1.5·2^23 aligns the binary point).
@inline(__always)
func roundToInt16(_ x: SIMD16<Float>) -> SIMD16<Int32> {
    bits16(x + 12_582_912) &- 0x4B40_0000
}

/// Floor and convert, for |x| < 2^22.
@inline(__always)
func floorToInt16(_ x: SIMD16<Float>) -> SIMD16<Int32> {
    let r = roundToInt16(x)
    return r &+ negativeMask16(bits16(x - floats16(r)))
}

extension RandomSource {
    /// Sixteen uniform floats in [0, 1), 24 random bits each, from the sixteen-lane generator.
    @inline(__always)
    mutating func nextUnitFloats16() -> SIMD16<Float> {
        let bits = unsafeBitCast(nextLanes16() &>> 8, to: SIMD16<Int32>.self)  // < 2^24: the cast is exact
        return floats16(bits) * (1.0 / 16_777_216.0)
    }
}
