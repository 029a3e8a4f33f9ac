/// Matrix-multiply kernels: `C (+)= alpha · A · B` with row-major `A` (M×K), `B` (K×N) and `C` (M×N).
///
/// The integer kernel multiplies fixed-point codes exactly, accumulating in `Int32` for at most
/// `chunk` steps of K (chosen so the sum cannot overflow) and in `Int64` where even that is too wide, then
/// scales into a `Float` result. The float kernel is the fp32 baseline's path. Both are register-tiled:
/// 4 rows of A against 16 contiguous columns of B, vectorised across columns.
public enum GEMM {
    /// Zeroes C unless accumulating; returns whether there is any work (all sizes positive).
    @inline(__always)
    static func prepare(_ c: UnsafeMutablePointer<Float>, m: Int, n: Int, k: Int, ldc: Int, accumulate: Bool) -> Bool {
        if !accumulate {
            for i in 0..<m { (c + i * ldc).update(repeating: 0, count: n) }
        }
        return m > 0 && n > 0 && k > 0
    }

    /// The fewest safe K-steps (`safeInt32Steps`) for which the `Int32` kernels are used; below it, `Int64`.
    static let minInt32Steps = 64

    /// Whether codes bounded by `maxA` and `maxB` can be multiplied with `Int32` accumulators.
    static func int32Suffices(maxA: Int32, maxB: Int32) -> Bool {
        safeInt32Steps(maxA: maxA, maxB: maxB) >= minInt32Steps
    }

    /// Number of K-steps an `Int32` accumulator can take without overflow, for codes bounded by
    /// `maxA` and `maxB` in magnitude; `0` when even one product could overflow.
    public static func safeInt32Steps(maxA: Int32, maxB: Int32) -> Int {
        let p = Int64(maxA) * Int64(maxB)
        guard p > 0 else { return Int.max }
        return Int(Int64(Int32.max) / p)
    }

    /// `C = alpha · A · B` (or `C += …` when `accumulate`) over integer codes.
    ///
    /// - Parameters:
    ///   - maxA, maxB: bounds on |A| and |B| (from their formats), used to pick a safe accumulator.
    @inline(never)
    public static func integer<
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
        let steps = safeInt32Steps(maxA: maxA, maxB: maxB)
        if pairedApplies(m: m, steps: steps) {
            pairedKernel(
                m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, alpha: alpha,
                chunk: min(steps, k + 1) & ~1)
        } else if steps >= minInt32Steps {
            kernel(
                m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, alpha: alpha,
                chunk: min(steps, k), acc: Int32.self)
        } else {
            kernel(
                m: m, n: n, k: k, a: a, lda: lda, b: b, ldb: ldb, c: c, ldc: ldc, alpha: alpha,
                chunk: k, acc: Int64.self)
        }
    }

    @inline(__always)
    private static func kernel<
        TA: FixedWidthInteger & SIMDScalar, TB: FixedWidthInteger & SIMDScalar,
        Acc: FixedWidthInteger & SignedInteger & SIMDScalar
    >(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<TA>, lda: Int, b: UnsafePointer<TB>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, chunk: Int, acc: Acc.Type
    ) {
        let nv = n & ~15
        var k0 = 0
        while k0 < k {
            let k1 = min(k, k0 + chunk)
            var i = 0
            while i + 4 <= m {
                let a0 = a + i * lda
                let a1 = a0 + lda
                let a2 = a1 + lda
                let a3 = a2 + lda
                var j = 0
                while j < nv {
                    var c0 = SIMD16<Acc>(repeating: 0)
                    var c1 = c0
                    var c2 = c0
                    var c3 = c0
                    var bp = b + k0 * ldb + j
                    for kk in k0..<k1 {
                        let bv = widen16(UnsafeRawPointer(bp).loadUnaligned(as: SIMD16<TB>.self), to: Acc.self)
                        c0 &+= SIMD16<Acc>(repeating: Acc(truncatingIfNeeded: a0[kk])) &* bv
                        c1 &+= SIMD16<Acc>(repeating: Acc(truncatingIfNeeded: a1[kk])) &* bv
                        c2 &+= SIMD16<Acc>(repeating: Acc(truncatingIfNeeded: a2[kk])) &* bv
                        c3 &+= SIMD16<Acc>(repeating: Acc(truncatingIfNeeded: a3[kk])) &* bv
                        bp += ldb
                    }
                    flush(c0, c + i * ldc + j, alpha)
                    flush(c1, c + (i + 1) * ldc + j, alpha)
                    flush(c2, c + (i + 2) * ldc + j, alpha)
                    flush(c3, c + (i + 3) * ldc + j, alpha)
                    j += 16
                }
                i += 4
            }
            if i + 2 <= m {
                let a0 = a + i * lda
                let a1 = a0 + lda
                var j = 0
                while j < nv {
                    var c0 = SIMD16<Acc>(repeating: 0)
                    var c1 = c0
                    var bp = b + k0 * ldb + j
                    for kk in k0..<k1 {
                        let bv = widen16(UnsafeRawPointer(bp).loadUnaligned(as: SIMD16<TB>.self), to: Acc.self)
                        c0 &+= SIMD16<Acc>(repeating: Acc(truncatingIfNeeded: a0[kk])) &* bv
                        c1 &+= SIMD16<Acc>(repeating: Acc(truncatingIfNeeded: a1[kk])) &* bv
                        bp += ldb
                    }
                    flush(c0, c + i * ldc + j, alpha)
                    flush(c1, c + (i + 1) * ldc + j, alpha)
                    j += 16
                }
                i += 2
            }
            while i < m {
                let a0 = a + i * lda
                var j = 0
                while j < nv {
                    var c0 = SIMD16<Acc>(repeating: 0)
                    var bp = b + k0 * ldb + j
                    for kk in k0..<k1 {
                        let bv = widen16(UnsafeRawPointer(bp).loadUnaligned(as: SIMD16<TB>.self), to: Acc.self)
                        c0 &+= SIMD16<Acc>(repeating: Acc(truncatingIfNeeded: a0[kk])) &* bv
                        bp += ldb
                    }
                    flush(c0, c + i * ldc + j, alpha)
                    j += 16
                }
                i += 1
            }
            // Column tail (fewer than 16 columns): copied into a zero-padded 16-wide panel so it runs the same
            // vector loop instead of a scalar one (a 100-position convolution has a 4-column tail).
            if nv < n {
                let tail = n - nv
                let rows = k1 - k0
                let panel = UnsafeMutablePointer<TB>.allocate(capacity: rows * 16)
                defer { panel.deallocate() }
                panel.initialize(repeating: 0, count: rows * 16)
                for kk in 0..<rows {
                    let src = b + (k0 + kk) * ldb + nv
                    for j in 0..<tail { panel[kk * 16 + j] = src[j] }
                }
                for i in 0..<m {
                    let ar = a + i * lda
                    var c0 = SIMD16<Acc>(repeating: 0)
                    var bp = UnsafePointer(panel)
                    for kk in k0..<k1 {
                        let bv = widen16(UnsafeRawPointer(bp).loadUnaligned(as: SIMD16<TB>.self), to: Acc.self)
                        c0 &+= SIMD16<Acc>(repeating: Acc(truncatingIfNeeded: ar[kk])) &* bv
                        bp += 16
                    }
                    let out = c + i * ldc + nv
                    for j in 0..<tail { out[j] += Float(c0[j]) * alpha }
                }
            }
            k0 = k1
        }
    }

    @inline(__always)
    private static func flush<Acc: FixedWidthInteger & SIMDScalar>(
        _ v: SIMD16<Acc>, _ p: UnsafeMutablePointer<Float>, _ alpha: Float
    ) {
        let raw = UnsafeMutableRawPointer(p)
        var f = SIMD16<Float>()
        for l in 0..<16 { f[l] = Float(v[l]) }
        let old = raw.loadUnaligned(as: SIMD16<Float>.self)
        raw.storeBytes(of: old + f * alpha, as: SIMD16<Float>.self)
    }

    /// `C = alpha · A · B` (or `C += …` when `accumulate`) in fp32: the baseline's kernel.
    @inline(never)
    public static func float(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, accumulate: Bool
    ) {
        guard prepare(c, m: m, n: n, k: k, ldc: ldc, accumulate: accumulate) else { return }
        let nv = n & ~15
        var i = 0
        while i + 4 <= m {
            let a0 = a + i * lda
            let a1 = a0 + lda
            let a2 = a1 + lda
            let a3 = a2 + lda
            var j = 0
            while j < nv {
                var c0 = SIMD16<Float>(repeating: 0)
                var c1 = c0
                var c2 = c0
                var c3 = c0
                var bp = b + j
                for kk in 0..<k {
                    let bv = UnsafeRawPointer(bp).loadUnaligned(as: SIMD16<Float>.self)
                    c0 += SIMD16<Float>(repeating: a0[kk]) * bv
                    c1 += SIMD16<Float>(repeating: a1[kk]) * bv
                    c2 += SIMD16<Float>(repeating: a2[kk]) * bv
                    c3 += SIMD16<Float>(repeating: a3[kk]) * bv
                    bp += ldb
                }
                addStore(c0 * alpha, c + i * ldc + j)
                addStore(c1 * alpha, c + (i + 1) * ldc + j)
                addStore(c2 * alpha, c + (i + 2) * ldc + j)
                addStore(c3 * alpha, c + (i + 3) * ldc + j)
                j += 16
            }
            i += 4
        }
        while i < m {
            let a0 = a + i * lda
            var j = 0
            while j < nv {
                var c0 = SIMD16<Float>(repeating: 0)
                var bp = b + j
                for kk in 0..<k {
                    c0 += SIMD16<Float>(repeating: a0[kk]) * UnsafeRawPointer(bp).loadUnaligned(as: SIMD16<Float>.self)
                    bp += ldb
                }
                addStore(c0 * alpha, c + i * ldc + j)
                j += 16
            }
            i += 1
        }
        if nv < n {
            for i in 0..<m {
                let ar = a + i * lda
                for j in nv..<n {
                    var s: Float = 0
                    for kk in 0..<k { s += ar[kk] * b[kk * ldb + j] }
                    c[i * ldc + j] += s * alpha
                }
            }
        }
    }

    @inline(__always)
    private static func addStore(_ v: SIMD16<Float>, _ p: UnsafeMutablePointer<Float>) {
        let raw = UnsafeMutableRawPointer(p)
        raw.storeBytes(of: raw.loadUnaligned(as: SIMD16<Float>.self) + v, as: SIMD16<Float>.self)
    }

    /// Writes the transpose of the row-major `rows×cols` matrix `src` into `dst` (`cols×rows`).
    @inline(__always)
    public static func transpose<T>(
        rows: Int, cols: Int, src: UnsafePointer<T>, dst: UnsafeMutablePointer<T>
    ) {
        let tile = 16
        var r0 = 0
        while r0 < rows {
            let r1 = min(rows, r0 + tile)
            var c0 = 0
            while c0 < cols {
                let c1 = min(cols, c0 + tile)
                for r in r0..<r1 {
                    for cc in c0..<c1 { dst[cc * rows + r] = src[r * cols + cc] }
                }
                c0 = c1
            }
            r0 = r1
        }
    }
}
