import APTCore
import APTProtocol
import Testing

@testable import APTNode

/// The wire format is the training format: a model crosses as codes and is trained from as codes.
@Suite("Wire tensors")
struct WireTensorTests {
    @Test(
        "a fixed-point tensor goes to the wire and back code for code, through the codec",
        arguments: [2, 5, 8, 12, 16])
    func roundTrip(bits: Int) throws {
        var random = RandomSource(seed: UInt64(bits))
        let values = (0..<100).map { _ in random.nextUnitFloat() - 0.5 }
        let t = FixedPointTensor(
            quantizing: values, shape: [100], format: .covering(maxAbs: 0.5, bits: bits), rounding: .nearest,
            random: &random)
        let wire = try WireTensors.wire(t, layer: 3)
        #expect(wire.layer == 3 && wire.bits == bits)
        // Through a frame, as a TASK carries it.
        var w = ByteWriter()
        wire.encode(into: &w)
        var r = ByteReader(w.bytes)
        let decoded = try QuantizedTensor.decode(from: &r, maxElements: 1000)
        let back = try WireTensors.fixedPoint(decoded, index: 0)
        #expect(back.format == t.format)
        #expect(back.storage == t.storage)
        #expect(back.dequantized() == t.dequantized())
    }

    @Test("a session loads a network's codes from the wire exactly")
    func sessionLoads() throws {
        let q = TrainingConfiguration.defaultQuantization(precision: .apt, tradeoff: 0.5)
        let source = try Network(spec: .mlp, mode: .apt, quantization: q, seed: 1)
        let wire: [QuantizedTensor] = try source.parameterSnapshot.enumerated().map { i, v in
            guard case .fixed(let t) = v else { throw WireTensors.Mismatch(index: i, reason: "float") }
            return try WireTensors.wire(t, layer: UInt16(i))
        }
        let tensors = try wire.enumerated().map { i, t in try WireTensors.fixedPoint(t, index: i) }
        let data = Dataset(images: [UInt8](repeating: 7, count: 2 * 784), labels: [1, 2], rows: 28, cols: 28)
        var session = try TrainingSession(
            configuration: TrainingConfiguration(model: .mlp, precision: .apt), data: data)
        try session.loadParameters(codes: tensors)
        #expect(session.parameterSnapshot == source.parameterSnapshot)
    }

    @Test("sparse and float-scaled tensors are refused, naming the tensor")
    func refusals() throws {
        var random = RandomSource(seed: 1)
        let sparse = QuantizedTensor.quantize([1, 0, 0, 2], layer: 0, bits: 8, topK: 2, random: &random)
        #expect(throws: WireTensors.Mismatch(index: 4, reason: "is sparse; a model is sent dense")) {
            try WireTensors.fixedPoint(sparse, index: 4)
        }
        let float = QuantizedTensor.quantize([1, 0, 0, 2], layer: 0, bits: 8, random: &random)
        #expect(throws: WireTensors.Mismatch.self) { try WireTensors.fixedPoint(float, index: 0) }
    }
}
