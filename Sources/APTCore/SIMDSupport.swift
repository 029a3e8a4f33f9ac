/// Vector helpers for the element-wise fixed-point kernels (quantisers and the weight update). Everything is
/// plain `SIMD16` arithmetic: no per-lane library calls at any target.
typealias Float16x = SIMD16<Float>

@inline(__always)
func load16(_ p: UnsafePointer<Float>) -> SIMD16<Float> { UnsafeRawPointer(p).loadUnaligned(as: SIMD16<Float>.self) }

@inline(__always)
func store16(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
    UnsafeMutableRawPointer(p).storeBytes(of: v, as: SIMD16<Float>.self)
}

@inline(__always)
func loadCodes16<T: FixedWidthInteger & SIMDScalar>(_ p: UnsafePointer<T>) -> SIMD16<Float> {
    SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: UnsafeRawPointer(p).loadUnaligned(as: SIMD16<T>.self)))
}

@inline(__always)
func storeCodes16<T: FixedWidthInteger & SIMDScalar>(_ v: SIMD16<Int32>, _ p: UnsafeMutablePointer<T>) {
    UnsafeMutableRawPointer(p).storeBytes(of: SIMD16<T>(truncatingIfNeeded: v), as: SIMD16<T>.self)
}

/// |x| by clearing the sign bit (the stdlib's `pointwiseMax` is lane-by-lane with NaN rules: slow).
@inline(__always)
func abs16(_ x: SIMD16<Float>) -> SIMD16<Float> {
    unsafeBitCast(unsafeBitCast(x, to: SIMD16<UInt32>.self) & 0x7FFF_FFFF, to: SIMD16<Float>.self)
}

/// Lane-wise minimum with a compare and blend.
@inline(__always)
func min16(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> { x.replacing(with: y, where: y .< x) }

/// Lane-wise maximum with a compare and blend.
@inline(__always)
func max16(_ x: SIMD16<Float>, _ y: SIMD16<Float>) -> SIMD16<Float> { x.replacing(with: y, where: y .> x) }

/// Lanes outside ±m (NaN included).
@inline(__always)
func outside16(_ x: SIMD16<Float>, _ m: Float) -> SIMDMask<SIMD16<Int32>> {
    .!(abs16(x) .<= SIMD16<Float>(repeating: m))
}

/// NaN lanes to 0, then clamped to ±m.
@inline(__always)
func clamp16(_ x: SIMD16<Float>, _ m: Float) -> SIMD16<Float> {
    let clean = x.replacing(with: 0, where: .!(x .== x))
    return min16(max16(clean, SIMD16<Float>(repeating: -m)), SIMD16<Float>(repeating: m))
}

/// Round half to even and convert, for |x| < 2^22 (the magic-number trick: 1.5·2^23 aligns the binary point).
@inline(__always)
func roundToInt16(_ x: SIMD16<Float>) -> SIMD16<Int32> {
    unsafeBitCast(x + 12_582_912, to: SIMD16<Int32>.self) &- 0x4B40_0000
}

/// Floor and convert, for |x| < 2^22.
@inline(__always)
func floorToInt16(_ x: SIMD16<Float>) -> SIMD16<Int32> {
    let r = roundToInt16(x)
    return r.replacing(with: r &- 1, where: SIMD16<Float>(r) .> x)
}

/// Number of set lanes.
@inline(__always)
func count16(_ m: SIMDMask<SIMD16<Int32>>) -> SIMD16<Int32> {
    SIMD16<Int32>(repeating: 0).replacing(with: 1, where: m)
}

extension RandomSource {
    /// Sixteen uniform floats in [0, 1), 24 random bits each, from eight draws.
    @inline(__always)
    mutating func nextUnitFloats16() -> SIMD16<Float> {
        var bits = SIMD16<UInt32>()
        for l in 0..<8 {
            let r = next()
            bits[2 * l] = UInt32(truncatingIfNeeded: r >> 40)
            bits[2 * l + 1] = UInt32(truncatingIfNeeded: r >> 8) & 0xFF_FFFF
        }
        return SIMD16<Float>(SIMD16<Int32>(truncatingIfNeeded: bits)) * (1.0 / 16_777_216.0)
    }
}
