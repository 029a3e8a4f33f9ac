extension GEMM {
    /// `C (+)= alpha · A · Bᵀ` in fp32 with row-major `A` (M×K) and `B` (N×K): every entry a dot product of two
    /// contiguous rows, 4 rows of A against 2 rows of B at a time, 16 lanes of partial sums each. The fp32
    /// baseline's forward product uses it on the weights as they are stored, so it needs no transposed copy of
    /// them.
    @inline(never)
    public static func floatNT(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<Float>, lda: Int, b: UnsafePointer<Float>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, accumulate: Bool
    ) {
        guard prepare(c, m: m, n: n, k: k, ldc: ldc, accumulate: accumulate) else { return }
        let kv = k & ~15
        @inline(__always) func tail(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>) -> Float {
            var s: Float = 0
            var kk = kv
            while kk < k {
                s += x[kk] * y[kk]
                kk += 1
            }
            return s
        }
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
                var c00 = SIMD16<Float>()
                var c01 = c00
                var c10 = c00
                var c11 = c00
                var c20 = c00
                var c21 = c00
                var c30 = c00
                var c31 = c00
                var kk = 0
                while kk < kv {
                    let x0 = load16(b0 + kk)
                    let x1 = load16(b1 + kk)
                    let y0 = load16(a0 + kk)
                    let y1 = load16(a1 + kk)
                    let y2 = load16(a2 + kk)
                    let y3 = load16(a3 + kk)
                    c00 += y0 * x0
                    c01 += y0 * x1
                    c10 += y1 * x0
                    c11 += y1 * x1
                    c20 += y2 * x0
                    c21 += y2 * x1
                    c30 += y3 * x0
                    c31 += y3 * x1
                    kk += 16
                }
                let cr = c + i * ldc + j
                cr[0] += (c00.sum() + tail(a0, b0)) * alpha
                cr[1] += (c01.sum() + tail(a0, b1)) * alpha
                cr[ldc] += (c10.sum() + tail(a1, b0)) * alpha
                cr[ldc + 1] += (c11.sum() + tail(a1, b1)) * alpha
                cr[2 * ldc] += (c20.sum() + tail(a2, b0)) * alpha
                cr[2 * ldc + 1] += (c21.sum() + tail(a2, b1)) * alpha
                cr[3 * ldc] += (c30.sum() + tail(a3, b0)) * alpha
                cr[3 * ldc + 1] += (c31.sum() + tail(a3, b1)) * alpha
                j += 2
            }
            while j < n {
                for r in 0..<4 { c[(i + r) * ldc + j] += floatDot(a + (i + r) * lda, b + j * ldb, k) * alpha }
                j += 1
            }
            i += 4
        }
        while i < m {
            for j in 0..<n { c[i * ldc + j] += floatDot(a + i * lda, b + j * ldb, k) * alpha }
            i += 1
        }
    }

    /// One fp32 dot product of length `k`, 16 lanes of partial sums.
    @inline(__always)
    static func floatDot(_ x: UnsafePointer<Float>, _ y: UnsafePointer<Float>, _ k: Int) -> Float {
        var acc = SIMD16<Float>()
        var kk = 0
        while kk + 16 <= k {
            acc += load16(x + kk) * load16(y + kk)
            kk += 16
        }
        var s = acc.sum()
        while kk < k {
            s += x[kk] * y[kk]
            kk += 1
        }
        return s
    }
}
