/// What the last updates of a parameter block did, measured in steps of its quantisation grid.
///
/// `meanAbsUpdateSteps` is the APT papers' Gavg: the average magnitude of the weight update relative to the
/// layer's quantisation step. Well below 1/2 with round-to-nearest, updates underflow and are lost.
public struct UpdateStatistics: Sendable, Codable, Equatable {
    /// Σ |update| / step over all elements and steps since the last reset.
    public var sumAbsSteps: Double = 0
    /// Elements updated since the last reset (counting each step).
    public var elements: Int = 0
    /// Non-zero updates that rounded to zero.
    public var underflows: Int = 0
    /// Updates that hit the weight format's range.
    public var saturations: Int = 0

    /// Creates empty statistics.
    public init() {}

    /// Gavg: mean |update| in steps, 0 when nothing was updated.
    public var meanAbsUpdateSteps: Double { elements == 0 ? 0 : sumAbsSteps / Double(elements) }
    /// Fraction of updates that underflowed.
    public var underflowRate: Double { elements == 0 ? 0 : Double(underflows) / Double(elements) }
    /// Fraction of updates that saturated.
    public var saturationRate: Double { elements == 0 ? 0 : Double(saturations) / Double(elements) }
}

/// Optimiser hyper-parameters for one step.
public struct UpdateHyperparameters: Sendable, Equatable {
    /// SGD learning rate.
    public var learningRate: Float
    /// Momentum coefficient (0 disables the momentum buffer).
    public var momentum: Float
    /// Creates hyper-parameters.
    public init(learningRate: Float, momentum: Float) {
        self.learningRate = learningRate
        self.momentum = momentum
    }
}

/// A layer's trainable tensor and its momentum, stored once: float in the fp32 baseline, fixed-point codes
/// otherwise. Gradients are applied in place, slice by slice, so no full gradient buffer is kept.
public struct ParameterBlock: Sendable {
    /// The stored values: float or fixed point.
    public enum Values: Sendable, Equatable {
        /// fp32 values.
        case float([Float])
        /// Fixed-point codes and their format.
        case fixed(FixedPointTensor)

        /// Bytes held.
        public var byteCount: Int {
            switch self {
            case .float(let a): return a.count * 4
            case .fixed(let t): return t.byteCount
            }
        }

        /// The real values.
        public func dequantized() -> [Float] {
            switch self {
            case .float(let a): return a
            case .fixed(let t): return t.dequantized()
            }
        }
    }

    /// Logical shape.
    public let shape: [Int]
    /// The parameters.
    public internal(set) var values: Values
    /// The momentum buffer, created on the first update with momentum.
    public internal(set) var momentum: Values?
    /// Update statistics since the controller last looked.
    public internal(set) var statistics = UpdateStatistics()
    /// Bits of the momentum buffer (fixed point only).
    public let momentumBits: Int
    /// Bits of the quantised gradient (fixed point only).
    public let gradientBits: Int
    /// Rounding of gradient and momentum.
    public let gradientRounding: RoundingMode
    /// Rounding of the weight update.
    public let updateRounding: RoundingMode

    // Momentum format tracking within a step.
    private var momentumObservedMax: Float = 0

    /// Element count.
    public var count: Int { shape.reduce(1, *) }

    /// A float block.
    public init(shape: [Int], floatValues: [Float]) {
        precondition(shape.reduce(1, *) == floatValues.count, "shape \(shape) does not match \(floatValues.count)")
        self.shape = shape
        self.values = .float(floatValues)
        self.momentumBits = 32
        self.gradientBits = 32
        self.gradientRounding = .nearest
        self.updateRounding = .nearest
    }

    /// A fixed-point block quantised from `initial` at `bits` bits with a range covering it.
    public init(
        shape: [Int], quantizing initial: [Float], bits: Int, settings: QuantizationSettings,
        random: inout RandomSource
    ) {
        let maxAbs = initial.withUnsafeBufferPointer { Quantizer.maxAbs($0) }
        let format = FixedPointFormat.covering(maxAbs: maxAbs, bits: bits)
        self.shape = shape
        self.values = .fixed(
            FixedPointTensor(quantizing: initial, shape: shape, format: format, rounding: .nearest, random: &random))
        self.momentumBits = settings.momentumBits
        self.gradientBits = settings.gradientBits
        self.gradientRounding = settings.gradientRounding
        self.updateRounding = settings.updateRounding
    }

    /// A fixed-point block holding `codes` as they are.
    init(codes: FixedPointTensor, settings: QuantizationSettings) {
        self.shape = codes.shape
        self.values = .fixed(codes)
        self.momentumBits = settings.momentumBits
        self.gradientBits = settings.gradientBits
        self.gradientRounding = settings.gradientRounding
        self.updateRounding = settings.updateRounding
    }

    /// The weight format (nil for float blocks).
    public var format: FixedPointFormat? {
        if case .fixed(let t) = values { return t.format }
        return nil
    }

    /// The largest code magnitude (0 for fp32).
    public var maxAbsCode: Int32 {
        if case .fixed(let t) = values { return t.maxAbsCode }
        return 0
    }

    /// Bytes of the parameters.
    public var parameterBytes: Int { values.byteCount }
    /// Bytes of the optimiser state once it exists (momentum of the same element count).
    public func optimizerBytes(momentum mu: Float) -> Int {
        guard mu != 0 else { return 0 }
        switch values {
        case .float: return count * 4
        case .fixed: return count * (momentumBits <= 8 ? 1 : 2)
        }
    }

    /// Resets the update statistics (the controller calls this after each evaluation).
    public mutating func resetStatistics() { statistics = UpdateStatistics() }

    /// Moves the parameters to `format`, exactly when the step gets finer, rounding to nearest when coarser.
    public mutating func requantize(to format: FixedPointFormat, random: inout RandomSource) {
        guard case .fixed(var t) = values else { return }
        values = .float([])
        t.requantize(to: format, rounding: .nearest, random: &random)
        values = .fixed(t)
    }

    /// Applies the (mean over the batch) gradient `g` of elements `offset ..< offset + g.count`: quantises it
    /// (fixed point), folds it into momentum, and adds `-lr · v` to the stored values with the update rounding.
    /// `g` is overwritten with the quantised gradient.
    public mutating func applyGradient(
        _ g: UnsafeMutableBufferPointer<Float>, offset: Int, hyper: UpdateHyperparameters,
        random: inout RandomSource
    ) {
        precondition(offset >= 0 && offset + g.count <= count, "gradient slice out of range")
        let n = g.count
        guard n > 0 else { return }
        let lr = hyper.learningRate
        let mu = hyper.momentum
        switch values {
        case .float(var w):
            values = .float([])
            var vArr: [Float]
            if mu != 0 {
                if case .float(let m)? = momentum { vArr = m } else { vArr = [Float](repeating: 0, count: count) }
                momentum = nil
            } else {
                vArr = []
            }
            w.withUnsafeMutableBufferPointer { wp in
                vArr.withUnsafeMutableBufferPointer { vp in
                    for i in 0..<n {
                        var d = g[i]
                        if mu != 0 {
                            d = mu * vp[offset + i] + d
                            vp[offset + i] = d
                        }
                        wp[offset + i] -= lr * d
                    }
                }
            }
            values = .float(w)
            if mu != 0 { momentum = .float(vArr) }

        case .fixed(var t):
            values = .float([])
            // 1. Quantise the gradient slice with its own dynamic scale.
            let gMax = Quantizer.maxAbs(UnsafeBufferPointer(g))
            let gFormat = FixedPointFormat.covering(maxAbs: gMax, bits: gradientBits)
            let gStep = gFormat.step
            let gInv = gFormat.inverseStep
            let gm = Float(gFormat.maxCode)
            ParameterBlock.quantizeInPlace(
                g, inverseStep: gInv, step: gStep, maxCode: gm,
                stochastic: gradientRounding == .stochastic, random: &random)
            // 2. Momentum buffer (fixed point, its scale adapted between steps).
            var mom: FixedPointTensor? = nil
            if mu != 0 {
                if case .fixed(let m)? = momentum {
                    mom = m
                } else {
                    let f = FixedPointFormat.covering(
                        maxAbs: max(gMax, Float.leastNormalMagnitude) * 4,
                        bits: momentumBits)
                    mom = FixedPointTensor(zerosWithShape: shape, format: f)
                }
                momentum = nil
            }
            let wFormat = t.format
            var stats = statistics
            var observed = momentumObservedMax
            let rounding = updateRounding
            let mRounding = gradientRounding
            func run<
                W: FixedWidthInteger & SignedInteger & SIMDScalar, M: FixedWidthInteger & SignedInteger & SIMDScalar
            >(
                _ w: UnsafeMutablePointer<W>, _ v: UnsafeMutablePointer<M>?, _ mFormat: FixedPointFormat?
            ) {
                ParameterBlock.fixedUpdate(
                    w: w + offset, wFormat: wFormat, v: v.map { $0 + offset }, vFormat: mFormat, g: g.baseAddress!,
                    n: n, lr: lr, mu: mu, rounding: rounding, momentumRounding: mRounding, random: &random,
                    stats: &stats, momentumMax: &observed)
            }
            var ws = t.storage
            t.storage = .int8([])
            var ms = mom?.storage
            mom?.storage = .int8([])
            let mFormat = mom?.format
            switch (ws, ms) {
            case (.int8(var w), .some(.int8(var m))):
                ws = .int8([])
                ms = nil
                w.withUnsafeMutableBufferPointer { wp in
                    m.withUnsafeMutableBufferPointer { mp in run(wp.baseAddress!, mp.baseAddress!, mFormat) }
                }
                ws = .int8(w)
                ms = .int8(m)
            case (.int8(var w), .some(.int16(var m))):
                ws = .int8([])
                ms = nil
                w.withUnsafeMutableBufferPointer { wp in
                    m.withUnsafeMutableBufferPointer { mp in run(wp.baseAddress!, mp.baseAddress!, mFormat) }
                }
                ws = .int8(w)
                ms = .int16(m)
            case (.int16(var w), .some(.int8(var m))):
                ws = .int8([])
                ms = nil
                w.withUnsafeMutableBufferPointer { wp in
                    m.withUnsafeMutableBufferPointer { mp in run(wp.baseAddress!, mp.baseAddress!, mFormat) }
                }
                ws = .int16(w)
                ms = .int8(m)
            case (.int16(var w), .some(.int16(var m))):
                ws = .int8([])
                ms = nil
                w.withUnsafeMutableBufferPointer { wp in
                    m.withUnsafeMutableBufferPointer { mp in run(wp.baseAddress!, mp.baseAddress!, mFormat) }
                }
                ws = .int16(w)
                ms = .int16(m)
            case (.int8(var w), .none):
                ws = .int8([])
                w.withUnsafeMutableBufferPointer { wp in run(wp.baseAddress!, UnsafeMutablePointer<Int8>?.none, nil) }
                ws = .int8(w)
            case (.int16(var w), .none):
                ws = .int8([])
                w.withUnsafeMutableBufferPointer { wp in run(wp.baseAddress!, UnsafeMutablePointer<Int8>?.none, nil) }
                ws = .int16(w)
            }
            t.storage = ws
            values = .fixed(t)
            if var m = mom, let ms {
                m.storage = ms
                momentum = .fixed(m)
            }
            statistics = stats
            momentumObservedMax = observed
        }
    }

    /// Called once per training step after every slice was applied: adapts the momentum buffer's scale to the
    /// largest value it had to hold (jumping coarser at once when it saturated, one bit finer at a time).
    public mutating func endStep(random: inout RandomSource) {
        defer { momentumObservedMax = 0 }
        guard case .fixed(var m)? = momentum else { return }
        let needed = FixedPointFormat.covering(maxAbs: momentumObservedMax, bits: momentumBits)
        var target = m.format
        if needed.fractionBits < m.format.fractionBits {
            target = needed
        } else if needed.fractionBits > m.format.fractionBits + 1 {
            target = FixedPointFormat(bits: momentumBits, fractionBits: m.format.fractionBits + 1)
        }
        if target != m.format {
            momentum = nil
            m.requantize(to: target, rounding: .nearest, random: &random)
            momentum = .fixed(m)
        }
    }

    /// Rounds `g` onto the grid `step` (saturating at `maxCode` steps) in place.
    static func quantizeInPlace(
        _ g: UnsafeMutableBufferPointer<Float>, inverseStep: Float, step: Float, maxCode: Float, stochastic: Bool,
        random: inout RandomSource
    ) {
        let n = g.count
        let p = g.baseAddress!
        var i = 0
        while i + 16 <= n {
            let x = clamp16(load16(p + i) * inverseStep, maxCode)
            let q: SIMD16<Int32>
            if stochastic {
                q = clampInts16(floorToInt16(x + random.nextUnitFloats16()), Int32(maxCode))
            } else {
                q = roundToInt16(x)
            }
            store16(floats16(q) * step, p + i)
            i += 16
        }
        while i < n {
            var x = p[i] * inverseStep
            _ = clampCode(&x, maxCode)
            if stochastic {
                x += random.nextUnitFloat()
                _ = clampCode(&x, maxCode)
                p[i] = floorSmall(x) * step
            } else {
                p[i] = roundHalfEven(x) * step
            }
            i += 1
        }
    }

    /// The in-place update of `n` codes: momentum (optional), learning rate in steps, rounding, saturation, and
    /// the statistics the controller reads. Sixteen lanes at a time, scalar tail.
    @inline(__always)
    static func fixedUpdate<
        W: FixedWidthInteger & SignedInteger & SIMDScalar, M: FixedWidthInteger & SignedInteger & SIMDScalar
    >(
        w: UnsafeMutablePointer<W>, wFormat: FixedPointFormat, v: UnsafeMutablePointer<M>?,
        vFormat: FixedPointFormat?, g: UnsafePointer<Float>, n: Int, lr: Float, mu: Float,
        rounding: RoundingMode, momentumRounding: RoundingMode, random: inout RandomSource,
        stats: inout UpdateStatistics, momentumMax: inout Float
    ) {
        let wMax = Float(wFormat.maxCode)
        let lrSteps = lr * wFormat.inverseStep  // learning rate expressed in weight steps
        let limit = 2 * wMax + 1  // no single update moves a code further than across the whole range
        let stochastic = rounding == .stochastic
        let mStochastic = momentumRounding == .stochastic
        let vStep = vFormat?.step ?? 0
        let vInv = vFormat?.inverseStep ?? 0
        let vm = Float(vFormat?.maxCode ?? 0)
        var sumAbs = SIMD16<Float>()
        var under = SIMD16<Int32>()
        var sat = SIMD16<Int32>()
        var vMaxSeen = SIMD16<Float>(repeating: momentumMax)
        let wMaxI = wFormat.maxCode
        let vmI = Int32(vm)
        var i = 0
        while i + 16 <= n {
            var d = load16(g + i)
            if let v {
                d = mu * loadCodes16(v + i) * vStep + d
                vMaxSeen = maxNonNegative16(vMaxSeen, abs16(d))
                let vr = clamp16(d * vInv, vm)
                let vq = mStochastic ? clampInts16(floorToInt16(vr + random.nextUnitFloats16()), vmI) : roundToInt16(vr)
                storeCodes16(vq, v + i)
                d = floats16(vq) * vStep
            }
            let u = d * lrSteps
            sumAbs += abs16(u)
            let neg = clamp16(-u, limit)
            let r: SIMD16<Int32> = stochastic ? floorToInt16(neg + random.nextUnitFloats16()) : roundToInt16(neg)
            // Underflow: the update was non-zero but rounded to zero.
            under &-= ~nonZeroMask16(r) & nonZeroMask16(bits16(u) & 0x7FFF_FFFF)
            let q = loadInts16(w + i) &+ r
            let magnitude = (q ^ (q &>> 31)) &- (q &>> 31)
            sat &-= negativeMask16(SIMD16<Int32>(repeating: wMaxI) &- magnitude)
            storeCodes16(clampInts16(q, wMaxI), w + i)
            i += 16
        }
        var sumTail: Float = 0
        var underTail = 0
        var satTail = 0
        var vMaxTail = vMaxSeen.max()
        while i < n {
            var d = g[i]
            if let v {
                d = mu * Float(v[i]) * vStep + d
                vMaxTail = max(vMaxTail, abs(d))
                var vr = d * vInv
                _ = clampCode(&vr, vm)
                if mStochastic {
                    vr += random.nextUnitFloat()
                    _ = clampCode(&vr, vm)
                    vr = floorSmall(vr)
                } else {
                    vr = roundHalfEven(vr)
                }
                v[i] = M(truncatingIfNeeded: Int32(vr))
                d = vr * vStep
            }
            let u = d * lrSteps
            sumTail += abs(u)
            var r = -u
            _ = clampCode(&r, limit)
            r = stochastic ? floorSmall(r + random.nextUnitFloat()) : roundHalfEven(r)
            if r == 0 && u != 0 { underTail += 1 }
            var q = Float(w[i]) + r
            if q > wMax {
                q = wMax
                satTail += 1
            } else if q < -wMax {
                q = -wMax
                satTail += 1
            }
            w[i] = W(truncatingIfNeeded: Int32(q))
            i += 1
        }
        momentumMax = vMaxTail
        stats.sumAbsSteps += Double(sumAbs.sum() + sumTail)
        stats.elements += n
        stats.underflows += Int(under.wrappedSum()) + underTail
        stats.saturations += Int(sat.wrappedSum()) + satTail
    }
}
