/// A small, fast, deterministic pseudo-random generator (xoshiro256**), seeded through SplitMix64.
///
/// Every random choice in the engine (initialisation, shuffling, stochastic rounding, partitioning) draws
/// from a `RandomSource` built from the user's `--seed`, so runs are reproducible bit for bit.
public struct RandomSource: RandomNumberGenerator, Sendable {
    private var s0: UInt64
    private var s1: UInt64
    private var s2: UInt64
    private var s3: UInt64
    /// Sixteen xoshiro128+ generators side by side, for stochastic rounding sixteen values at a time.
    private var l0: SIMD16<UInt32>
    private var l1: SIMD16<UInt32>
    private var l2: SIMD16<UInt32>
    private var l3: SIMD16<UInt32>

    /// Creates a generator whose whole state is derived from `seed`.
    public init(seed: UInt64) {
        var sm = seed
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&sm)
        s1 = splitMix(&sm)
        s2 = splitMix(&sm)
        s3 = splitMix(&sm)
        var lanes = [SIMD16<UInt32>](repeating: .zero, count: 4)
        for w in 0..<4 {
            for l in 0..<16 { lanes[w][l] = UInt32(truncatingIfNeeded: splitMix(&sm) >> 32) }
        }
        for l in 0..<16 where lanes[0][l] | lanes[1][l] | lanes[2][l] | lanes[3][l] == 0 { lanes[0][l] = 1 }
        (l0, l1, l2, l3) = (lanes[0], lanes[1], lanes[2], lanes[3])
    }

    /// The next 32 random bits in each of sixteen lanes (xoshiro128+ per lane; use the high bits).
    @inline(__always)
    public mutating func nextLanes16() -> SIMD16<UInt32> {
        let result = l0 &+ l3
        let t = l1 &<< 9
        l2 ^= l0
        l3 ^= l1
        l1 ^= l2
        l0 ^= l3
        l2 ^= t
        l3 = (l3 &<< 11) | (l3 &>> 21)
        return result
    }

    /// The next 64 random bits.
    @inline(__always)
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A uniform `Float` in [0, 1) with 24 random bits.
    @inline(__always)
    public mutating func nextUnitFloat() -> Float {
        Float(next() >> 40) * (1.0 / 16_777_216.0)
    }

    /// A uniform `Double` in [0, 1) with 53 random bits.
    @inline(__always)
    public mutating func nextUnitDouble() -> Double {
        Double(next() >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }

    /// A standard normal sample (Box–Muller).
    public mutating func nextGaussian() -> Double {
        var u1 = nextUnitDouble()
        if u1 < 1e-300 { u1 = 1e-300 }
        let u2 = nextUnitDouble()
        return (-2 * _log(u1)).squareRoot() * _cos(2 * Double.pi * u2)
    }

    /// A Gamma(shape, 1) sample (Marsaglia–Tsang; boosted for shape < 1).
    public mutating func nextGamma(shape: Double) -> Double {
        precondition(shape > 0, "Gamma shape must be positive, got \(shape)")
        if shape < 1 {
            let u = max(nextUnitDouble(), 1e-300)
            return nextGamma(shape: shape + 1) * _pow(u, 1 / shape)
        }
        let d = shape - 1.0 / 3.0
        let c = 1 / (9 * d).squareRoot()
        while true {
            var x: Double
            var v: Double
            repeat {
                x = nextGaussian()
                v = 1 + c * x
            } while v <= 0
            v = v * v * v
            let u = nextUnitDouble()
            if u < 1 - 0.0331 * x * x * x * x { return d * v }
            if _log(max(u, 1e-300)) < 0.5 * x * x + d * (1 - v + _log(v)) { return d * v }
        }
    }
}
