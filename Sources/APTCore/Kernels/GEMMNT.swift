extension GEMM {
    /// `C (+)= alpha · A · Bᵀ` over integer codes, with row-major `A` (M×K) and `B` (N×K): every entry is a
    /// dot product of two contiguous rows. Codes are widened to 16 bits and multiplied in pairs with 32-bit
    /// sums (the shape x86's `pmaddwd` and ARM's `smlal` implement), 4 rows of A against 2 rows of B at a
    /// time. Lane sums are flushed to 64 bits before they could overflow.
    @inline(never)
    public static func integerNT<
        TA: FixedWidthInteger & SignedInteger & SIMDScalar,
        TB: FixedWidthInteger & SignedInteger & SIMDScalar
    >(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<TA>, lda: Int, maxA: Int32,
        b: UnsafePointer<TB>, ldb: Int, maxB: Int32,
        c: UnsafeMutablePointer<Float>, ldc: Int,
        alpha: Float, accumulate: Bool
    ) {
        guard prepare(c, m: m, n: n, k: k, ldc: ldc, accumulate: accumulate) else { return }
        // Each 16-wide step adds two products to every 32-bit lane.
        let perLane = Int64(2) * Int64(maxA) * Int64(maxB)
        let stepsPerChunk = perLane > 0 ? max(1, Int(Int64(Int32.max) / perLane)) : Int.max / 32
        let chunk = min(k, stepsPerChunk >= Int.max / 32 ? k : stepsPerChunk * 16)
        var k0 = 0
        while k0 < k {
            let k1 = min(k, k0 + chunk)
            ntChunk(m: m, n: n, k0: k0, k1: k1, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, alpha: alpha)
            k0 = k1
        }
    }

    /// Loads 16 codes widened through 16 bits (so the pairwise multiply-add matches `pmaddwd`).
    @inline(__always)
    static func load16x32<T: FixedWidthInteger & SIMDScalar>(_ p: UnsafePointer<T>) -> SIMD16<Int32> {
        widen16(widen16(UnsafeRawPointer(p).loadUnaligned(as: SIMD16<T>.self), to: Int16.self), to: Int32.self)
    }

    @inline(__always)
    static func madd16<TA: FixedWidthInteger & SIMDScalar, TB: FixedWidthInteger & SIMDScalar>(
        _ a: UnsafePointer<TA>, _ b: UnsafePointer<TB>
    ) -> SIMD8<Int32> {
        let x = widen16(UnsafeRawPointer(a).loadUnaligned(as: SIMD16<TA>.self), to: Int16.self)
        let y = widen16(UnsafeRawPointer(b).loadUnaligned(as: SIMD16<TB>.self), to: Int16.self)
        let p = widen16(x, to: Int32.self) &* widen16(y, to: Int32.self)
        return p.evenHalf &+ p.oddHalf
    }

    @inline(__always)
    static func lanes(_ v: SIMD8<Int32>) -> Int64 {
        var s: Int64 = 0
        for i in 0..<8 { s += Int64(v[i]) }
        return s
    }

    @inline(__always)
    static func tail<TA: FixedWidthInteger, TB: FixedWidthInteger>(
        _ a: UnsafePointer<TA>, _ b: UnsafePointer<TB>, _ from: Int, _ to: Int
    ) -> Int64 {
        var s: Int64 = 0
        for kk in from..<to { s += Int64(a[kk]) * Int64(b[kk]) }
        return s
    }

    @inline(__always)
    private static func ntChunk<
        TA: FixedWidthInteger & SignedInteger & SIMDScalar,
        TB: FixedWidthInteger & SignedInteger & SIMDScalar
    >(
        m: Int, n: Int, k0: Int, k1: Int, a: UnsafePointer<TA>, lda: Int, b: UnsafePointer<TB>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float
    ) {
        let kv = k0 + (k1 - k0) / 16 * 16
        var i = 0
        while i + 4 <= m {
            let a0 = a + i * lda
            let a1 = a0 + lda
            let a2 = a1 + lda
            let a3 = a2 + lda
            var j = 0
            while j + 2 <= n {
                let b0 = b + j * ldb
                let b1 = b0 + ldb
                var c00 = SIMD8<Int32>()
                var c01 = c00
                var c10 = c00
                var c11 = c00
                var c20 = c00
                var c21 = c00
                var c30 = c00
                var c31 = c00
                var kk = k0
                while kk < kv {
                    let x0 = load16x32(b0 + kk)
                    let x1 = load16x32(b1 + kk)
                    let y0 = load16x32(a0 + kk)
                    let y1 = load16x32(a1 + kk)
                    let y2 = load16x32(a2 + kk)
                    let y3 = load16x32(a3 + kk)
                    var p = y0 &* x0
                    c00 &+= p.evenHalf &+ p.oddHalf
                    p = y0 &* x1
                    c01 &+= p.evenHalf &+ p.oddHalf
                    p = y1 &* x0
                    c10 &+= p.evenHalf &+ p.oddHalf
                    p = y1 &* x1
                    c11 &+= p.evenHalf &+ p.oddHalf
                    p = y2 &* x0
                    c20 &+= p.evenHalf &+ p.oddHalf
                    p = y2 &* x1
                    c21 &+= p.evenHalf &+ p.oddHalf
                    p = y3 &* x0
                    c30 &+= p.evenHalf &+ p.oddHalf
                    p = y3 &* x1
                    c31 &+= p.evenHalf &+ p.oddHalf
                    kk += 16
                }
                let cr = c + i * ldc + j
                cr[0] += Float(lanes(c00) + tail(a0, b0, kv, k1)) * alpha
                cr[1] += Float(lanes(c01) + tail(a0, b1, kv, k1)) * alpha
                cr[ldc] += Float(lanes(c10) + tail(a1, b0, kv, k1)) * alpha
                cr[ldc + 1] += Float(lanes(c11) + tail(a1, b1, kv, k1)) * alpha
                cr[2 * ldc] += Float(lanes(c20) + tail(a2, b0, kv, k1)) * alpha
                cr[2 * ldc + 1] += Float(lanes(c21) + tail(a2, b1, kv, k1)) * alpha
                cr[3 * ldc] += Float(lanes(c30) + tail(a3, b0, kv, k1)) * alpha
                cr[3 * ldc + 1] += Float(lanes(c31) + tail(a3, b1, kv, k1)) * alpha
                j += 2
            }
            if j < n {
                let bj = b + j * ldb
                for r in 0..<4 { c[(i + r) * ldc + j] += Float(dot(a + (i + r) * lda, bj, k0, kv, k1)) * alpha }
            }
            i += 4
        }
        while i < m {
            let ai = a + i * lda
            for j in 0..<n { c[i * ldc + j] += Float(dot(ai, b + j * ldb, k0, kv, k1)) * alpha }
            i += 1
        }
    }

    @inline(__always)
    private static func dot<TA: FixedWidthInteger & SIMDScalar, TB: FixedWidthInteger & SIMDScalar>(
        _ a: UnsafePointer<TA>, _ b: UnsafePointer<TB>, _ k0: Int, _ kv: Int, _ k1: Int
    ) -> Int64 {
        var acc = SIMD8<Int32>()
        var kk = k0
        while kk < kv {
            acc &+= madd16(a + kk, b + kk)
            kk += 16
        }
        return lanes(acc) + tail(a, b, kv, k1)
    }
}
