/// How a real number is rounded onto a fixed-point grid.
public enum RoundingMode: String, Sendable, Codable, CaseIterable {
    /// Round to the nearest grid point (ties to even). Deterministic; small updates vanish (underflow).
    case nearest
    /// Round up with probability equal to the fractional part: unbiased, so small updates survive on average.
    case stochastic
}

/// A signed fixed-point number format: `bits` two's-complement bits of which `fractionBits` are fractional.
///
/// A stored integer `q` means the real value `q · 2^-fractionBits`. Values outside the representable range
/// saturate at `±(2^(bits-1) - 1)`; they never wrap. The grid is symmetric (the most negative code is not
/// used), so negation never overflows.
///
/// Example: `FixedPointFormat(bits: 8, fractionBits: 6)` has step 1/64 and range ±127/64 ≈ ±1.98; 0.5 is
/// stored as 32, 3.0 saturates to 127.
public struct FixedPointFormat: Hashable, Sendable, Codable, CustomStringConvertible {
    /// Total bits including the sign, 2...16.
    public var bits: Int
    /// Fractional length `f`; the step is `2^-f`. May be negative (step larger than 1) or exceed `bits`.
    public var fractionBits: Int

    /// The largest bitwidth the engine stores (Int16 storage).
    public static let maxSupportedBits = 16
    /// The smallest bitwidth that still has a sign and one magnitude bit.
    public static let minSupportedBits = 2

    /// Creates a format; `bits` must be within 2...16.
    public init(bits: Int, fractionBits: Int) {
        precondition(
            (Self.minSupportedBits...Self.maxSupportedBits).contains(bits),
            "fixed-point bits must be in 2...16, got \(bits)")
        self.bits = bits
        self.fractionBits = fractionBits
    }

    /// The largest stored magnitude of a symmetric `bits`-bit code, `2^(bits-1) - 1` (the one definition).
    @inline(__always) public static func maxCode(bits: Int) -> Int32 { Int32((1 << (bits - 1)) - 1) }
    /// The largest stored magnitude, `2^(bits-1) - 1`.
    @inline(__always) public var maxCode: Int32 { Self.maxCode(bits: bits) }
    /// The quantisation step `2^-f` as a `Float`.
    @inline(__always) public var step: Float { Float(sign: .plus, exponent: -fractionBits, significand: 1) }
    /// `2^f`: multiply a real value by this to express it in steps.
    @inline(__always) public var inverseStep: Float { Float(sign: .plus, exponent: fractionBits, significand: 1) }
    /// The largest representable magnitude.
    public var maxValue: Float { Float(maxCode) * step }
    /// Bytes used per stored value: 1 for `bits <= 8`, otherwise 2.
    public var storageBytes: Int { bits <= 8 ? 1 : 2 }

    /// The format with `bits` bits whose range just covers `maxAbs` (the finest step that does not clip it).
    ///
    /// For `maxAbs == 0` (or not finite) the fractional length is `bits - 1`, i.e. range ±1.
    public static func covering(maxAbs: Float, bits: Int) -> FixedPointFormat {
        guard maxAbs > 0, maxAbs.isFinite else { return FixedPointFormat(bits: bits, fractionBits: bits - 1) }
        let maxCode = Float(Self.maxCode(bits: bits))
        // Largest f with maxAbs * 2^f <= maxCode.
        var f = Int((maxCode / maxAbs).exponent)
        while maxAbs * Float(sign: .plus, exponent: f + 1, significand: 1) <= maxCode { f += 1 }
        while f > -64 && maxAbs * Float(sign: .plus, exponent: f, significand: 1) > maxCode { f -= 1 }
        return FixedPointFormat(bits: bits, fractionBits: f)
    }

    /// Quantises one value: scale, round, saturate. Returns the code and whether it saturated.
    @inline(__always)
    public func quantize(_ x: Float, rounding: RoundingMode, random: inout RandomSource) -> (code: Int32, clipped: Bool)
    {
        let scaled = x * inverseStep
        let r: Float
        switch rounding {
        case .nearest: r = scaled.rounded(.toNearestOrEven)
        case .stochastic: r = (scaled + random.nextUnitFloat()).rounded(.down)
        }
        let m = Float(maxCode)
        if r > m { return (maxCode, true) }
        if r < -m { return (-maxCode, true) }
        if r.isNaN { return (0, true) }
        return (Int32(r), false)
    }

    public var description: String { "Q(\(bits),f=\(fractionBits))" }
}

/// Rounds half to even with two float adds (no libm call at the baseline x86-64 target). Exact for
/// |x| < 2^22; callers clamp to the format's range first.
@inline(__always)
package func roundHalfEven(_ x: Float) -> Float { (x + 12_582_912) - 12_582_912 }

/// Floor for |x| < 2^31 through an integer conversion (no libm call).
@inline(__always)
package func floorSmall(_ x: Float) -> Float {
    let t = Float(Int32(x))
    return t > x ? t - 1 : t
}

/// Clamps `x` to ±`m`; NaN becomes 0. Returns whether it was outside.
@inline(__always)
func clampCode(_ x: inout Float, _ m: Float) -> Bool {
    if abs(x) <= m { return false }
    x = x.isNaN ? 0 : (x > 0 ? m : -m)
    return true
}

/// Saturating helpers on `Int32` codes for a given maximum magnitude.
@inline(__always)
func saturate(_ v: Int32, _ maxCode: Int32) -> Int32 { min(max(v, -maxCode), maxCode) }
