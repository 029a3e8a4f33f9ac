/// Bytes `count` codes of `bits` bits occupy as the engine stores and moves them: packed below 8 bits, a byte
/// each at 8, two bytes each from 9 to 16.
@inline(__always)
func codeBytes(count: Int, bits: Int) -> Int {
    bits < 8 ? PackedCodes.byteCount(count: count, bits: bits) : count * (bits <= 8 ? 1 : 2)
}

/// Quantises a float buffer with a dynamic power-of-two scale covering its range.
func quantizeDynamic(
    _ values: [Float], shape: [Int], bits: Int, rounding: RoundingMode, random: inout RandomSource
) -> FixedPointTensor {
    let m = values.withUnsafeBufferPointer { Quantizer.maxAbs($0) }
    let f = FixedPointFormat.covering(maxAbs: m, bits: bits)
    return FixedPointTensor(quantizing: values, shape: shape, format: f, rounding: rounding, random: &random)
}

/// Rounds `values` in place onto the activation grid (dynamic scale, nearest): what an integer pipeline hands
/// to the next layer. Values stay floats in memory but are exactly representable as codes.
func requantizeOutput(_ values: inout [Float], bits: Int) {
    let m = values.withUnsafeBufferPointer { Quantizer.maxAbs($0) }
    let f = FixedPointFormat.covering(maxAbs: m, bits: bits)
    var unused = RandomSource(seed: 0)
    values.withUnsafeMutableBufferPointer { v in
        ParameterBlock.quantizeInPlace(
            v, inverseStep: f.inverseStep, step: f.step, maxCode: Float(f.maxCode),
            stochastic: false, random: &unused)
    }
}

/// `2^e` as a `Float`.
@inline(__always) func pow2(_ e: Int) -> Float { Float(sign: .plus, exponent: e, significand: 1) }
