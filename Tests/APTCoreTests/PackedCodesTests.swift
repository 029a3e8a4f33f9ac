import Testing

@testable import APTCore

@Suite("Sub-byte packing of codes")
struct PackedCodesTests {
    /// Random symmetric codes of `bits` bits.
    func codes(count: Int, bits: Int, seed: UInt64) -> [Int8] {
        var random = RandomSource(seed: seed)
        let m = Int(FixedPointFormat.maxCode(bits: bits))
        return (0..<count).map { _ in Int8(Int(random.next() % UInt64(2 * m + 1)) - m) }
    }

    @Test("byte codes of 2…8 bits pack into bits/8 of a byte each and unpack exactly", arguments: 2...8)
    func roundTrip(bits: Int) {
        for count in [0, 1, 7, 8, 9, 64, 1001] {
            let c = codes(count: count, bits: bits, seed: UInt64(bits * 1000 + count))
            let p = PackedCodes(packing: c, bits: bits)
            #expect(p.bytes.count == (count * bits + 7) / 8)
            #expect(p.unpackedInt8() == c, "bits \(bits), count \(count)")
            // The eight-at-a-time path writes what the general packer writes.
            #expect(p.bytes == PackedCodes.pack(c, bits: bits))
            var seen: [Int32] = []
            let paddingZero = p.forEachCode { _, v in seen.append(v) }
            #expect(paddingZero)
            #expect(seen == c.map(Int32.init))
        }
    }

    @Test("any range of codes unpacks to the same bytes as the whole", arguments: 2...8)
    func rangeUnpack(bits: Int) {
        let c = codes(count: 203, bits: bits, seed: UInt64(bits))
        let p = PackedCodes(packing: c, bits: bits)
        for (start, n) in [(0, 203), (0, 0), (1, 7), (3, 30), (8, 16), (13, 190), (202, 1), (195, 8)] {
            var out = [Int8](repeating: 99, count: n)
            out.withUnsafeMutableBufferPointer { p.unpackInt8(from: start, count: n, into: $0.baseAddress!) }
            #expect(out == Array(c[start..<(start + n)]), "bits \(bits), \(start)..<\(start + n)")
        }
    }

    @Test("a K-pair panel built from packed codes equals the one built from the unpacked codes", arguments: [6, 7])
    func pairPanelFromPacked(bits: Int) {
        for (k, n) in [(64, 784), (7, 33), (1, 5)] {
            let c = codes(count: k * n, bits: bits, seed: UInt64(k * n))
            let fromPacked = PairPanel(packing: PackedCodes(packing: c, bits: bits), k: k, n: n, maxB: 63)
            let fromBytes = PairPanel(packing: .int8(c), k: k, n: n, maxB: 63)
            #expect(fromPacked.codes == fromBytes.codes, "\(k)×\(n) at \(bits) bits")
        }
    }

    @Test("the bit order is LSB-first with no gaps")
    func bitOrder() {
        // Codes 1, -1, 2 at 3 bits: 001, 111, 010 → bits 0-2, 3-5, 6-8.
        let p = PackedCodes(packing: [Int8(1), -1, 2], bits: 3)
        #expect(p.bytes == [0b1011_1001, 0b0000_0000])
    }

    @Test("a layer keeps its saved input packed when activation codes are narrower than a byte")
    func savedInputIsPacked() throws {
        var q = TrainingConfiguration.defaultQuantization(precision: .fixed(bits: 8), tradeoff: 0.5)
        q.activationBits = 6
        let spec = ModelSpec(
            name: "t", input: [1, 4, 4], classes: 3,
            layers: [
                .conv(outChannels: 2, kernel: 3, stride: 1, padding: 1), .relu, .flatten,
                .linear(outputs: 3),
            ])
        var net = try Network(spec: spec, mode: .fixed(bits: 8), quantization: q, seed: 3)
        var ctx = StepContext(
            mode: .fixed(bits: 8), quantization: q, hyper: UpdateHyperparameters(learningRate: 0.1, momentum: 0.9),
            random: RandomSource(seed: 1), meter: EnergyMeter(profile: .generic45nm, layers: 4),
            training: true)
        var random = RandomSource(seed: 5)
        let x = Batch(values: (0..<(5 * 16)).map { _ in random.nextUnitFloat() - 0.5 }, count: 5, shape: [1, 4, 4])
        _ = net.forward(x, context: &ctx)
        // Conv input: 5·16 codes of 6 bits = 60 bytes; linear input: 5·32 codes = 120 bytes.
        #expect(net.layers[0].savedBytes == 60)
        #expect(net.layers[3].savedBytes == 120)
        // The memory model counts exactly what the layers hold for the backward pass.
        let held = net.layers.reduce(0) { $0 + $1.savedBytes }
        let model = try MemoryModel(spec: spec, mode: .fixed(bits: 8), quantization: q, momentum: 0.9)
        #expect(model.footprint(batch: 5, weightBits: [8, 8]).savedActivationBytes == held)
    }

    @Test("pooling arg-maxes pack at 1, 2, 4 or 8 bits as the window needs and read back exactly", arguments: 1...15)
    func argmax(size: Int) {
        let positions = size * size
        let bits = PackedArgmax.bits(windowSize: size)
        #expect(1 << bits >= positions && (bits == 1 || 1 << (bits / 2) < positions))
        for count in [0, 1, 3, 5, 17, 1000] {
            var random = RandomSource(seed: UInt64(size * 100 + count))
            let values = (0..<count).map { _ in Int(random.next() % UInt64(positions)) }
            var packed = PackedArgmax(count: count, windowSize: size)
            #expect(packed.byteCount == (count * bits + 7) / 8)
            packed.withWriter { w in for (o, v) in values.enumerated() { w.set(o, Int64(v)) } }
            #expect((0..<count).map { packed[$0] } == values, "size \(size), count \(count)")
            #expect(packed.withReader { r in (0..<count).map { r[$0] } } == values)
            // Written as words of several arg-maxes from an unaligned start, the same arg-maxes read back.
            let offset = 3
            var words = PackedArgmax(count: count + offset, windowSize: size)
            words.withWriter { w in
                var o = 0
                while o < count {
                    let n = min(64 / bits, count - o)
                    var word: UInt64 = 0
                    for k in 0..<n { word |= UInt64(values[o + k]) << UInt64(k * bits) }
                    w.or(word, bits: n * bits, at: (offset + o) * bits)
                    o += n
                }
            }
            #expect((0..<count).map { words[offset + $0] } == values, "size \(size), count \(count), by words")
        }
    }
}
