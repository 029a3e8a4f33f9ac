/// A batch of float values flowing between layers: `count` samples, each of `shape` (e.g. `[C, H, W]`).
public struct Batch: Sendable {
    /// Row-major values, sample after sample.
    public var values: [Float]
    /// Number of samples.
    public var count: Int
    /// Per-sample shape.
    public var shape: [Int]

    /// Creates a batch; the value count must match.
    public init(values: [Float], count: Int, shape: [Int]) {
        precondition(values.count == count * shape.reduce(1, *), "batch values do not match \(count)×\(shape)")
        self.values = values
        self.count = count
        self.shape = shape
    }

    /// Elements per sample.
    public var sampleSize: Int { shape.reduce(1, *) }
}

/// Everything a layer needs from the run while it computes a pass.
public struct StepContext: Sendable {
    /// The arithmetic of the run.
    public var mode: PrecisionMode
    /// Bitwidths and rounding for fixed-point runs.
    public var quantization: QuantizationSettings
    /// Optimiser hyper-parameters.
    public var hyper: UpdateHyperparameters
    /// Randomness for stochastic rounding.
    public var random: RandomSource
    /// Where MACs and bytes are counted.
    public var meter: EnergyMeter
    /// Whether to keep what the backward pass needs.
    public var training: Bool
    /// Index of the layer being run (for the meter).
    public var layerIndex: Int = 0
    /// Whether the running layer must hand on its output as activation-bit codes (set by `Network`).
    public var quantizeOutput = false

    /// Creates a context.
    public init(
        mode: PrecisionMode, quantization: QuantizationSettings, hyper: UpdateHyperparameters,
        random: RandomSource, meter: EnergyMeter, training: Bool
    ) {
        self.mode = mode
        self.quantization = quantization
        self.hyper = hyper
        self.random = random
        self.meter = meter
        self.training = training
    }
}

/// A layer of a sequential network. Backward passes are written by hand.
public protocol Layer: Sendable {
    /// A short name such as `linear(784→256)`.
    var name: String { get }
    /// The per-sample output shape for a per-sample input shape.
    func outputShape(for input: [Int]) -> [Int]
    /// Computes the output; keeps what `backward` needs when `context.training`.
    mutating func forward(_ x: Batch, context: inout StepContext) -> Batch
    /// Given the loss gradient w.r.t. the output, updates the parameters (if any) and returns the gradient
    /// w.r.t. the input, or `nil` when `needsInputGradient` is false.
    mutating func backward(_ dy: Batch, needsInputGradient: Bool, context: inout StepContext) -> Batch?
    /// Bytes currently held for the backward pass.
    var savedBytes: Int { get }
    /// Drops what was kept for the backward pass.
    mutating func releaseSaved()
    /// Bytes the layer would keep for the backward pass for `batch` samples of `input` shape.
    func savedBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int
    /// Largest transient buffer the layer's passes allocate, bytes.
    func workspaceBytes(batch: Int, input: [Int], mode: PrecisionMode, quantization: QuantizationSettings) -> Int
    /// Bytes of the weight-gradient buffer the layer's backward pass holds at once (0 without parameters).
    var gradientBufferBytes: Int { get }
    /// The priced operations of one training step on `batch` samples of `input` shape at the layer's current
    /// bitwidths. The layer records exactly these figures as it runs each pass.
    func cost(batch: Int, input: [Int], needsInputGradient: Bool, settings: CostSettings) -> CostSheet
}

/// What pricing a step depends on besides the layer itself.
public struct CostSettings: Sendable {
    /// The arithmetic of the run.
    public var mode: PrecisionMode
    /// Bitwidths of activations, errors and momentum.
    public var quantization: QuantizationSettings
    /// Momentum coefficient (a momentum buffer is read and written when non-zero).
    public var momentum: Float
    /// Pricing.
    public var profile: DeviceProfile
    /// Whether the layer hands its output on as activation-bit codes (fixed point, every weighted layer but
    /// the last) rather than 32-bit values.
    public var quantizedOutput: Bool
    /// Creates settings.
    public init(
        mode: PrecisionMode, quantization: QuantizationSettings, momentum: Float, profile: DeviceProfile,
        quantizedOutput: Bool = false
    ) {
        self.mode = mode
        self.quantization = quantization
        self.momentum = momentum
        self.profile = profile
        self.quantizedOutput = quantizedOutput
    }
}

extension CostSettings {
    /// Width of the activation codes element-wise layers work on: `nil` (fp32 values) in an fp32 run.
    public var activationCodeBits: Int? { mode.isFixedPoint ? quantization.activationBits : nil }
    /// Width of the error codes element-wise layers work on: `nil` (fp32 values) in an fp32 run.
    public var errorCodeBits: Int? { mode.isFixedPoint ? quantization.errorBits : nil }
}

extension StepContext {
    /// The pricing settings of this run.
    public var costSettings: CostSettings {
        CostSettings(mode: mode, quantization: quantization, momentum: hyper.momentum, profile: meter.profile,
                     quantizedOutput: quantizeOutput)
    }
}

/// `2^(bits-1) - 1`.
@inline(__always) func maxCode(bits: Int) -> Int32 { Int32((1 << (bits - 1)) - 1) }

extension ParametricLayer {
    /// Prices a layer computing `macs` MACs per product with the three products of a weighted layer.
    func weightedLayerCost(
        batch: Int, macs: Int, inputElements: Int, outputElements: Int, needsInputGradient: Bool,
        settings s: CostSettings
    ) -> CostSheet {
        var sheet = CostSheet(profile: s.profile)
        let q = s.quantization
        let paramCount = weights.count + bias.count
        let wBytes = weights.parameterBytes + bias.parameterBytes
        let mBytes = weights.optimizerBytes(momentum: s.momentum) + bias.optimizerBytes(momentum: s.momentum)
        if let wf = weights.format {
            let ab = q.activationBits, eb = q.errorBits
            let aBytes = codeBytes(count: inputElements, bits: ab)
            let eBytes = codeBytes(count: outputElements, bits: eb)
            let dxBytes = codeBytes(count: inputElements, bits: eb)
            sheet.integerMACs(macs, bitsA: ab, bitsB: wf.bits,
                              accumulatorBits: accumulatorBits(maxA: maxCode(bits: ab), maxB: wf.maxCode), pass: .forward)
            // Quantising the input: a range scan and a shift-round-saturate per element.
            sheet.elementwise(2 * inputElements, bits: 32, pass: .forward)
            sheet.traffic(tensorBytes: aBytes, pass: .forward)
            sheet.traffic(tensorBytes: weights.parameterBytes, pass: .forward)
            sheet.elementwise(2 * outputElements, bits: 32, pass: .backwardInput)  // error quantisation
            if needsInputGradient {
                sheet.integerMACs(macs, bitsA: eb, bitsB: wf.bits,
                                  accumulatorBits: accumulatorBits(maxA: maxCode(bits: eb), maxB: wf.maxCode),
                                  pass: .backwardInput)
                sheet.traffic(tensorBytes: eBytes, pass: .backwardInput)
                sheet.traffic(tensorBytes: weights.parameterBytes, pass: .backwardInput)
                // The input error is written once, as error-bit codes: the ReLU and pooling steps below are
                // element-wise routing fused into this product's epilogue, and the receiving layer's error
                // quantisation (priced there) is where the codes are formed.
                sheet.traffic(tensorBytes: dxBytes, pass: .backwardInput)
            }
            sheet.integerMACs(macs, bitsA: ab, bitsB: eb,
                              accumulatorBits: accumulatorBits(maxA: maxCode(bits: ab), maxB: maxCode(bits: eb)),
                              pass: .backwardWeights)
            sheet.traffic(tensorBytes: aBytes, pass: .backwardWeights)
            sheet.traffic(tensorBytes: eBytes, pass: .backwardWeights)
            // Bias add into the 32-bit accumulators, then the output write: activation-bit codes when
            // re-quantised (range scan, shift-round-saturate), else 32-bit values.
            sheet.elementwise(outputElements, bits: 32, pass: .forward)
            if s.quantizedOutput {
                sheet.elementwise(2 * outputElements, bits: 32, pass: .forward)
                sheet.traffic(tensorBytes: codeBytes(count: outputElements, bits: ab), pass: .forward)
            } else {
                sheet.traffic(tensorBytes: outputElements * 4, pass: .forward)
            }
            // Update, per parameter: gradient quantisation, momentum μ·m + g, weight w − lr·m rounded onto the
            // weight grid — two multiplies by a 16-bit constant and four 32-bit adds or shifts.
            let mb = s.momentum != 0 ? q.momentumBits : q.gradientBits
            sheet.elementwiseMultiplies(2 * paramCount, bitsA: mb, bitsB: 16, pass: .update)
            sheet.elementwise(4 * paramCount, bits: 32, pass: .update)
        } else {
            sheet.floatMACs(macs, pass: .forward)
            sheet.traffic(tensorBytes: inputElements * 4, pass: .forward)
            sheet.traffic(tensorBytes: weights.parameterBytes, pass: .forward)
            if needsInputGradient {
                sheet.floatMACs(macs, pass: .backwardInput)
                sheet.traffic(tensorBytes: weights.parameterBytes, pass: .backwardInput)
                sheet.traffic(tensorBytes: inputElements * 4, pass: .backwardInput)
            }
            sheet.floatMACs(macs, pass: .backwardWeights)
            sheet.traffic(tensorBytes: inputElements * 4, pass: .backwardWeights)
            sheet.traffic(tensorBytes: outputElements * 4, pass: .backwardWeights)
            // Bias add, output write, and the update's arithmetic (3 fp32 operations per parameter).
            sheet.scalarOps(outputElements, pass: .forward)
            sheet.traffic(tensorBytes: outputElements * 4, pass: .forward)
            sheet.scalarOps(paramCount * 3, pass: .update)
        }
        // Update traffic: read and write weights and momentum.
        sheet.traffic(tensorBytes: wBytes, pass: .update)
        sheet.traffic(tensorBytes: wBytes, pass: .update)
        sheet.traffic(tensorBytes: mBytes, pass: .update)
        sheet.traffic(tensorBytes: mBytes, pass: .update)
        return sheet
    }
}

/// A layer with weights and a bias whose precision the controller adapts.
public protocol ParametricLayer: Layer {
    /// The weights.
    var weights: ParameterBlock { get set }
    /// The bias.
    var bias: ParameterBlock { get set }
    /// Multiply-accumulates per sample in the forward pass.
    func forwardMACsPerSample(input: [Int]) -> Int
}

extension Layer {
    /// Layers without parameters hold no gradient.
    public var gradientBufferBytes: Int { 0 }
}

extension ParametricLayer {
    /// Bytes of weights and bias.
    public var parameterBytes: Int { weights.parameterBytes + bias.parameterBytes }
}

/// A layer input kept for the backward pass: fp32 values, or fixed-point codes — packed when narrower than a
/// byte, so a 6-bit activation takes six bits of memory.
struct SavedTensor: Sendable {
    enum Storage: Sendable {
        case float([Float])
        case fixed(FixedPointTensor)
        case packed(PackedCodes, format: FixedPointFormat, shape: [Int])
    }
    var storage: Storage

    /// Keeps fp32 values.
    init(float values: [Float]) { storage = .float(values) }

    /// Keeps fixed-point codes, packed when they are narrower than their byte storage.
    init(fixed t: FixedPointTensor) {
        if t.format.bits < 8, case .int8(let codes) = t.storage {
            storage = .packed(PackedCodes(packing: codes, bits: t.format.bits), format: t.format, shape: t.shape)
        } else {
            storage = .fixed(t)
        }
    }

    /// Bytes held.
    var byteCount: Int {
        switch storage {
        case .float(let a): return a.count * 4
        case .fixed(let t): return t.byteCount
        case .packed(let p, _, _): return p.bytes.count
        }
    }

    /// The kept tensor in working form (packed codes unpacked to bytes).
    var unpacked: Storage {
        switch storage {
        case .float, .fixed: return storage
        case .packed(let p, let format, let shape):
            return .fixed(FixedPointTensor(shape: shape, format: format, int8Codes: p.unpackedInt8()))
        }
    }
}

/// Bytes `count` codes of `bits` bits occupy as the engine stores and moves them: packed below 8 bits, a byte
/// each at 8, two bytes each from 9 to 16.
@inline(__always)
func codeBytes(count: Int, bits: Int) -> Int {
    bits < 8 ? PackedCodes.byteCount(count: count, bits: bits) : count * (bits <= 8 ? 1 : 2)
}

/// Bytes per element of a tensor kind with `bits` bits in `mode` in working form (unpacked codes).
@inline(__always)
func elementBytes(_ mode: PrecisionMode, bits: Int) -> Int {
    mode == .fp32 ? 4 : (bits <= 8 ? 1 : 2)
}

/// Bytes of `count` elements of a tensor kind with `bits` bits in `mode`, as stored.
@inline(__always)
func storedBytes(count: Int, _ mode: PrecisionMode, bits: Int) -> Int {
    mode == .fp32 ? count * 4 : codeBytes(count: count, bits: bits)
}

/// Quantises a float buffer with a dynamic power-of-two scale covering its range.
func quantizeDynamic(
    _ values: [Float], shape: [Int], bits: Int, rounding: RoundingMode, random: inout RandomSource
) -> FixedPointTensor {
    let m = values.withUnsafeBufferPointer { Quantizer.maxAbs($0) }
    let f = FixedPointFormat.covering(maxAbs: m, bits: bits)
    return FixedPointTensor(quantizing: values, shape: shape, format: f, rounding: rounding, random: &random)
}

extension FixedPointStorage {
    /// Transposes the codes of a `rows×cols` matrix.
    func transposed(rows: Int, cols: Int) -> FixedPointStorage {
        switch self {
        case .int8(let a):
            var out = [Int8](repeating: 0, count: a.count)
            a.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { d in
                GEMM.transpose(rows: rows, cols: cols, src: s.baseAddress!, dst: d.baseAddress!) } }
            return .int8(out)
        case .int16(let a):
            var out = [Int16](repeating: 0, count: a.count)
            a.withUnsafeBufferPointer { s in out.withUnsafeMutableBufferPointer { d in
                GEMM.transpose(rows: rows, cols: cols, src: s.baseAddress!, dst: d.baseAddress!) } }
            return .int16(out)
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
            GEMM.integerNT(m: m, n: n, k: k, a: a + aOffset, lda: lda, maxA: maxA, b: b + bOffset, ldb: ldb, maxB: maxB,
                           c: c, ldc: ldc, alpha: alpha, accumulate: accumulate)
        } else {
            GEMM.integer(m: m, n: n, k: k, a: a + aOffset, lda: lda, maxA: maxA, b: b + bOffset, ldb: ldb, maxB: maxB,
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
    withCodePointers(a, b, IntegerGEMMCall(
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
    withCodePointers(a, b, IntegerGEMMCall(
        transposedB: true, m: m, n: n, k: k, aOffset: aOffset, lda: lda, maxA: maxA, bOffset: bOffset, ldb: ldb,
        maxB: maxB, c: c, ldc: ldc, alpha: alpha, accumulate: accumulate))
}

/// Accumulator width the integer kernel uses for these operand bounds (32, or 64 where 32 would overflow).
func accumulatorBits(maxA: Int32, maxB: Int32) -> Int {
    GEMM.int32Suffices(maxA: maxA, maxB: maxB) ? 32 : 64
}

/// Rounds `values` in place onto the activation grid (dynamic scale, nearest): what an integer pipeline hands
/// to the next layer. Values stay floats in memory but are exactly representable as codes.
func requantizeOutput(_ values: inout [Float], bits: Int) {
    let m = values.withUnsafeBufferPointer { Quantizer.maxAbs($0) }
    let f = FixedPointFormat.covering(maxAbs: m, bits: bits)
    var unused = RandomSource(seed: 0)
    values.withUnsafeMutableBufferPointer { v in
        ParameterBlock.quantizeInPlace(v, inverseStep: f.inverseStep, step: f.step, maxCode: Float(f.maxCode),
                                       stochastic: false, random: &unused)
    }
}

/// `2^e` as a `Float`.
@inline(__always) func pow2(_ e: Int) -> Float { Float(sign: .plus, exponent: e, significand: 1) }
