import APTCore
import CMalloc
import Foundation
import Testing

@testable import APTProtocol

/// Bytes the C heap holds for the process now (small blocks plus mmapped ones), from glibc's `mallinfo2`.
func heapInUse() -> Int { Int(apt_heap_in_use()) }

/// Decoding never multiplies memory: codes stay packed, limits come from the model served, and an
/// aggregator folds a delta straight into its sum.
@Suite("Bounded decoding", .serialized)
struct BoundedDecodingTests {
    /// The largest UPDATE a node can legally send for `model` with `bits`-bit codes (32: binary32 values): every
    /// tensor sparse with every index listed (one varint byte each, plus the codes), the ledger's bits one per layer.
    static func largestUpdate(_ model: ModelSpec, bits: Int) throws -> Message {
        let counts = try model.parameterCounts()
        var random = RandomSource(seed: 5)
        let m = bits == QuantizedTensor.float32Bits ? 0 : Int(QuantizedTensor.maxCode(bits: bits))
        let tensors = counts.enumerated().map { i, n in
            bits == QuantizedTensor.float32Bits
                ? QuantizedTensor(
                    layer: UInt16(i), count: n, float32: (0..<n).map { _ in Float(random.next() % 1000) / 999 - 0.5 },
                    indices: (0..<n).map { UInt32($0) })
                : QuantizedTensor(
                    layer: UInt16(i), count: n, bits: bits, scale: .float32(0.001), indices: (0..<n).map { UInt32($0) },
                    codes: (0..<n).map { _ in
                        bits == 1
                            ? (random.next() & 1 == 0 ? -1 : 1) : Int32(Int(random.next() % UInt64(2 * m + 1)) - m)
                    })
        }
        return .update(
            Update(
                round: 1, samplesTrained: 1, stepsDone: 1, stepsAsked: 1, delta: tensors,
                ledger: LedgerEntry(
                    energyJ: 1, peakMemoryBytes: 1, bits: [UInt8](repeating: 16, count: counts.count / 2), loss: 1,
                    accuracy: 1, durationS: 1)))
    }

    @Test(
        "the largest legal UPDATE decodes within 4 × its wire size",
        arguments: [("mlp", 16), ("mlp", 1), ("mlp", 32), ("lenet", 16), ("lenet", 3), ("lenet", 32)])
    func largestUpdate(model name: String, bits: Int) throws {
        let model = try #require(ModelSpec.builtIn[name])
        let limits = try DecodeLimits(serving: model)
        let frame = Frame.encode(try Self.largestUpdate(model, bits: bits))
        #expect(frame.count - Frame.headerSize <= limits.maxPayloadBytes, "a legal UPDATE exceeds the model's limit")
        // Other tests running at the same time can only add to a reading of the process's heap: judge the
        // smallest of a few.
        var held = Int.max
        var message = Message.heartbeat(sequence: 0, timestampMs: 0)
        for _ in 0..<3 {
            let before = heapInUse()
            let decoded = try Frame.decode(frame, limits: limits)
            held = min(held, heapInUse() - before)
            message = decoded
        }
        guard case .update(let u) = message else {
            Issue.record("not an update")
            return
        }
        let tensors = try model.parameterCounts().count
        #expect(u.delta.count == tensors)
        #expect(held <= 4 * frame.count + 1024 * u.delta.count, "decoded \(frame.count) wire bytes into \(held)")
        withExtendedLifetime(message) {}
    }

    @Test("an UPDATE over the model's limit is refused from its header, before any allocation proportional to it")
    func overLimit() throws {
        let limits = try DecodeLimits(serving: .mlp)
        var payload = Array(Frame.encode(try Self.largestUpdate(.mlp, bits: 16)).dropFirst(Frame.headerSize))
        payload += [UInt8](repeating: 0, count: limits.maxPayloadBytes + 1 - payload.count)
        let frame = rawFrame(type: .update, payload: payload, checksum: 0)  // the checksum is never reached
        var grew = Int.max
        for _ in 0..<3 {
            let before = heapInUse()
            #expect(
                throws: WireError.tooLarge(
                    field: "header.length", declared: limits.maxPayloadBytes + 1, limit: limits.maxPayloadBytes)
            ) { try Frame.decode(frame, limits: limits) }
            grew = min(grew, heapInUse() - before)
        }
        #expect(grew < 64 << 10)
        // The limit is the model's, not the 64 MiB default: a lenet coordinator refuses an mlp-sized delta.
        let lenet = try DecodeLimits(serving: .lenet)
        #expect(lenet.maxPayloadBytes < limits.maxPayloadBytes / 2)
        #expect(lenet.maxTensors == 10 && limits.maxTensors == 6)
    }

    @Test("accumulate adds weight × value from the packed codes, at every bitwidth, dense and sparse")
    func accumulate() throws {
        var random = RandomSource(seed: 11)
        for bits in 1...16 {
            for n in [1, 7, 8, 9, 63, 64, 65, 1000] {
                let values = (0..<n).map { _ in random.nextUnitFloat() * 2 - 1 }
                for topK in [nil, max(1, n / 3)] {
                    let t = QuantizedTensor.quantize(values, layer: 0, bits: bits, topK: topK, random: &random)
                    let dense = t.dequantized()
                    var sum = [Float](repeating: 0.5, count: n)
                    sum.withUnsafeMutableBufferPointer { t.accumulate(into: $0, weight: 0.25) }
                    let reference = t.codes
                    for i in 0..<n {
                        let expected = 0.5 + 0.25 * dense[i]
                        #expect(
                            abs(sum[i] - expected) <= 1e-6 * max(1, abs(expected)),
                            "bits \(bits) n \(n) topK \(String(describing: topK)) i \(i): \(sum[i]) vs \(expected)")
                    }
                    // The codes behind it are the ones that went in.
                    if topK == nil {
                        let back = dense.map { t.scale.value > 0 ? ($0 / t.scale.value).rounded() : 0 }
                        #expect(back == reference.map(Float.init), "bits \(bits) n \(n)")
                    }
                }
            }
        }
    }
}
