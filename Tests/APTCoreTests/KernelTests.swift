import Testing

@testable import APTCore

/// The vectorised element-wise kernels against plain scalar references, over lengths that exercise both the
/// 16-lane body and the tail, every bitwidth, and awkward values (NaN, ±∞, huge, exact ties).
@Suite("Element-wise kernels against scalar references")
struct KernelTests {
    static let lengths = [0, 1, 15, 16, 17, 33, 100]

    func values(_ n: Int, seed: UInt64, scale: Float) -> [Float] {
        var r = RandomSource(seed: seed)
        var v = (0..<n).map { _ in (r.nextUnitFloat() * 2 - 1) * scale }
        let specials: [Float] = [.nan, .infinity, -.infinity, 1e30, -1e30, 0, -0.0, 2.5, -2.5, 0.5]
        for (i, s) in specials.enumerated() where i * 7 < n { v[i * 7] = s }
        return v
    }

    @Test("nearest quantisation equals the scalar rule, clip counts included", arguments: [2, 3, 8, 12, 16])
    func quantizeNearest(bits: Int) {
        for n in Self.lengths {
            let x = values(n, seed: UInt64(n * 31 + bits), scale: 3)
            let f = FixedPointFormat(bits: bits, fractionBits: bits - 3)
            var out = [Int16](repeating: 0, count: n)
            var random = RandomSource(seed: 1)
            let clipped = Quantizer.quantize(x, into: &out, format: f, rounding: .nearest, random: &random)
            var expectedClipped = 0
            for i in 0..<n {
                let (code, c) = f.quantize(x[i], rounding: .nearest, random: &random)
                if c { expectedClipped += 1 }
                #expect(Int32(out[i]) == code, "bits \(bits) n \(n) [\(i)] \(x[i]): \(out[i]) vs \(code)")
            }
            #expect(clipped == expectedClipped, "bits \(bits) n \(n)")
        }
    }

    @Test("ReLU and its mask equal the scalar rule (NaN passes, ±0 and negatives do not)")
    func reluKernel() {
        for n in Self.lengths + [64, 65, 130] {
            let x = values(n, seed: UInt64(n + 7), scale: 2)
            var y = x
            var mask = [UInt64](repeating: 0, count: (n + 63) / 64)
            y.withUnsafeMutableBufferPointer { yp in
                mask.withUnsafeMutableBufferPointer { mp in
                    if n > 0 { ReLU.apply(yp.baseAddress!, count: n, mask: mp.baseAddress!) }
                }
            }
            var back = (0..<n).map { Float($0) + 1 }
            mask.withUnsafeBufferPointer { mp in
                back.withUnsafeMutableBufferPointer { bp in
                    if n > 0 { ReLU.applyMask(mp.baseAddress!, to: bp.baseAddress!, count: n) }
                }
            }
            for i in 0..<n {
                let keep = !(x[i] <= 0)
                #expect(
                    keep ? (y[i].bitPattern == x[i].bitPattern) : (y[i].bitPattern == 0),
                    "n \(n) [\(i)] \(x[i]) → \(y[i])")
                #expect((mask[i >> 6] >> UInt64(i & 63)) & 1 == (keep ? 1 : 0), "mask bit \(i) of \(n)")
                #expect(back[i] == (keep ? Float(i) + 1 : 0), "backward [\(i)] of \(n)")
            }
        }
    }

    @Test("2×2 max pooling picks the first largest of each window (negatives, ±0 and ties included)")
    func maxPoolKernel() {
        var r = RandomSource(seed: 21)
        let (n, c, h, w) = (3, 2, 6, 10)
        // Values from a small set so that ties are common; negatives and both zeros included.
        let choices: [Float] = [-2, -1, -0.0, 0, 0.5, 1, 1.5]
        let x = (0..<(n * c * h * w)).map { _ in choices[Int(r.next() % UInt64(choices.count))] }
        var pool = MaxPool2d(size: 2)
        var ctx = StepContext(
            mode: .fp32, quantization: TrainingConfiguration.defaultQuantization(precision: .fp32, tradeoff: 0.5),
            hyper: UpdateHyperparameters(learningRate: 0.1, momentum: 0), random: RandomSource(seed: 1),
            meter: EnergyMeter(profile: .generic45nm, layers: 1), training: true)
        let y = pool.forward(Batch(values: x, count: n, shape: [c, h, w]), context: &ctx)
        let dy = Batch(values: (0..<y.values.count).map { Float($0 + 1) }, count: n, shape: y.shape)
        let dx = pool.backward(dy, needsInputGradient: true, context: &ctx)?.values ?? []
        var o = 0
        for plane in 0..<(n * c) {
            for oy in 0..<(h / 2) {
                for ox in 0..<(w / 2) {
                    let idx = [0, 1, w, w + 1].map { plane * h * w + 2 * oy * w + 2 * ox + $0 }
                    var best = idx[0]
                    for i in idx.dropFirst() where x[i] > x[best] { best = i }
                    #expect(y.values[o] == x[best], "window \(o): \(idx.map { x[$0] })")
                    for i in idx { #expect(dx[i] == (i == best ? Float(o + 1) : 0), "error routed to \(best)") }
                    o += 1
                }
            }
        }
    }

    @Test("stochastic quantisation stays in range, brackets each value, and is unbiased")
    func quantizeStochastic() {
        var random = RandomSource(seed: 5)
        let f = FixedPointFormat(bits: 6, fractionBits: 4)
        let x = (0..<64).map { Float($0) / 64 * 3.8 - 1.9 }  // within ±31/16, off-grid
        var sums = [Double](repeating: 0, count: x.count)
        let trials = 4000
        for _ in 0..<trials {
            var out = [Int8](repeating: 0, count: x.count)
            Quantizer.quantize(x, into: &out, format: f, rounding: .stochastic, random: &random)
            for i in x.indices {
                let scaled = x[i] * f.inverseStep
                #expect(
                    Float(out[i]) == scaled.rounded(.down) || Float(out[i]) == scaled.rounded(.up)
                        || abs(Float(out[i])) == Float(f.maxCode))
                sums[i] += Double(out[i])
            }
        }
        for i in x.indices {
            let mean = sums[i] / Double(trials) * Double(f.step)
            #expect(abs(mean - Double(x[i])) < 0.02, "E[q(\(x[i]))] = \(mean)")
        }
    }

    /// The update rule written out plainly.
    func referenceUpdate(
        w: inout [Int16], v: inout [Int16], g: [Float], wf: FixedPointFormat, vf: FixedPointFormat,
        lr: Float, mu: Float
    ) -> (sum: Double, under: Int, sat: Int) {
        var sum = 0.0
        var under = 0
        var sat = 0
        for i in w.indices {
            var d = mu * Float(v[i]) * vf.step + g[i]
            var vr = d * vf.inverseStep
            vr = min(max(vr.isNaN ? 0 : vr, -Float(vf.maxCode)), Float(vf.maxCode))
            vr = vr.rounded(.toNearestOrEven)
            v[i] = Int16(vr)
            d = vr * vf.step
            let u = d * lr * wf.inverseStep
            sum += Double(abs(u))
            let r = min(max(-u, -Float(2 * wf.maxCode + 1)), Float(2 * wf.maxCode + 1)).rounded(.toNearestOrEven)
            if r == 0 && u != 0 { under += 1 }
            var q = Int32(w[i]) + Int32(r)
            if abs(q) > wf.maxCode {
                sat += 1
                q = q > 0 ? wf.maxCode : -wf.maxCode
            }
            w[i] = Int16(q)
        }
        return (sum, under, sat)
    }

    @Test("the vectorised update equals the reference rule", arguments: [9, 12, 16])
    func update(bits: Int) {
        for n in Self.lengths {
            var random = RandomSource(seed: UInt64(n + bits))
            let wf = FixedPointFormat(bits: bits, fractionBits: bits + 2)
            let vf = FixedPointFormat(bits: 16, fractionBits: 20)
            var w = (0..<n).map { i in
                Int16(truncatingIfNeeded: (i % 5 == 0) ? wf.maxCode - 1 : Int32(random.next() % 200) - 100)
            }
            var v = (0..<n).map { _ in Int16(truncatingIfNeeded: Int32(random.next() % 2000) - 1000) }
            var g = (0..<n).map { i in (random.nextUnitFloat() - 0.5) * (i % 3 == 0 ? 1e-5 : 0.05) }
            var wRef = w
            var vRef = v
            let ref = referenceUpdate(w: &wRef, v: &vRef, g: g, wf: wf, vf: vf, lr: 0.05, mu: 0.9)
            var stats = UpdateStatistics()
            var vmax: Float = 0
            w.withUnsafeMutableBufferPointer { wp in
                v.withUnsafeMutableBufferPointer { vp in
                    g.withUnsafeMutableBufferPointer { gp in
                        ParameterBlock.fixedUpdate(
                            w: wp.baseAddress!, wFormat: wf, v: vp.baseAddress!, vFormat: vf,
                            g: gp.baseAddress!, n: n, lr: 0.05, mu: 0.9, rounding: .nearest,
                            momentumRounding: .nearest, random: &random, stats: &stats, momentumMax: &vmax)
                    }
                }
            }
            #expect(w == wRef, "bits \(bits) n \(n): weights differ")
            #expect(v == vRef, "bits \(bits) n \(n): momentum differs")
            #expect(stats.underflows == ref.under && stats.saturations == ref.sat, "bits \(bits) n \(n): counts")
            #expect(isApproximatelyEqual(stats.sumAbsSteps, ref.sum, absolute: 1e-3, relative: 1e-4))
            #expect(stats.elements == n)
        }
    }
}

@Suite("Convolution against a direct reference")
struct ConvolutionReferenceTests {
    @Test(
        "im2col + GEMM equals the direct sum over every geometry",
        arguments: [
            (1, 1, 0), (3, 1, 0), (3, 1, 1), (5, 1, 2), (3, 2, 0), (3, 2, 1), (2, 3, 1), (5, 2, 2),
        ])
    func forward(kernel: Int, stride: Int, padding: Int) throws {
        var random = RandomSource(seed: UInt64(kernel * 100 + stride * 10 + padding))
        let q = TrainingConfiguration.defaultQuantization(precision: .fp32, tradeoff: 0.5)
        var conv = Conv2d(
            inChannels: 2, outChannels: 3, kernel: kernel, stride: stride, padding: padding, mode: .fp32,
            quantization: q, random: &random)
        let (c, h, w) = (2, 7, 9)
        let x = (0..<(2 * c * h * w)).map { _ in random.nextUnitFloat() * 2 - 1 }
        var ctx = StepContext(
            mode: .fp32, quantization: q, hyper: UpdateHyperparameters(learningRate: 0, momentum: 0),
            random: random, meter: EnergyMeter(profile: .generic45nm, layers: 1), training: false)
        let y = conv.forward(Batch(values: x, count: 2, shape: [c, h, w]), context: &ctx)
        let wts = conv.weights.values.dequantized()
        let b = conv.bias.values.dequantized()
        let oh = (h + 2 * padding - kernel) / stride + 1
        let ow = (w + 2 * padding - kernel) / stride + 1
        #expect(y.shape == [3, oh, ow])
        for n in 0..<2 {
            for o in 0..<3 {
                for oy in 0..<oh {
                    for ox in 0..<ow {
                        var s = Double(b[o])
                        for ci in 0..<c {
                            for ki in 0..<kernel {
                                for kj in 0..<kernel {
                                    let iy = oy * stride - padding + ki
                                    let ix = ox * stride - padding + kj
                                    guard iy >= 0, iy < h, ix >= 0, ix < w else { continue }
                                    s +=
                                        Double(wts[o * c * kernel * kernel + (ci * kernel + ki) * kernel + kj])
                                        * Double(x[((n * c + ci) * h + iy) * w + ix])
                                }
                            }
                        }
                        let got = y.values[((n * 3 + o) * oh + oy) * ow + ox]
                        #expect(
                            isApproximatelyEqual(Double(got), s, absolute: 1e-5),
                            "k\(kernel) s\(stride) p\(padding) at n\(n) o\(o) (\(oy),\(ox)): \(got) vs \(s)")
                    }
                }
            }
        }
    }
}
