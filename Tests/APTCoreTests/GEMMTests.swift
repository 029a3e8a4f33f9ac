import Testing

@testable import APTCore

@Suite("Integer and float GEMM kernels against a naive reference")
struct GEMMTests {
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (1, 17, 3), (3, 5, 7), (4, 16, 1), (5, 33, 10), (9, 31, 64), (64, 10, 128), (7, 48, 784),
        (8, 100, 150), (13, 37, 1033), (10, 16, 1),
    ]

    func reference(_ m: Int, _ n: Int, _ k: Int, _ a: [Int32], _ b: [Int32]) -> [Double] {
        var c = [Double](repeating: 0, count: m * n)
        for i in 0..<m {
            for j in 0..<n { for kk in 0..<k { c[i * n + j] += Double(a[i * k + kk]) * Double(b[kk * n + j]) } }
        }
        return c
    }

    @Test("integer GEMM equals the exact product", arguments: [(8, 8), (8, 16), (16, 8), (16, 16), (4, 12)])
    func integer(bitsA: Int, bitsB: Int) {
        var random = RandomSource(seed: UInt64(bitsA * 31 + bitsB))
        for (m, n, k) in Self.shapes {
            let ma = FixedPointFormat.maxCode(bits: bitsA)
            let mb = FixedPointFormat.maxCode(bits: bitsB)
            // Extreme codes included so that overflow of a 32-bit accumulator would show.
            let a = (0..<(m * k)).map { i in
                i % 3 == 0 ? ma : Int32(Int64(random.next() % UInt64(2 * ma + 1)) - Int64(ma))
            }
            let b = (0..<(k * n)).map { i in
                i % 2 == 0 ? mb : Int32(Int64(random.next() % UInt64(2 * mb + 1)) - Int64(mb))
            }
            let ta = FixedPointTensor(shape: [m, k], format: FixedPointFormat(bits: bitsA, fractionBits: 0), codes: a)
            let tb = FixedPointTensor(shape: [k, n], format: FixedPointFormat(bits: bitsB, fractionBits: 0), codes: b)
            var c = [Float](repeating: 0, count: m * n)
            c.withUnsafeMutableBufferPointer { cp in
                integerGEMM(
                    m: m, n: n, k: k, a: ta.storage, lda: k, maxA: ma, b: tb.storage, ldb: n, maxB: mb,
                    c: cp.baseAddress!, ldc: n, alpha: 1, accumulate: false)
            }
            let ref = reference(m, n, k, a, b)
            for i in 0..<(m * n) {
                #expect(
                    isApproximatelyEqual(Double(c[i]), ref[i], absolute: 0, relative: 4e-6),
                    "\(bitsA)×\(bitsB) bits, shape \(m)×\(n)×\(k), element \(i): \(c[i]) vs \(ref[i])")
            }
        }
    }

    @Test("a B packed once into K-pairs gives the exact product for every slice of A's rows")
    func prepackedPanel() {
        var random = RandomSource(seed: 77)
        for (m, n, k) in [(24, 37, 64), (8, 784, 65), (9, 16, 1)] {
            let ma = FixedPointFormat.maxCode(bits: 8)
            let mb = FixedPointFormat.maxCode(bits: 12)
            let a = (0..<(m * k)).map { _ in Int32(Int64(random.next() % UInt64(2 * ma + 1)) - Int64(ma)) }
            let b = (0..<(k * n)).map { i in
                i % 5 == 0 ? -mb : Int32(Int64(random.next() % UInt64(2 * mb + 1)) - Int64(mb))
            }
            let ta = FixedPointTensor(shape: [m, k], format: FixedPointFormat(bits: 8, fractionBits: 0), codes: a)
            let tb = FixedPointTensor(shape: [k, n], format: FixedPointFormat(bits: 12, fractionBits: 0), codes: b)
            let panel = PairPanel(packing: tb.storage, k: k, n: n, maxB: mb)
            #expect(GEMM.int32Suffices(maxA: ma, maxB: mb))
            var c = [Float](repeating: 0, count: m * n)
            c.withUnsafeMutableBufferPointer { cp in
                var r0 = 0
                while r0 < m {  // in slices of up to 8 rows, as the linear layer does
                    let rows = min(8, m - r0)
                    integerGEMM(
                        m: rows, a: ta.storage, aOffset: r0 * k, lda: k, maxA: ma, panel: panel,
                        c: cp.baseAddress! + r0 * n, ldc: n, alpha: 1, accumulate: false)
                    r0 += rows
                }
            }
            let ref = reference(m, n, k, a, b)
            for i in 0..<(m * n) {
                #expect(Double(c[i]) == ref[i], "shape \(m)×\(n)×\(k), element \(i): \(c[i]) vs \(ref[i])")
            }
        }
    }

    @Test("float GEMM matches the naive product, with accumulate")
    func float() {
        var random = RandomSource(seed: 9)
        for (m, n, k) in Self.shapes {
            let a = (0..<(m * k)).map { _ in random.nextUnitFloat() - 0.5 }
            let b = (0..<(k * n)).map { _ in random.nextUnitFloat() - 0.5 }
            var c = [Float](repeating: 1, count: m * n)
            a.withUnsafeBufferPointer { ap in
                b.withUnsafeBufferPointer { bp in
                    c.withUnsafeMutableBufferPointer { cp in
                        GEMM.float(
                            m: m, n: n, k: k, a: ap.baseAddress!, lda: k, b: bp.baseAddress!, ldb: n,
                            c: cp.baseAddress!, ldc: n, alpha: 2, accumulate: true)
                    }
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for kk in 0..<k { s += Double(a[i * k + kk]) * Double(b[kk * n + j]) }
                    #expect(
                        isApproximatelyEqual(Double(c[i * n + j]), 1 + 2 * s, absolute: 1e-4),
                        "shape \(m)×\(n)×\(k) at (\(i),\(j))")
                }
            }
        }
    }
}

@Suite("Integer dot-product GEMM (A·Bᵀ) against a naive reference")
struct GEMMNTTests {
    @Test(
        "integerNT equals the exact product for every shape and width",
        arguments: [(8, 8), (8, 16), (16, 8), (16, 16), (3, 12)])
    func integerNT(bitsA: Int, bitsB: Int) {
        var random = RandomSource(seed: UInt64(bitsA * 17 + bitsB))
        for (m, n, k) in [
            (1, 1, 1), (1, 3, 15), (4, 2, 16), (5, 3, 17), (9, 7, 33), (4, 4, 784), (7, 5, 100), (64, 10, 64),
        ] {
            let ma = FixedPointFormat.maxCode(bits: bitsA)
            let mb = FixedPointFormat.maxCode(bits: bitsB)
            let a = (0..<(m * k)).map { i in
                i % 3 == 0 ? -ma : Int32(Int64(random.next() % UInt64(2 * ma + 1)) - Int64(ma))
            }
            let b = (0..<(n * k)).map { i in
                i % 2 == 0 ? -mb : Int32(Int64(random.next() % UInt64(2 * mb + 1)) - Int64(mb))
            }
            let ta = FixedPointTensor(shape: [m, k], format: FixedPointFormat(bits: bitsA, fractionBits: 0), codes: a)
            let tb = FixedPointTensor(shape: [n, k], format: FixedPointFormat(bits: bitsB, fractionBits: 0), codes: b)
            var c = [Float](repeating: 0.5, count: m * n)
            c.withUnsafeMutableBufferPointer { cp in
                integerGEMMNT(
                    m: m, n: n, k: k, a: ta.storage, lda: k, maxA: ma, b: tb.storage, ldb: k, maxB: mb,
                    c: cp.baseAddress!, ldc: n, alpha: 0.25, accumulate: true)
            }
            for i in 0..<m {
                for j in 0..<n {
                    var s = 0.0
                    for kk in 0..<k { s += Double(a[i * k + kk]) * Double(b[j * k + kk]) }
                    #expect(
                        isApproximatelyEqual(Double(c[i * n + j]), 0.5 + 0.25 * s, absolute: 1e-3, relative: 4e-6),
                        "\(bitsA)×\(bitsB) bits, \(m)×\(n)×\(k) at (\(i),\(j)): \(c[i * n + j]) vs \(0.5 + 0.25 * s)")
                }
            }
        }
    }
}
