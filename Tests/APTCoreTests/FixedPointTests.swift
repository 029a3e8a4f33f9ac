import Testing

@testable import APTCore

@Suite("Fixed-point format and tensors")
struct FixedPointTests {
    @Test("quantise → dequantise is within half a step for every bitwidth", arguments: 2...16)
    func roundTrip(bits: Int) {
        var random = RandomSource(seed: UInt64(bits))
        let values = (0..<500).map { _ in (random.nextUnitFloat() * 2 - 1) * 3 }
        let f = FixedPointFormat.covering(maxAbs: 3, bits: bits)
        let t = FixedPointTensor(quantizing: values, shape: [500], format: f, rounding: .nearest, random: &random)
        let back = t.dequantized()
        for (x, y) in zip(values, back) {
            #expect(abs(x - y) <= f.step / 2 + 1e-7, "bits \(bits): \(x) → \(y), step \(f.step)")
        }
        #expect(t.byteCount == 500 * (bits <= 8 ? 1 : 2), "storage shrinks with the format")
    }

    @Test("values beyond the range saturate, never wrap")
    func saturation() {
        var random = RandomSource(seed: 1)
        let f = FixedPointFormat(bits: 8, fractionBits: 6)  // range ±127/64
        let t = FixedPointTensor(
            quantizing: [3, -3, 1e9, -1e9, 0.5], shape: [5], format: f, rounding: .nearest,
            random: &random)
        #expect(t.storage[0] == 127)
        #expect(t.storage[1] == -127)
        #expect(t.storage[2] == 127)
        #expect(t.storage[3] == -127)
        #expect(t.storage[4] == 32)
        var random2 = RandomSource(seed: 2)
        let (code, clipped) = f.quantize(.nan, rounding: .nearest, random: &random2)
        #expect(code == 0 && clipped, "NaN is clipped to zero and reported")
    }

    @Test("covering picks the finest step that does not clip")
    func covering() {
        for bits in 2...16 {
            for m: Float in [0.001, 0.3, 1, 1.5, 100] {
                let f = FixedPointFormat.covering(maxAbs: m, bits: bits)
                #expect(m <= f.maxValue, "bits \(bits) max \(m): \(f) clips")
                let finer = FixedPointFormat(bits: bits, fractionBits: f.fractionBits + 1)
                #expect(m > finer.maxValue, "bits \(bits) max \(m): \(f) is not the finest")
            }
        }
    }

    @Test("stochastic rounding is unbiased")
    func stochasticUnbiased() {
        var random = RandomSource(seed: 42)
        let f = FixedPointFormat(bits: 8, fractionBits: 0)
        for x: Float in [0.1, 0.5, 0.73, -0.3, 2.25] {
            var sum = 0.0
            let n = 200_000
            for _ in 0..<n { sum += Double(f.quantize(x, rounding: .stochastic, random: &random).code) }
            let mean = sum / Double(n)
            // Standard error ≤ 0.5/sqrt(n) ≈ 0.0011; allow 5 standard errors.
            #expect(abs(mean - Double(x)) < 0.006, "E[round(\(x))] = \(mean)")
            let nearest = f.quantize(x, rounding: .nearest, random: &random).code
            if x == 0.1 { #expect(nearest == 0, "nearest rounding loses a 0.1-step value: the bias SR removes") }
        }
    }

    @Test("requantise: finer is exact, coarser rounds, narrower saturates")
    func requantize() {
        var random = RandomSource(seed: 3)
        var t = FixedPointTensor(
            shape: [4], format: FixedPointFormat(bits: 8, fractionBits: 4), codes: [5, -7, 100, 3])
        let before = t.dequantized()
        t.requantize(to: FixedPointFormat(bits: 10, fractionBits: 6), rounding: .nearest, random: &random)
        #expect(t.dequantized() == before)
        t.requantize(to: FixedPointFormat(bits: 8, fractionBits: 3), rounding: .nearest, random: &random)
        #expect(t.storage[0] == 2 || t.storage[0] == 3)  // 5/16 = 2.5/8 → ties to even: 2
        #expect(t.storage[0] == 2)
        #expect(t.storage[2] == 50)
        let clipped = t.requantize(to: FixedPointFormat(bits: 4, fractionBits: 3), rounding: .nearest, random: &random)
        #expect(clipped >= 1)
        #expect(t.storage[2] == 7)
        if case .int8 = t.storage {} else { Issue.record("4-bit tensor not stored as Int8") }
    }

    @Test("error codes with a scale per image: each image's format covers its own largest error after the mask")
    func imageErrorCodes() {
        let imageSize = 37
        var random = RandomSource(seed: 4)
        // Images whose errors differ in size by powers of two, so a batch-wide scale would flatten the small ones.
        let values = (0..<(5 * imageSize)).map { i in
            (random.nextUnitFloat() * 2 - 1) / Float(1 << (3 * (i / imageSize)))
        }
        let mask = (0..<((values.count + 63) / 64)).map { _ in random.next() }
        var none: UnderflowCounts? = nil
        for bits in [6, 8, 12] {
            var whole = RandomSource(seed: 9)
            let codes = ImageErrorCodes(
                quantizing: values, imageSize: imageSize, bits: bits, mask: mask, rounding: .stochastic,
                random: &whole, underflow: &none)
            // Made an image at a time from the same stream, the codes are the same.
            var byImage = ImageErrorCodes(count: 5, imageSize: imageSize, bits: bits)
            var stream = RandomSource(seed: 9)
            var copy = values
            copy.withUnsafeMutableBufferPointer { v in
                for n in 0..<5 {
                    byImage.make(
                        image: n,
                        from: UnsafeMutableBufferPointer(rebasing: v[(n * imageSize)..<((n + 1) * imageSize)]),
                        mask: mask, rounding: .stochastic, random: &stream, underflow: &none)
                }
            }
            #expect(byImage.storage == codes.storage && byImage.formats == codes.formats)
            for n in 0..<5 {
                let kept = (0..<imageSize).map { i -> Float in
                    let bit = n * imageSize + i
                    return (mask[bit >> 6] >> UInt64(bit & 63)) & 1 == 1 ? values[bit] : 0
                }
                let largest = kept.map(abs).max() ?? 0
                #expect(codes.formats[n] == FixedPointFormat.covering(maxAbs: largest, bits: bits), "image \(n)")
                for i in 0..<imageSize {
                    let code = codes.storage[n * imageSize + i]
                    if kept[i] == 0 { #expect(code == 0, "image \(n) value \(i) masked") }
                    // Stochastic rounding: within one step of the value.
                    #expect(abs(Float(code) * codes.formats[n].step - kept[i]) <= codes.formats[n].step * 1.0001)
                }
            }
            // Every image has its own scale: the last is 2^12 times finer than the first.
            #expect(codes.formats[4].fractionBits >= codes.formats[0].fractionBits + 10)
        }
    }
}
