import APTCore
import Testing

@testable import APTProtocol

@Suite("Decoder robustness")
struct FuzzTests {
    /// Re-seals a mutated frame with a correct length and checksum so the payload parser is exercised.
    func reseal(_ f: [UInt8]) -> [UInt8] {
        guard f.count >= Frame.headerSize else { return f }
        var g = f
        let n = UInt32(g.count - Frame.headerSize)
        for i in 0..<4 { g[8 + i] = UInt8(truncatingIfNeeded: n >> UInt32(8 * i)) }
        let c = CRC32C.checksum(g, from: Frame.headerSize)
        for i in 0..<4 { g[12 + i] = UInt8(truncatingIfNeeded: c >> UInt32(8 * i)) }
        return g
    }

    @Test("100,000 random and mutated frames: every one decodes or is refused with a typed error")
    func fuzz() {
        var random = RandomSource(seed: 2026)
        let seeds = Samples.all.map { Frame.encode($0) }
        let limits = DecodeLimits(maxPayloadBytes: 1 << 20, maxTensorElements: 1 << 16, maxTensors: 64)
        var accepted = 0
        var kinds: [String: Int] = [:]
        for i in 0..<100_000 {
            var f: [UInt8]
            switch i % 4 {
            case 0:
                f = (0..<Int(random.next() % 300)).map { _ in UInt8(truncatingIfNeeded: random.next()) }
                if random.next() % 2 == 0 && f.count >= 16 {
                    f.replaceSubrange(0..<4, with: Frame.magic)
                    f[4] = ProtocolVersion.current.major
                }
            default:
                f = seeds[Int(random.next() % UInt64(seeds.count))]
                let mutations = 1 + Int(random.next() % 4)
                for _ in 0..<mutations {
                    guard !f.isEmpty else { break }
                    let at = Int(random.next() % UInt64(f.count))
                    switch random.next() % 5 {
                    case 0: f[at] ^= UInt8(1 << (random.next() % 8))
                    case 1: f[at] = UInt8(truncatingIfNeeded: random.next())
                    case 2: f.removeSubrange(at..<min(f.count, at + 1 + Int(random.next() % 8)))
                    case 3:
                        f.insert(
                            contentsOf: (0..<(1 + Int(random.next() % 8))).map { _ in
                                UInt8(truncatingIfNeeded: random.next())
                            }, at: at)
                    default: f = Array(f.prefix(at))
                    }
                }
                // Most mutated frames get a valid checksum so that payload decoding is what is tested.
                if i % 4 != 3 && (f.count < 8 || f[4] == ProtocolVersion.current.major) { f = reseal(f) }
            }
            do {
                let m = try Frame.decode(f, limits: limits)
                accepted += 1
                // Whatever is accepted re-encodes to a frame that decodes to the same message.
                #expect(try Frame.decode(Frame.encode(m), limits: limits) == m)
            } catch {
                let kind = "\(error)".split(separator: ":").first.map(String.init) ?? ""
                kinds[String(kind.prefix(24)), default: 0] += 1
            }
        }
        #expect(accepted > 0, "some mutations keep a frame valid")
        #expect(kinds.count >= 6, "rejections of many kinds: \(kinds.keys.sorted())")
    }

    @Test("huge declared sizes are refused before allocation")
    func hugeSizes() {
        // A TASK claiming 65,535 tensors of 4 G elements each, in a 40-byte frame.
        var w = ByteWriter()
        w.u32(1)  // round
        w.u32(0)  // attempt
        w.u32(1000)  // timeoutMs
        w.u8(0)  // payload kind
        w.u32(0)  // base round
        w.u16(65535)
        w.u16(0)
        w.u32(UInt32.max)
        w.u8(16)
        w.u8(0)
        w.f32(1)
        let f = rawFrame(type: .task, payload: w.bytes)
        #expect(throws: WireError.tooLarge(field: "task.tensors.count", declared: 65535, limit: 1024)) {
            try Frame.decode(f)
        }
        var one = ByteWriter()
        one.u16(0)
        one.u32(UInt32.max)
        one.u8(16)
        one.u8(0)
        one.f32(1)
        var r = ByteReader(one.bytes)
        #expect(
            throws: WireError.tooLarge(field: "tensor.count", declared: Int(UInt32.max), limit: ModelSpec.maxElements)
        ) {
            try QuantizedTensor.decode(from: &r, maxElements: DecodeLimits.standard.maxTensorElements)
        }
        // A sparse tensor claiming more indices than bytes left.
        var s = ByteWriter()
        s.u16(0)
        s.u32(1_000_000)
        s.u8(8)
        s.u8(2)
        s.f32(1)
        s.u32(900_000)
        var rs = ByteReader(s.bytes)
        #expect(throws: WireError.truncated(field: "tensor.indices", offset: 16, needed: 900_000, available: 0)) {
            try QuantizedTensor.decode(from: &rs, maxElements: 1 << 24)
        }
    }
}
