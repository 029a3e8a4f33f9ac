import Testing

@testable import APTCore

@Suite("Parameters as plain values")
struct ParameterStateTests {
    @Test("loading a snapshot's values reproduces the model's outputs", arguments: ["fp32", "apt"])
    func roundTrip(mode: String) throws {
        let m = try PrecisionMode(parsing: mode)
        let q = TrainingConfiguration.defaultQuantization(precision: m, tradeoff: 0.5)
        var a = try Network(spec: .lenet, mode: m, quantization: q, seed: 1)
        var b = try Network(spec: .lenet, mode: m, quantization: q, seed: 2)
        #expect(a.parameterTensorCount == 10)
        #expect(a.parameterTensorSizes.reduce(0, +) == a.parameterCount)
        try b.loadParameters(a.parameterSnapshot.map { $0.dequantized() })
        var random = RandomSource(seed: 3)
        let x = Batch(values: (0..<(2 * 784)).map { _ in random.nextUnitFloat() }, count: 2, shape: [1, 28, 28])
        #expect(a.logits(x).values == b.logits(x).values)
    }

    @Test("loading refuses wrong counts, sizes and non-finite values, and keeps the model")
    func refusals() throws {
        let q = TrainingConfiguration.defaultQuantization(precision: .apt, tradeoff: 0.5)
        var n = try Network(spec: .mlp, mode: .apt, quantization: q, seed: 1)
        let before = n.parameterSnapshot
        var good = before.map { $0.dequantized() }
        #expect(throws: ConfigurationError("expected 6 parameter tensors, got 5")) {
            try n.loadParameters(Array(good.dropLast()))
        }
        good[1] = [1, 2]
        #expect(throws: ConfigurationError("parameter tensor 1 has 2 values, the model needs 256")) {
            try n.loadParameters(good)
        }
        good = before.map { $0.dequantized() }
        good[2][7] = .nan
        #expect(throws: ConfigurationError("parameter tensor 2 holds a NaN or infinite value")) {
            try n.loadParameters(good)
        }
        #expect(n.parameterSnapshot == before, "a refused load changes nothing")
    }

    @Test("a delta taken in the integer domain is the real delta in steps")
    func integerDelta() throws {
        var random = RandomSource(seed: 4)
        let f = FixedPointFormat(bits: 12, fractionBits: 10)
        let x = (0..<50).map { _ in random.nextUnitFloat() - 0.5 }
        let y = x.map { $0 + 0.01 }
        let tx = FixedPointTensor(quantizing: x, shape: [50], format: f, rounding: .nearest, random: &random)
        let ty = FixedPointTensor(quantizing: y, shape: [50], format: f, rounding: .nearest, random: &random)
        let d = try #require(ty.codeDelta(from: tx))
        let real = zip(ty.dequantized(), tx.dequantized()).map { $0 - $1 }
        for i in 0..<50 { #expect(Float(d[i]) * f.step == real[i]) }
        let other = FixedPointTensor(
            shape: [50], format: FixedPointFormat(bits: 12, fractionBits: 9),
            codes: [Int32](repeating: 0, count: 50))
        #expect(ty.codeDelta(from: other) == nil)
    }
}
