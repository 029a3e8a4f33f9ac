import APTCore
import Testing

@testable import APTProtocol

/// Binary32 tensors (protocol 2.1, `bits` = 32): what a float32 node receives and sends.
@Suite("Binary32 tensors")
struct Float32TensorTests {
    func encoded(_ t: QuantizedTensor) -> [UInt8] {
        var w = ByteWriter()
        t.encode(into: &w)
        return w.bytes
    }

    func decode(_ bytes: [UInt8]) throws(WireError) -> QuantizedTensor {
        var r = ByteReader(bytes)
        return try QuantizedTensor.decode(from: &r, maxElements: 1 << 20)
    }

    @Test("dense and top-k binary32 tensors round-trip bit-exactly and are 4 bytes a value")
    func roundTrip() throws {
        var random = RandomSource(seed: 9)
        let x = (0..<1000).map { _ in Float(random.nextGaussian()) * 0.01 }
        let dense = QuantizedTensor.float32(x, layer: 2)
        #expect(dense.isFloat32 && dense.indices == nil)
        #expect(encoded(dense).count == 12 + 4 * x.count)
        let back = try decode(encoded(dense))
        #expect(back == dense)
        #expect(back.dequantized().map(\.bitPattern) == x.map(\.bitPattern))
        // Top-k keeps the largest magnitudes with their exact values; the rest are zero.
        let sparse = QuantizedTensor.float32(x, layer: 2, topK: 100)
        let sparseBack = try decode(encoded(sparse))
        #expect(sparseBack == sparse && sparseBack.indices?.count == 100)
        let kept = sparseBack.dequantized()
        let threshold = x.map(abs).sorted(by: >)[99]
        for (i, v) in kept.enumerated() {
            #expect(v == (abs(x[i]) >= threshold ? x[i] : 0), "element \(i)")
        }
    }

    @Test("a binary32 delta folds into a sum as weight × value, and its stored values read back")
    func accumulate() {
        let t = QuantizedTensor(layer: 0, count: 5, float32: [0.5, 0, 0.25], indices: [0, 2, 4])
        var sum: [Float] = [1, 1, 1, 1, 1]
        sum.withUnsafeMutableBufferPointer { t.accumulate(into: $0, weight: 2) }
        #expect(sum == [2, 1, 1, 1, 1.5])
        #expect((0..<3).map { t.storedValue(at: $0) } == [0.5, 0, 0.25])
    }

    @Test("a NaN or infinite value is refused, naming its index; so is a power-of-two scale at 32 bits")
    func refused() throws {
        var bytes = encoded(QuantizedTensor.float32([1, 2, 3], layer: 0))
        // Value 1 (bytes 16...19 after the 12-byte header) becomes a quiet NaN.
        bytes.replaceSubrange(16..<20, with: [0x00, 0x00, 0xC0, 0x7F])
        #expect(throws: WireError.invalidValue(field: "tensor.values", reason: "value 1 is not a finite number")) {
            try decode(bytes)
        }
        var pow2 = encoded(QuantizedTensor.float32([1], layer: 0))
        pow2[7] = 1  // flags: power-of-two scale
        #expect(throws: WireError.self) { try decode(pow2) }
        var wide = encoded(QuantizedTensor.float32([1], layer: 0))
        wide[6] = 17  // neither 1...16 nor 32
        #expect(throws: WireError.invalidValue(field: "tensor.bits", reason: "17 is neither in 1...16 nor 32")) {
            try decode(wide)
        }
    }

    @Test("a policy may ask for binary32 deltas (uplinkBits 32), not for 17-bit ones")
    func policyUplink() throws {
        var p = Policy(layerBits: [.init(min: 16, max: 16)], uplinkBits: 32)
        let frame = Frame.encode(.policy(p))
        #expect(try Frame.decode(frame) == .policy(p))
        p.uplinkBits = 17
        #expect(throws: WireError.invalidValue(field: "policy.uplinkBits", reason: "17 is neither in 1...16 nor 32")) {
            try Frame.decode(Frame.encode(.policy(p)))
        }
    }
}
