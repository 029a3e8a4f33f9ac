/// The integer `A · B` kernel in pair form: two steps of K at a time with 16-bit operands, so each
/// multiply-add instruction does two products per lane (the pattern compiles to `vpmaddwd`), instead of
/// one 32-bit multiply per product in the broadcast kernel.
///
/// `B` is first packed into a panel of K-pairs: for each pair of rows `(2p, 2p+1)` and each column `j`, the
/// two codes side by side as 16-bit values (a zero row pads an odd K, zero columns pad N to a multiple of 16).
/// Each row of `A` then supplies a pair `(a[2p], a[2p+1])` broadcast to every lane.
extension GEMM {
    /// Whether the pair kernel applies: codes fit 16 bits, a 32-bit lane cannot overflow over 64 steps of K
    /// (two products per step are safe then), and there are enough rows of A to repay packing B.
    @inline(__always)
    static func pairedApplies(m: Int, steps: Int) -> Bool { steps >= minInt32Steps && m >= 8 }

    /// `C += alpha · A · B` with the pair kernel; `chunk` (even) bounds the K-steps summed in `Int32`.
    @inline(__always)
    static func pairedKernel<TA: FixedWidthInteger & SIMDScalar, TB: FixedWidthInteger & SIMDScalar>(
        m: Int, n: Int, k: Int,
        a: UnsafePointer<TA>, lda: Int, b: UnsafePointer<TB>, ldb: Int,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, chunk: Int
    ) {
        // A large B is packed a block of columns at a time, so the workspace stays small (16 KiB for K = 128)
        // whatever N is; each element of C sums the same products in the same order as with one panel of all of B.
        // A small B (a convolution's per-image product) is packed whole, which is faster.
        let block = pairedPanelBytes(k: k, n: n) > pairedPanelLimit ? pairedColumnBlock : n
        var j0 = 0
        while j0 < n {
            let nb = min(block, n - j0)
            let panel = packPairs(b + j0, ldb: ldb, k: k, n: nb)
            panel.withUnsafeBufferPointer { pp in
                pairedProduct(
                    m: m, n: nb, k: k, a: a, lda: lda, panel: pp.baseAddress!, c: c + j0, ldc: ldc, alpha: alpha,
                    chunk: chunk)
            }
            j0 += nb
        }
    }

    /// Columns of B packed at a time by `pairedKernel` when its whole panel would pass `pairedPanelLimit` (a
    /// multiple of 16).
    static let pairedColumnBlock = 64

    /// Panel size above which `pairedKernel` packs B a block of columns at a time, bytes.
    static let pairedPanelLimit = 48 << 10

    /// Bytes of the K-pair panel of a K×N matrix: `(K+1)/2` pairs of rows, N rounded up to 16, two 16-bit codes.
    static func pairedPanelBytes(k: Int, n: Int) -> Int { (k + 1) / 2 * ((n + 15) & ~15) * 4 }

    /// Packs the K×N matrix `b` into K-pairs: `(k+1)/2` rows of `np = N` rounded up to 16 columns, each column
    /// two 16-bit codes side by side (zeros pad an odd K and the extra columns).
    static func packPairs<TB: FixedWidthInteger>(_ b: UnsafePointer<TB>, ldb: Int, k: Int, n: Int) -> [Int16] {
        let pairs = (k + 1) / 2
        let np = (n + 15) & ~15
        var out = [Int16](repeating: 0, count: pairs * np * 2)
        out.withUnsafeMutableBufferPointer { op in
            for p in 0..<pairs {
                let row = op.baseAddress! + p * np * 2
                let b0 = b + 2 * p * ldb
                if 2 * p + 1 < k {
                    let b1 = b0 + ldb
                    for j in 0..<n {
                        row[2 * j] = Int16(truncatingIfNeeded: b0[j])
                        row[2 * j + 1] = Int16(truncatingIfNeeded: b1[j])
                    }
                } else {
                    for j in 0..<n { row[2 * j] = Int16(truncatingIfNeeded: b0[j]) }
                }
            }
        }
        return out
    }

    /// `C += alpha · A · B` for `B` already packed by `packPairs` (K×N); `chunk` (even) bounds the K-steps
    /// summed in `Int32`.
    @inline(__always)
    static func pairedProduct<TA: FixedWidthInteger & SIMDScalar>(
        m: Int, n: Int, k: Int, a: UnsafePointer<TA>, lda: Int, panel: UnsafePointer<Int16>,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, chunk: Int
    ) {
        let pairs = (k + 1) / 2
        let np = (n + 15) & ~15
        let pairChunk = max(1, chunk / 2)
        // A's rows as pairs too, one 32-bit lane pattern per pair, so the inner loop broadcasts from memory.
        let aPairs = UnsafeMutablePointer<UInt32>.allocate(capacity: m * pairs)
        defer { aPairs.deallocate() }
        for i in 0..<m {
            let row = a + i * lda
            for p in 0..<pairs {
                let kk = 2 * p
                let lo = UInt32(UInt16(bitPattern: Int16(truncatingIfNeeded: row[kk])))
                let hi: UInt32 = kk + 1 < k ? UInt32(UInt16(bitPattern: Int16(truncatingIfNeeded: row[kk + 1]))) : 0
                aPairs[i * pairs + p] = lo | hi << 16
            }
        }
        var p0 = 0
        while p0 < pairs {
            let p1 = min(pairs, p0 + pairChunk)
            var i = 0
            while i < m {
                let rows = min(4, m - i)
                var j = 0
                while j < np {
                    pairedTile(
                        rows: rows, i: i, j: j, n: n, np: np, p0: p0, p1: p1, aPairs: aPairs, pairs: pairs,
                        panel: panel, c: c, ldc: ldc, alpha: alpha)
                    j += 16
                }
                i += rows
            }
            p0 = p1
        }
    }

    /// `C = alpha · A · B` (or `C += …`) for `B` packed once in `panel` and shared by several calls.
    @inline(never)
    static func integer<TA: FixedWidthInteger & SIMDScalar>(
        m: Int, a: UnsafePointer<TA>, lda: Int, maxA: Int32, panel: PairPanel,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, accumulate: Bool
    ) {
        guard prepare(c, m: m, n: panel.n, k: panel.k, ldc: ldc, accumulate: accumulate) else { return }
        let steps = safeInt32Steps(maxA: maxA, maxB: panel.maxB)
        precondition(steps >= minInt32Steps, "GEMM.integer(panel:): these codes need the 64-bit kernel")
        panel.codes.withUnsafeBufferPointer { pp in
            pairedProduct(
                m: m, n: panel.n, k: panel.k, a: a, lda: lda, panel: pp.baseAddress!, c: c, ldc: ldc,
                alpha: alpha, chunk: min(steps, panel.k + 1) & ~1)
        }
    }

    /// A pair pattern broadcast to all eight 32-bit lanes, viewed as sixteen 16-bit codes.
    @inline(__always)
    private static func broadcast(_ pattern: UInt32) -> SIMD16<Int16> {
        unsafeBitCast(SIMD8<UInt32>(repeating: pattern), to: SIMD16<Int16>.self)
    }

    /// Two products per lane, summed: `x[2l]·y[2l] + x[2l+1]·y[2l+1]` for the 8 lanes `l`.
    @inline(__always)
    private static func madd(_ x: SIMD16<Int16>, _ y: SIMD16<Int16>) -> SIMD8<Int32> {
        let p = widen16(x, to: Int32.self) &* widen16(y, to: Int32.self)
        return p.evenHalf &+ p.oddHalf
    }

    /// Up to 4 rows × 16 columns of C over pairs `p0..<p1`.
    @inline(__always)
    private static func pairedTile(
        rows: Int, i: Int, j: Int, n: Int, np: Int, p0: Int, p1: Int,
        aPairs: UnsafePointer<UInt32>, pairs: Int, panel: UnsafePointer<Int16>,
        c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float
    ) {
        let a0 = aPairs + i * pairs
        let a1 = a0 + (rows > 1 ? pairs : 0)
        let a2 = a0 + (rows > 2 ? 2 * pairs : 0)
        let a3 = a0 + (rows > 3 ? 3 * pairs : 0)
        var c00 = SIMD8<Int32>()
        var c01 = c00
        var c10 = c00
        var c11 = c00
        var c20 = c00
        var c21 = c00
        var c30 = c00
        var c31 = c00
        var bp = UnsafeRawPointer(panel + (p0 * np + j) * 2)
        let stride = np * 2 * MemoryLayout<Int16>.stride
        for p in p0..<p1 {
            let x0 = bp.loadUnaligned(as: SIMD16<Int16>.self)
            let x1 = bp.loadUnaligned(fromByteOffset: 32, as: SIMD16<Int16>.self)
            let y0 = broadcast(a0[p])
            let y1 = broadcast(a1[p])
            let y2 = broadcast(a2[p])
            let y3 = broadcast(a3[p])
            c00 &+= madd(y0, x0)
            c01 &+= madd(y0, x1)
            c10 &+= madd(y1, x0)
            c11 &+= madd(y1, x1)
            c20 &+= madd(y2, x0)
            c21 &+= madd(y2, x1)
            c30 &+= madd(y3, x0)
            c31 &+= madd(y3, x1)
            bp += stride
        }
        let width = min(16, n - j)
        pairedFlush(c00, c01, c + i * ldc + j, width, alpha)
        if rows > 1 { pairedFlush(c10, c11, c + (i + 1) * ldc + j, width, alpha) }
        if rows > 2 { pairedFlush(c20, c21, c + (i + 2) * ldc + j, width, alpha) }
        if rows > 3 { pairedFlush(c30, c31, c + (i + 3) * ldc + j, width, alpha) }
    }

    /// Adds `alpha ·` the 16 sums (columns j…j+15; only `width` of them real) into a row of C.
    @inline(__always)
    private static func pairedFlush(
        _ lo: SIMD8<Int32>, _ hi: SIMD8<Int32>, _ p: UnsafeMutablePointer<Float>, _ width: Int, _ alpha: Float
    ) {
        var f = SIMD16<Float>()
        for l in 0..<8 {
            f[l] = Float(lo[l])
            f[l + 8] = Float(hi[l])
        }
        f *= alpha
        if width == 16 {
            let raw = UnsafeMutableRawPointer(p)
            raw.storeBytes(of: raw.loadUnaligned(as: SIMD16<Float>.self) + f, as: SIMD16<Float>.self)
        } else {
            for l in 0..<width { p[l] += f[l] }
        }
    }
}

/// A K×N matrix of codes packed into K-pairs (`GEMM.packPairs`) once, for several products that share it
/// (the weight-gradient slices of a linear layer all multiply the same saved input).
struct PairPanel: Sendable {
    /// The packed codes.
    let codes: [Int16]
    /// Rows (K) and columns (N) of the matrix.
    let k: Int, n: Int
    /// Bound on |code|.
    let maxB: Int32

    /// Packs the `k×n` codes of `storage`.
    init(packing storage: FixedPointStorage, k: Int, n: Int, maxB: Int32) {
        switch storage {
        case .int8(let b): codes = b.withUnsafeBufferPointer { GEMM.packPairs($0.baseAddress!, ldb: n, k: k, n: n) }
        case .int16(let b): codes = b.withUnsafeBufferPointer { GEMM.packPairs($0.baseAddress!, ldb: n, k: k, n: n) }
        }
        self.k = k
        self.n = n
        self.maxB = maxB
    }

    /// Packs the `k×n` codes kept packed below a byte in `packed`, unpacking two rows at a time.
    init(packing packed: PackedCodes, k: Int, n: Int, maxB: Int32) {
        precondition(packed.count == k * n, "PairPanel: \(packed.count) codes for \(k)×\(n)")
        let pairs = (k + 1) / 2
        let np = (n + 15) & ~15
        var out = [Int16](repeating: 0, count: pairs * np * 2)
        var rows = [Int8](repeating: 0, count: 2 * n)
        out.withUnsafeMutableBufferPointer { op in
            rows.withUnsafeMutableBufferPointer { rp in
                for p in 0..<pairs {
                    let two = 2 * p + 1 < k
                    packed.unpackInt8(from: 2 * p * n, count: (two ? 2 : 1) * n, into: rp.baseAddress!)
                    let row = op.baseAddress! + p * np * 2
                    for j in 0..<n {
                        row[2 * j] = Int16(rp[j])
                        if two { row[2 * j + 1] = Int16(rp[n + j]) }
                    }
                }
            }
        }
        codes = out
        self.k = k
        self.n = n
        self.maxB = maxB
    }
}

/// `C (+)= alpha · A · B` with `B` packed once in `panel`; A's codes of either width.
func integerGEMM(
    m: Int, a: FixedPointStorage, aOffset: Int = 0, lda: Int, maxA: Int32, panel: PairPanel,
    c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, accumulate: Bool
) {
    switch a {
    case .int8(let x):
        x.withUnsafeBufferPointer {
            GEMM.integer(
                m: m, a: $0.baseAddress! + aOffset, lda: lda, maxA: maxA, panel: panel, c: c, ldc: ldc,
                alpha: alpha, accumulate: accumulate)
        }
    case .int16(let x):
        x.withUnsafeBufferPointer {
            GEMM.integer(
                m: m, a: $0.baseAddress! + aOffset, lda: lda, maxA: maxA, panel: panel, c: c, ldc: ldc,
                alpha: alpha, accumulate: accumulate)
        }
    }
}
