import APTCore
import Testing

@testable import APTProtocol

@Suite("Quantised tensor codec")
struct CodecTests {
    func values(_ n: Int, seed: UInt64) -> [Float] {
        var r = RandomSource(seed: seed)
        return (0..<n).map { _ in Float(r.nextGaussian()) * 0.01 }
    }

    func roundTrip(_ t: QuantizedTensor) throws -> QuantizedTensor {
        var w = ByteWriter()
        t.encode(into: &w)
        var r = ByteReader(w.bytes)
        let back = try QuantizedTensor.decode(from: &r, maxElements: 1 << 20)
        #expect(r.remaining == 0)
        return back
    }

    @Test("nearest: exact round trip on the wire and error within half a step", arguments: 1...16)
    func nearest(bits: Int) throws {
        var random = RandomSource(seed: 1)
        let x = values(1001, seed: UInt64(bits))
        for kind in ScaleKind.allCases {
            let t = QuantizedTensor.quantize(x, layer: 3, bits: bits, scaleKind: kind, random: &random)
            let back = try roundTrip(t)
            #expect(back == t, "bits \(bits) \(kind)")
            let step = t.scale.value * (bits == 1 ? 2 : 1)
            for (a, b) in zip(x, back.dequantized()) {
                #expect(abs(a - b) <= step / 2 + abs(a) * 2e-7, "bits \(bits) \(kind): \(a) → \(b), step \(step)")
            }
            #expect(t.bits == bits)
        }
    }

    @Test("stochastic rounding is unbiased", arguments: [1, 2, 4, 8])
    func stochastic(bits: Int) throws {
        var random = RandomSource(seed: 2)
        let x: [Float] = [0.013, -0.007, 0.0021, 0.02, -0.02, 0.0]
        var sums = [Double](repeating: 0, count: x.count)
        let trials = 20_000
        // Fix the scale by appending a constant max so every trial shares it.
        for _ in 0..<trials {
            let t = QuantizedTensor.quantize(x + [0.02], layer: 0, bits: bits, rounding: .stochastic, random: &random)
            let d = t.dequantized()
            for i in x.indices { sums[i] += Double(d[i]) }
        }
        let step = 0.02 / Double(QuantizedTensor.maxCode(bits: bits)) * (bits == 1 ? 2 : 1)
        for i in x.indices {
            let mean = sums[i] / Double(trials)
            // Standard error ≤ step / (2√trials); allow 6 of them.
            #expect(
                abs(mean - Double(x[i])) < 6 * step / (2 * Double(trials).squareRoot()) + 1e-7,
                "bits \(bits) x \(x[i]): mean \(mean)")
        }
    }

    @Test("top-k keeps the largest magnitudes with compact indices")
    func topK() throws {
        var random = RandomSource(seed: 3)
        let x = values(10_000, seed: 9)
        let t = QuantizedTensor.quantize(x, layer: 1, bits: 8, topK: 100, random: &random)
        #expect(t.indices?.count == 100)
        let threshold = x.map(abs).sorted(by: >)[99]
        for i in t.indices! { #expect(abs(x[Int(i)]) >= threshold) }
        #expect(try roundTrip(t) == t)
        var w = ByteWriter()
        t.encode(into: &w)
        #expect(w.bytes.count < 100 * 3 + 100 + 20, "indices as varint gaps: \(w.bytes.count) bytes")
    }

    @Test("top-k selection equals a full sort, ties to the lower index")
    func selection() {
        var random = RandomSource(seed: 8)
        for n in [1, 2, 17, 100, 1000] {
            // Few distinct magnitudes, so that ties are common.
            let v = (0..<n).map { _ in Float(Int(random.next() % 7) - 3) * 0.5 }
            for k in [1, n / 3 + 1, n] {
                let reference = v.indices.sorted { abs(v[$0]) > abs(v[$1]) || (abs(v[$0]) == abs(v[$1]) && $0 < $1) }
                    .prefix(k).sorted()
                #expect(QuantizedTensor.largestMagnitudes(v, k: k) == Array(reference), "n \(n) k \(k)")
            }
        }
    }

    @Test("error feedback carries what quantisation dropped into the next delta")
    func errorFeedback() {
        var random = RandomSource(seed: 4)
        var ef = ErrorFeedback()
        let x = values(500, seed: 11)
        var sent = [Float](repeating: 0, count: x.count)
        let rounds = 50
        for _ in 0..<rounds {
            let t = ef.compress(x, layer: 0, bits: 2, random: &random)
            for (i, v) in t.dequantized().enumerated() { sent[i] += v }
        }
        // Without feedback a 2-bit code loses each sub-step value every round; with it, the sum tracks.
        var maxErr: Float = 0
        for i in x.indices { maxErr = max(maxErr, abs(sent[i] - Float(rounds) * x[i])) }
        let oneShot = QuantizedTensor.quantize(x, layer: 0, bits: 2, random: &random)
        #expect(maxErr <= oneShot.scale.value * 2, "accumulated error \(maxErr) exceeds a step or two")
    }

    @Test("decoding validates bits, flags, scale, counts and indices")
    func validation() {
        func bytes(_ f: (inout ByteWriter) -> Void) -> [UInt8] {
            var w = ByteWriter()
            f(&w)
            return w.bytes
        }
        let cases: [([UInt8], WireError)] = [
            (
                bytes {
                    $0.u16(0)
                    $0.u32(10)
                    $0.u8(17)
                }, .invalidValue(field: "tensor.bits", reason: "17 is neither in 1...16 nor 32")
            ),
            (
                bytes {
                    $0.u16(0)
                    $0.u32(10)
                    $0.u8(0)
                }, .invalidValue(field: "tensor.bits", reason: "0 is neither in 1...16 nor 32")
            ),
            (
                bytes {
                    $0.u16(0)
                    $0.u32(2_000_000)
                    $0.u8(8)
                }, .tooLarge(field: "tensor.count", declared: 2_000_000, limit: 1 << 20)
            ),
            (
                bytes {
                    $0.u16(0)
                    $0.u32(10)
                    $0.u8(8)
                    $0.u8(0x80)
                }, .invalidValue(field: "tensor.flags", reason: "unknown flag bits 128")
            ),
            (
                bytes {
                    $0.u16(0)
                    $0.u32(10)
                    $0.u8(8)
                    $0.u8(0)
                    $0.f32(.nan)
                },
                .invalidValue(field: "tensor.scale", reason: "nan is not a finite non-negative number")
            ),
            (
                bytes {
                    $0.u16(0)
                    $0.u32(10)
                    $0.u8(8)
                    $0.u8(0)
                    $0.f32(.infinity)
                },
                .invalidValue(field: "tensor.scale", reason: "inf is not a finite non-negative number")
            ),
            (
                bytes {
                    $0.u16(0)
                    $0.u32(10)
                    $0.u8(8)
                    $0.u8(2)
                    $0.f32(1)
                    $0.u32(11)
                },
                .invalidValue(field: "tensor.k", reason: "11 exceeds count 10")
            ),
            (
                bytes {
                    $0.u16(0)
                    $0.u32(10)
                    $0.u8(8)
                    $0.u8(2)
                    $0.f32(1)
                    $0.u32(1)
                    $0.varint(10)
                },
                .invalidValue(field: "tensor.index", reason: "index beyond count 10")
            ),
            (
                bytes {
                    $0.u16(0)
                    $0.u32(10)
                    $0.u8(8)
                    $0.u8(0)
                    $0.f32(1)
                    $0.raw([1, 2, 3])
                },
                .truncated(field: "tensor.values", offset: 12, needed: 10, available: 3)
            ),
            (
                bytes {
                    $0.u16(0)
                    $0.u32(1)
                    $0.u8(8)
                    $0.u8(0)
                    $0.f32(1)
                    $0.u8(0x80)
                },
                .invalidValue(field: "tensor.values", reason: "code -128 outside the symmetric 8-bit range")
            ),
        ]
        for (b, expected) in cases {
            var r = ByteReader(b)
            #expect(throws: expected) { try QuantizedTensor.decode(from: &r, maxElements: 1 << 20) }
        }
    }
}
