extension FixedPointStorage {
    /// Transposes the codes of a `rows×cols` matrix.
    func transposed(rows: Int, cols: Int) -> FixedPointStorage {
        switch self {
        case .int8(let a):
            var out = [Int8](repeating: 0, count: a.count)
            a.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { d in
                    GEMM.transpose(rows: rows, cols: cols, src: s.baseAddress!, dst: d.baseAddress!)
                }
            }
            return .int8(out)
        case .int16(let a):
            var out = [Int16](repeating: 0, count: a.count)
            a.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { d in
                    GEMM.transpose(rows: rows, cols: cols, src: s.baseAddress!, dst: d.baseAddress!)
                }
            }
            return .int16(out)
        }
    }
}

extension FixedPointStorage {
    /// Columns `columns` of a `rows×cols` matrix, transposed: a `columns.count × rows` matrix.
    func transposedColumns(_ columns: Range<Int>, rows: Int, cols: Int) -> FixedPointStorage {
        func pick<T: FixedWidthInteger>(_ a: [T]) -> [T] {
            var out = [T](repeating: 0, count: columns.count * rows)
            a.withUnsafeBufferPointer { s in
                out.withUnsafeMutableBufferPointer { d in
                    for (o, c) in columns.enumerated() {
                        for r in 0..<rows { d[o * rows + r] = s[r * cols + c] }
                    }
                }
            }
            return out
        }
        switch self {
        case .int8(let a): return .int8(pick(a))
        case .int16(let a): return .int16(pick(a))
        }
    }
}

/// Work on the codes of two fixed-point storages, whatever their widths.
protocol CodePairKernel {
    /// Runs on the base pointers of the two code arrays.
    func run<TA: FixedWidthInteger & SignedInteger & SIMDScalar, TB: FixedWidthInteger & SignedInteger & SIMDScalar>(
        _ a: UnsafePointer<TA>, _ b: UnsafePointer<TB>)
}

/// Calls `kernel` with typed pointers to the codes of `a` and `b` (the four Int8/Int16 combinations).
func withCodePointers<K: CodePairKernel>(_ a: FixedPointStorage, _ b: FixedPointStorage, _ kernel: K) {
    func go<TA: FixedWidthInteger & SignedInteger & SIMDScalar>(_ pa: UnsafeBufferPointer<TA>) {
        switch b {
        case .int8(let y): y.withUnsafeBufferPointer { kernel.run(pa.baseAddress!, $0.baseAddress!) }
        case .int16(let y): y.withUnsafeBufferPointer { kernel.run(pa.baseAddress!, $0.baseAddress!) }
        }
    }
    switch a {
    case .int8(let x): x.withUnsafeBufferPointer { go($0) }
    case .int16(let x): x.withUnsafeBufferPointer { go($0) }
    }
}

/// The operands and result of one integer GEMM call, shared by both kernel shapes.
struct IntegerGEMMCall: CodePairKernel {
    var transposedB: Bool
    var m: Int, n: Int, k: Int
    var aOffset: Int, lda: Int, maxA: Int32
    var bOffset: Int, ldb: Int, maxB: Int32
    var c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, accumulate: Bool

    func run<TA: FixedWidthInteger & SignedInteger & SIMDScalar, TB: FixedWidthInteger & SignedInteger & SIMDScalar>(
        _ a: UnsafePointer<TA>, _ b: UnsafePointer<TB>
    ) {
        if transposedB {
            GEMM.integerNT(
                m: m, n: n, k: k, a: a + aOffset, lda: lda, maxA: maxA, b: b + bOffset, ldb: ldb, maxB: maxB,
                c: c, ldc: ldc, alpha: alpha, accumulate: accumulate)
        } else {
            GEMM.integer(
                m: m, n: n, k: k, a: a + aOffset, lda: lda, maxA: maxA, b: b + bOffset, ldb: ldb, maxB: maxB,
                c: c, ldc: ldc, alpha: alpha, accumulate: accumulate)
        }
    }
}

/// `C (+)= alpha · A · B` over fixed-point storages of either width; B is K×N.
func integerGEMM(
    m: Int, n: Int, k: Int,
    a: FixedPointStorage, aOffset: Int = 0, lda: Int, maxA: Int32,
    b: FixedPointStorage, bOffset: Int = 0, ldb: Int, maxB: Int32,
    c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, accumulate: Bool
) {
    withCodePointers(
        a, b,
        IntegerGEMMCall(
            transposedB: false, m: m, n: n, k: k, aOffset: aOffset, lda: lda, maxA: maxA, bOffset: bOffset, ldb: ldb,
            maxB: maxB, c: c, ldc: ldc, alpha: alpha, accumulate: accumulate))
}

/// `C (+)= alpha · A · Bᵀ` over fixed-point storages of either width; B is N×K.
func integerGEMMNT(
    m: Int, n: Int, k: Int,
    a: FixedPointStorage, aOffset: Int = 0, lda: Int, maxA: Int32,
    b: FixedPointStorage, bOffset: Int = 0, ldb: Int, maxB: Int32,
    c: UnsafeMutablePointer<Float>, ldc: Int, alpha: Float, accumulate: Bool
) {
    withCodePointers(
        a, b,
        IntegerGEMMCall(
            transposedB: true, m: m, n: n, k: k, aOffset: aOffset, lda: lda, maxA: maxA, bOffset: bOffset, ldb: ldb,
            maxB: maxB, c: c, ldc: ldc, alpha: alpha, accumulate: accumulate))
}

/// Accumulator width the integer kernel uses for these operand bounds (32, or 64 where 32 would overflow).
func accumulatorBits(maxA: Int32, maxB: Int32) -> Int {
    GEMM.int32Suffices(maxA: maxA, maxB: maxB) ? 32 : 64
}
