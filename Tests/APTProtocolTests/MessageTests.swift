import APTCore
import Testing

@testable import APTProtocol

/// Sample messages of every type.
enum Samples {
    static let policy = Policy(
        layerBits: [.init(min: 4, max: 16), .init(min: 6, max: 12)], tradeoff: 0.6,
        localEpochs: 1, localSteps: 0, batchSize: 32, learningRate: 0.05, uplinkBits: 4,
        uplinkDensity: 0.1, roundEnergyJ: 0.25, activationBits: [.init(min: 6, max: 8), .init(min: 4, max: 8)],
        errorBits: [.init(min: 6, max: 16), .init(min: 8, max: 8)])
    static let hello = Hello(
        name: "pi-kitchen", profile: .raspberryPi4, energyBudgetJ: 12.5, memoryBudgetBytes: 64 << 20,
        localSamples: 6000, capabilities: [.apt, .topK, .errorFeedback])
    static func tensor(_ layer: UInt16, _ n: Int, bits: Int, topK: Int? = nil) -> QuantizedTensor {
        var random = RandomSource(seed: UInt64(layer) + 1)
        let v = (0..<n).map { _ in random.nextUnitFloat() - 0.5 }
        return QuantizedTensor.quantize(v, layer: layer, bits: bits, topK: topK, random: &random)
    }
    static var all: [Message] {
        [
            .hello(hello),
            .welcome(Welcome(nodeId: 7, model: .lenet, policy: policy)),
            .task(
                TrainingTask(
                    round: 3, attempt: 1, timeoutMs: 90_000, payload: .delta, baseRound: 2,
                    tensors: [tensor(0, 100, bits: 8), tensor(1, 10, bits: 16)], policy: policy)),
            .update(
                Update(
                    round: 3, attempt: 1, samplesTrained: 640, stepsDone: 10, stepsAsked: 20, stopReason: .deadline,
                    delta: [tensor(0, 1000, bits: 4, topK: 50), tensor(1, 33, bits: 1)],
                    ledger: LedgerEntry(
                        energyJ: 0.031, peakMemoryBytes: 1_052_200, bits: [14, 14, 12],
                        loss: 0.51, accuracy: 0.83, durationS: 2.5))),
            .policy(policy),
            .heartbeat(sequence: 42, timestampMs: 123_456),
            .bye(reason: .energyBudgetExhausted, text: "spent 12.5 J"),
            .error(code: .unsupportedVersion, text: "coordinator speaks 1.0, node 2.0"),
        ]
    }
}

@Suite("Messages and framing")
struct MessageTests {
    @Test("every message type round-trips through a frame")
    func roundTrip() throws {
        for m in Samples.all {
            let frame = Frame.encode(m)
            #expect(try Frame.decode(frame) == m, "\(m.type)")
            #expect(try Frame.header(frame).type == m.type)
        }
    }

    @Test("CRC-32C matches the standard check value")
    func crc() {
        #expect(CRC32C.checksum(Array("123456789".utf8)) == 0xE306_9283)
    }

    @Test("a corrupted byte fails the checksum; a wrong length, magic or major version is named")
    func headerErrors() {
        var f = Frame.encode(.heartbeat(sequence: 1, timestampMs: 2))
        f[20] ^= 1
        do {
            _ = try Frame.decode(f)
            Issue.record("a corrupted frame was accepted")
        } catch {
            if case .checksumMismatch = error {} else { Issue.record("expected a checksum mismatch, got \(error)") }
        }
        let g = Frame.encode(.heartbeat(sequence: 1, timestampMs: 2))
        #expect(throws: WireError.lengthMismatch(declared: 16, actual: 15)) { try Frame.decode(Array(g.dropLast())) }
        var bad = g
        bad[0] = 0x42
        #expect(throws: WireError.badMagic([0x42, 0x50, 0x54, 0x46])) { try Frame.decode(bad) }
        let other = ProtocolVersion.current.major + 1
        let v2 = Frame.encode(.heartbeat(sequence: 1, timestampMs: 2), version: ProtocolVersion(major: other, minor: 0))
        #expect(throws: WireError.unsupportedVersion(major: other, minor: 0)) { try Frame.decode(v2) }
        #expect(WireError.unsupportedVersion(major: other, minor: 0).description.contains("\(other).0"))
        #expect(
            WireError.unsupportedVersion(major: other, minor: 0).description.contains(
                ProtocolVersion.current.description))
    }

    /// Re-frames `payload` with a given minor version.
    func frame(type: MessageType, minor: UInt8, payload: [UInt8]) -> [UInt8] {
        rawFrame(type: type, payload: payload, minor: minor)
    }

    @Test("a newer minor version's extra fields are skipped; the same minor's are an error")
    func minorVersions() throws {
        let m = Message.bye(reason: .shutdown, text: "bye")
        let payload = Array(Frame.encode(m).dropFirst(Frame.headerSize)) + [1, 2, 3, 4]
        let newer = frame(type: .bye, minor: ProtocolVersion.current.minor + 1, payload: payload)
        #expect(try Frame.decode(newer) == m)
        let same = frame(type: .bye, minor: ProtocolVersion.current.minor, payload: payload)
        #expect(throws: WireError.trailingBytes(field: "bye payload", count: 4)) { try Frame.decode(same) }
    }

    @Test("2.2 policies carry code-width ranges; a 2.1 sender's policy has none, and extra bytes from it are refused")
    func policyCodeRanges() throws {
        let p = Samples.policy
        #expect(try Frame.decode(Frame.encode(.policy(p))) == .policy(p))
        let knob = (activations: 7...7, errors: 5...9)
        #expect(p.codeBits(widest: true, otherwise: knob).activations == [8, 8])
        #expect(p.codeBits(widest: false, otherwise: knob).errors == [6, 8])
        // What a 2.1 coordinator sends: the same block without the two (here empty) lists at its end.
        var old = p
        (old.activationBits, old.errorBits) = ([], [])
        #expect(old.codeBits(widest: true, otherwise: knob) == ([7, 7], [9, 9]))
        #expect(old.codeBits(widest: false, otherwise: knob) == ([7, 7], [5, 5]))
        let block = Array(Frame.encode(.policy(old)).dropFirst(Frame.headerSize + 4))
        #expect(block.suffix(4) == [0, 0, 0, 0])
        var w = ByteWriter()
        w.block(Array(block.dropLast(4)))
        #expect(try Frame.decode(frame(type: .policy, minor: 1, payload: w.bytes)) == .policy(old))
        // From a 2.1 sender, the 2.2 fields are bytes it cannot have written.
        let current = Array(Frame.encode(.policy(p)).dropFirst(Frame.headerSize))
        #expect(throws: WireError.self) { try Frame.decode(frame(type: .policy, minor: 1, payload: current)) }
        // A 2.2 block without them is truncated.
        #expect(throws: WireError.self) {
            try Frame.decode(frame(type: .policy, minor: ProtocolVersion.current.minor, payload: w.bytes))
        }
    }

    @Test("the decoder reports the first failure in the documented order: header bytes, then a Policy's table order")
    func checkOrder() throws {
        // A short frame is truncated at the first field it cuts, whatever its bytes say (here a bad magic).
        let short: [UInt8] = [0x58, 0x58, 0x58, 0x58, 2, 2, 5, 0, 1, 0]
        #expect(throws: WireError.truncated(field: "header.length", offset: 8, needed: 4, available: 2)) {
            try Frame.decode(short)
        }
        // A Policy's values are checked in its table's order: the knob before the 2.2 ranges.
        var p = Samples.policy
        p.tradeoff = 2
        p.activationBits[0] = .init(min: 1, max: 3)
        #expect(throws: WireError.invalidValue(field: "policy.tradeoff", reason: "2.0 is outside [0, 1]")) {
            try Frame.decode(Frame.encode(.policy(p)))
        }
    }

    @Test("values outside their domain are refused with the field named")
    func invalidValues() throws {
        // NaN energy budget in HELLO.
        var h = Samples.hello
        h.energyBudgetJ = .nan
        #expect(throws: WireError.self) { try Frame.decode(Frame.encode(.hello(h))) }
        // A policy with an impossible bit range.
        var p = Samples.policy
        p.layerBits = [.init(min: 12, max: 4)]
        #expect(throws: WireError.invalidValue(field: "policy.layerBits[0]", reason: "12...4 is not within 2...16")) {
            try Frame.decode(Frame.encode(.policy(p)))
        }
        // Code-width ranges: one per weighted layer or none, each within 2...16.
        p = Samples.policy
        p.errorBits = [.init(min: 8, max: 8)]
        #expect(
            throws: WireError.invalidValue(
                field: "policy.errorBits", reason: "1 ranges for 2 weighted layers (give none or one per layer)")
        ) { try Frame.decode(Frame.encode(.policy(p))) }
        p = Samples.policy
        p.activationBits[1] = .init(min: 1, max: 8)
        #expect(throws: WireError.invalidValue(field: "policy.activationBits[1]", reason: "1...8 is not within 2...16"))
        {
            try Frame.decode(Frame.encode(.policy(p)))
        }
        // NaN loss in the ledger.
        let u = Update(
            round: 1, samplesTrained: 1, delta: [],
            ledger: LedgerEntry(energyJ: 1, peakMemoryBytes: 1, bits: [], loss: .nan, accuracy: 0.5, durationS: 1))
        #expect(throws: WireError.invalidValue(field: "ledger.loss", reason: "nan is not finite")) {
            try Frame.decode(Frame.encode(.update(u)))
        }
        // A payload above the limit is refused from the header alone.
        let big = Frame.encode(
            .task(
                TrainingTask(
                    round: 1, timeoutMs: 0, payload: .fullModel, baseRound: 0,
                    tensors: [Samples.tensor(0, 5000, bits: 16)], policy: Samples.policy)))
        #expect(throws: WireError.tooLarge(field: "header.length", declared: big.count - 16, limit: 1000)) {
            try Frame.decode(big, limits: DecodeLimits(maxPayloadBytes: 1000))
        }
    }
}

@Suite("Error replies")
struct ErrorReplyTests {
    @Test("a frame of another major version is answered with ERROR naming both versions")
    func versionReply() throws {
        let other = ProtocolVersion(major: ProtocolVersion.current.major + 1, minor: 3)
        let v2 = Frame.encode(.heartbeat(sequence: 1, timestampMs: 2), version: other)
        do {
            _ = try Frame.decode(v2)
            Issue.record("a \(other) frame was accepted")
        } catch {
            guard case .error(let code, let text) = Message.errorReply(for: error) else {
                Issue.record("no ERROR reply")
                return
            }
            #expect(code == .unsupportedVersion)
            #expect(text == "unsupported protocol version \(other): this peer speaks \(ProtocolVersion.current)")
            // The reply itself is a valid frame.
            #expect(try Frame.decode(Frame.encode(.error(code: code, text: text))) == .error(code: code, text: text))
        }
        let garbage = Message.errorReply(for: .badMagic([1, 2, 3, 4]))
        if case .error(.malformed, let text) = garbage {
            #expect(text.contains("bad magic"))
        } else {
            Issue.record("\(garbage)")
        }
    }
}

@Suite("Decoder edge cases")
struct DecoderEdgeCaseTests {
    @Test("a varint whose 10th byte overflows 64 bits is refused, not truncated")
    func varintOverflow() throws {
        // 2^63 is the largest value ten bytes can hold: nine 0x80 bytes, then 0x01.
        var ok = ByteReader([UInt8](repeating: 0x80, count: 9) + [0x01])
        #expect(try ok.varint("v") == 1 << 63)
        for last: UInt8 in [0x02, 0x03, 0x7F] {
            var r = ByteReader([0x83] + [UInt8](repeating: 0x80, count: 8) + [last])
            #expect(throws: WireError.invalidValue(field: "v", reason: "varint overflows 64 bits")) {
                try r.varint("v")
            }
        }
        var long = ByteReader([UInt8](repeating: 0x80, count: 10) + [0x00])
        #expect(throws: WireError.self) { try long.varint("v") }
    }

    @Test("HELLO's own version must agree with the frame header's")
    func helloVersion() throws {
        var h = Samples.hello
        h.version = ProtocolVersion(major: ProtocolVersion.current.major + 1, minor: 0)
        #expect(throws: WireError.self) { try Frame.decode(Frame.encode(.hello(h))) }
        h.version = .current
        #expect(try Frame.decode(Frame.encode(.hello(h))) == .hello(h))
    }

    @Test("unknown ERROR codes, BYE reasons and stop reasons are kept, not refused")
    func unknownCodes() throws {
        let e = Message.error(code: ErrorCode(rawValue: 999), text: "from a newer peer")
        #expect(try Frame.decode(Frame.encode(e)) == e)
        let b = Message.bye(reason: ByeReason(rawValue: 77), text: "")
        #expect(try Frame.decode(Frame.encode(b)) == b)
        let u = Update(
            round: 1, attempt: 2, samplesTrained: 3, stepsDone: 1, stepsAsked: 5, stopReason: StopReason(rawValue: 200),
            delta: [],
            ledger: LedgerEntry(energyJ: 0, peakMemoryBytes: 0, bits: [], loss: 0, accuracy: 0, durationS: 0))
        #expect(try Frame.decode(Frame.encode(.update(u))) == .update(u))
        #expect(u.isPartial)
        #expect(ErrorCode(rawValue: 999).description == "error 999")
    }

    @Test("a partial UPDATE says how much of the round it did and why it stopped")
    func partialUpdate() throws {
        let u = Update(
            round: 4, attempt: 1, samplesTrained: 320, stepsDone: 5, stepsAsked: 20, stopReason: .deadline,
            delta: [Samples.tensor(0, 10, bits: 8)],
            ledger: LedgerEntry(energyJ: 0.1, peakMemoryBytes: 10, bits: [8], loss: 1, accuracy: 0.5, durationS: 2))
        guard case .update(let back) = try Frame.decode(Frame.encode(.update(u))) else {
            Issue.record("not an update")
            return
        }
        #expect(back.isPartial && back.stepsDone == 5 && back.stepsAsked == 20 && back.stopReason == .deadline)
        #expect(back.attempt == 1)
        var full = u
        full.stepsDone = 20
        full.stopReason = .completed
        #expect(!full.isPartial)
    }
}
