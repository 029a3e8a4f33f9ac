import APTCore

/// The 16-byte frame header and the message codec (docs/protocol.md).
public enum Frame {
    /// `APTF`.
    public static let magic: [UInt8] = [0x41, 0x50, 0x54, 0x46]
    /// Header size in bytes.
    public static let headerSize = 16

    /// Encodes `message` as one frame: header, then payload.
    public static func encode(_ message: Message, version: ProtocolVersion = .current) -> [UInt8] {
        var p = ByteWriter(capacity: 256)
        switch message {
        case .hello(let h):
            p.string(h.name)
            p.u8(h.version.major)
            p.u8(h.version.minor)
            encodeProfile(h.profile, into: &p)
            p.f64(h.energyBudgetJ)
            p.u64(h.memoryBudgetBytes)
            p.u64(h.localSamples)
            p.u32(h.capabilities.rawValue)
        case .welcome(let w):
            p.u32(w.nodeId)
            encodeModel(w.model, into: &p)
            w.policy.encode(into: &p)
        case .task(let t):
            p.u32(t.round)
            p.u32(t.attempt)
            p.u32(t.timeoutMs)
            p.u8(t.payload.rawValue)
            p.u32(t.baseRound)
            encodeTensors(t.tensors, into: &p)
            t.policy.encode(into: &p)
        case .update(let u):
            p.u32(u.round)
            p.u32(u.attempt)
            p.u64(u.samplesTrained)
            p.u32(u.stepsDone)
            p.u32(u.stepsAsked)
            p.u8(u.stopReason.rawValue)
            encodeTensors(u.delta, into: &p)
            var l = ByteWriter()
            l.f64(u.ledger.energyJ)
            l.u64(u.ledger.peakMemoryBytes)
            l.u16(UInt16(clamping: u.ledger.bits.count))
            for b in u.ledger.bits.prefix(Int(UInt16.max)) { l.u8(b) }
            l.f64(u.ledger.loss)
            l.f64(u.ledger.accuracy)
            l.f64(u.ledger.durationS)
            p.block(l.bytes)
        case .policy(let pol):
            pol.encode(into: &p)
        case .heartbeat(let seq, let ts):
            p.u64(seq)
            p.u64(ts)
        case .bye(let reason, let text):
            p.u8(reason.rawValue)
            p.string(text)
        case .error(let code, let text):
            p.u16(code.rawValue)
            p.string(text)
        }
        let payload = p.bytes
        var h = ByteWriter(capacity: headerSize + payload.count)
        h.raw(magic)
        h.u8(version.major)
        h.u8(version.minor)
        h.u8(message.type.rawValue)
        h.u8(0)
        h.u32(UInt32(payload.count))
        h.u32(CRC32C.checksum(payload))
        h.raw(payload)
        return h.bytes
    }

    /// The header of a frame, validated.
    public struct Header: Hashable, Sendable {
        /// Sender's version.
        public var version: ProtocolVersion
        /// Message type.
        public var type: MessageType
        /// Flags (zero in 1.0).
        public var flags: UInt8
        /// Payload length.
        public var length: Int
        /// CRC-32C of the payload.
        public var checksum: UInt32
    }

    /// Reads and checks the header: magic, major version, type, declared length against the frame and the
    /// limit, and the payload's checksum.
    public static func header(_ frame: [UInt8], limits: DecodeLimits = .standard) throws(WireError) -> Header {
        // Every header byte is read before any is judged: a short frame is truncated, naming the first field it
        // cuts.
        var r = ByteReader(frame)
        let m = try r.raw(4, "header.magic")
        let major = try r.u8("header.major")
        let minor = try r.u8("header.minor")
        let typeCode = try r.u8("header.type")
        let flags = try r.u8("header.flags")
        let length = Int(try r.u32("header.length"))
        let checksum = try r.u32("header.checksum")
        guard m == magic else { throw WireError.badMagic(m) }
        guard major == ProtocolVersion.current.major else {
            throw WireError.unsupportedVersion(major: major, minor: minor)
        }
        guard length <= limits.maxPayloadBytes else {
            throw WireError.tooLarge(field: "header.length", declared: length, limit: limits.maxPayloadBytes)
        }
        guard length == frame.count - headerSize else {
            throw WireError.lengthMismatch(declared: length, actual: frame.count - headerSize)
        }
        guard let type = MessageType(rawValue: typeCode) else { throw WireError.unknownMessageType(typeCode) }
        if minor <= ProtocolVersion.current.minor && flags != 0 {
            throw WireError.invalidValue(
                field: "header.flags", reason: "\(flags) set, none defined in \(ProtocolVersion.current)")
        }
        let actual = CRC32C.checksum(frame, from: headerSize)
        guard actual == checksum else { throw WireError.checksumMismatch(expected: checksum, actual: actual) }
        return Header(
            version: ProtocolVersion(major: major, minor: minor), type: type, flags: flags, length: length,
            checksum: checksum)
    }

    /// Decodes one frame. Every failure is a `WireError`; nothing is allocated beyond `limits`.
    public static func decode(_ frame: [UInt8], limits: DecodeLimits = .standard) throws(WireError) -> Message {
        let h = try header(frame, limits: limits)
        var r = ByteReader(frame, start: headerSize)
        let minor = h.version.minor
        let message: Message
        switch h.type {
        case .hello:
            let name = try r.string("hello.name")
            // The name is the routing id in plain mode: ZeroMQ takes 1...255 bytes not starting with 0.
            guard (1...255).contains(name.utf8.count), name.utf8.first != 0 else {
                throw WireError.invalidValue(
                    field: "hello.name", reason: "must be 1...255 bytes of UTF-8 not starting with NUL")
            }
            let major = try r.u8("hello.major")
            let vminor = try r.u8("hello.minor")
            // The header's version decides how a frame is read; the one HELLO states must agree with it.
            guard major == h.version.major && vminor == h.version.minor else {
                throw WireError.invalidValue(
                    field: "hello.version",
                    reason: "\(major).\(vminor) disagrees with the frame header's \(h.version)")
            }
            let profile = try decodeProfile(&r, senderMinor: minor)
            let energy = try r.f64("hello.energyBudgetJ")
            guard energy.isFinite, energy >= 0 else {
                throw WireError.invalidValue(
                    field: "hello.energyBudgetJ", reason: "\(energy) is not a finite non-negative number")
            }
            message = .hello(
                Hello(
                    name: name, version: ProtocolVersion(major: major, minor: vminor), profile: profile,
                    energyBudgetJ: energy, memoryBudgetBytes: try r.u64("hello.memoryBudgetBytes"),
                    localSamples: try r.u64("hello.localSamples"),
                    capabilities: Capabilities(rawValue: try r.u32("hello.capabilities"))))
        case .welcome:
            let id = try r.u32("welcome.nodeId")
            let model = try decodeModel(&r, senderMinor: minor)
            message = .welcome(
                Welcome(nodeId: id, model: model, policy: try Policy.decode(from: &r, senderMinor: minor)))
        case .task:
            let round = try r.u32("task.round")
            let attempt = try r.u32("task.attempt")
            let timeout = try r.u32("task.timeoutMs")
            let kind = try r.u8("task.payload")
            guard let payload = TrainingTask.Payload(rawValue: kind) else {
                throw WireError.invalidValue(field: "task.payload", reason: "unknown payload kind \(kind)")
            }
            let base = try r.u32("task.baseRound")
            let tensors = try decodeTensors(&r, limits: limits, field: "task.tensors")
            message = .task(
                TrainingTask(
                    round: round, attempt: attempt, timeoutMs: timeout, payload: payload, baseRound: base,
                    tensors: tensors,
                    policy: try Policy.decode(from: &r, senderMinor: minor)))
        case .update:
            let round = try r.u32("update.round")
            let attempt = try r.u32("update.attempt")
            let samples = try r.u64("update.samplesTrained")
            let stepsDone = try r.u32("update.stepsDone")
            let stepsAsked = try r.u32("update.stepsAsked")
            let stop = StopReason(rawValue: try r.u8("update.stopReason"))
            let delta = try decodeTensors(&r, limits: limits, field: "update.delta")
            var l = try r.block("update.ledger", limit: 1 << 20)
            let energy = try l.finite("ledger.energyJ")
            let peak = try l.u64("ledger.peakMemoryBytes")
            let nb = Int(try l.u16("ledger.bits.count"))
            let bits = try l.raw(nb, "ledger.bits")
            let entry = LedgerEntry(
                energyJ: energy, peakMemoryBytes: peak, bits: bits, loss: try l.finite("ledger.loss"),
                accuracy: try l.finite("ledger.accuracy"), durationS: try l.finite("ledger.durationS"))
            try l.finish("ledger", senderMinor: minor)
            guard energy >= 0, entry.durationS >= 0, (0...1).contains(entry.accuracy) else {
                throw WireError.invalidValue(
                    field: "ledger", reason: "negative energy or duration, or accuracy outside 0...1")
            }
            message = .update(
                Update(
                    round: round, attempt: attempt, samplesTrained: samples, stepsDone: stepsDone,
                    stepsAsked: stepsAsked, stopReason: stop, delta: delta, ledger: entry))
        case .policy:
            message = .policy(try Policy.decode(from: &r, senderMinor: minor))
        case .heartbeat:
            message = .heartbeat(
                sequence: try r.u64("heartbeat.sequence"), timestampMs: try r.u64("heartbeat.timestampMs"))
        case .bye:
            let reason = ByeReason(rawValue: try r.u8("bye.reason"))
            message = .bye(reason: reason, text: try r.string("bye.text"))
        case .error:
            let code = ErrorCode(rawValue: try r.u16("error.code"))
            message = .error(code: code, text: try r.string("error.text"))
        }
        try r.finish("\(h.type) payload", senderMinor: minor)
        return message
    }

    static func encodeTensors(_ tensors: [QuantizedTensor], into w: inout ByteWriter) {
        w.u16(UInt16(clamping: tensors.count))
        for t in tensors.prefix(Int(UInt16.max)) { t.encode(into: &w) }
    }

    static func decodeTensors(_ r: inout ByteReader, limits: DecodeLimits, field: String) throws(WireError)
        -> [QuantizedTensor]
    {
        let n = Int(try r.u16(field + ".count"))
        guard n <= limits.maxTensors else {
            throw WireError.tooLarge(field: field + ".count", declared: n, limit: limits.maxTensors)
        }
        var out: [QuantizedTensor] = []
        for _ in 0..<n { out.append(try QuantizedTensor.decode(from: &r, maxElements: limits.maxTensorElements)) }
        return out
    }

    static func encodeProfile(_ p: DeviceProfile, into w: inout ByteWriter) {
        var b = ByteWriter()
        b.string(p.name)
        b.string(p.description)
        for v in [p.int8MultiplyPJ, p.int32AddPJ, p.fp32MultiplyPJ, p.fp32AddPJ, p.sramPJPerByte, p.dramPJPerByte] {
            b.f64(v)
        }
        b.u64(UInt64(max(p.sramBytes, 0)))
        b.u64(UInt64(max(p.memoryBytes, 0)))
        b.u8(p.multiplierWidth == .storage ? 1 : 0)
        w.block(b.bytes)
    }

    static func decodeProfile(_ r: inout ByteReader, senderMinor: UInt8) throws(WireError) -> DeviceProfile {
        var b = try r.block("hello.profile", limit: 1 << 20)
        let name = try b.string("profile.name")
        let description = try b.string("profile.description")
        var v: [Double] = []
        for f in ["int8MultiplyPJ", "int32AddPJ", "fp32MultiplyPJ", "fp32AddPJ", "sramPJPerByte", "dramPJPerByte"] {
            let x = try b.finite("profile.\(f)")
            guard x >= 0 else { throw WireError.invalidValue(field: "profile.\(f)", reason: "\(x) is negative") }
            v.append(x)
        }
        let sram = try b.u64("profile.sramBytes")
        let mem = try b.u64("profile.memoryBytes")
        let width = try b.u8("profile.multiplierWidth")
        guard width <= 1 else {
            throw WireError.invalidValue(field: "profile.multiplierWidth", reason: "unknown width \(width)")
        }
        guard sram <= UInt64(Int.max), mem <= UInt64(Int.max) else {
            throw WireError.invalidValue(field: "profile", reason: "memory sizes out of range")
        }
        try b.finish("profile", senderMinor: senderMinor)
        return DeviceProfile(
            name: name, description: description, int8MultiplyPJ: v[0], int32AddPJ: v[1],
            fp32MultiplyPJ: v[2], fp32AddPJ: v[3], sramBytes: Int(sram), sramPJPerByte: v[4],
            dramPJPerByte: v[5], memoryBytes: Int(mem), multiplierWidth: width == 1 ? .storage : .logical)
    }

    static func encodeModel(_ m: ModelSpec, into w: inout ByteWriter) {
        var b = ByteWriter()
        b.string(m.name)
        b.u8(UInt8(clamping: m.input.count))
        for d in m.input { b.u32(UInt32(clamping: d)) }
        b.u32(UInt32(clamping: m.classes))
        b.u16(UInt16(clamping: m.layers.count))
        for l in m.layers {
            switch l {
            case .linear(let o):
                b.u8(1)
                b.u32(UInt32(clamping: o))
            case .conv(let c, let k, let s, let p):
                b.u8(2)
                b.u32(UInt32(clamping: c))
                b.u8(UInt8(clamping: k))
                b.u8(UInt8(clamping: s))
                b.u8(UInt8(clamping: p))
            case .relu: b.u8(3)
            case .maxPool(let s):
                b.u8(4)
                b.u8(UInt8(clamping: s))
            case .flatten: b.u8(5)
            }
        }
        w.block(b.bytes)
    }

    static func decodeModel(_ r: inout ByteReader, senderMinor: UInt8) throws(WireError) -> ModelSpec {
        var b = try r.block("welcome.model", limit: 1 << 20)
        let name = try b.string("model.name")
        let nd = Int(try b.u8("model.input.count"))
        var input: [Int] = []
        for _ in 0..<nd { input.append(Int(try b.u32("model.input"))) }
        let classes = Int(try b.u32("model.classes"))
        let nl = Int(try b.u16("model.layers.count"))
        var layers: [LayerSpec] = []
        for _ in 0..<nl {
            let kind = try b.u8("model.layer.kind")
            switch kind {
            case 1: layers.append(.linear(outputs: Int(try b.u32("model.linear.outputs"))))
            case 2:
                layers.append(
                    .conv(
                        outChannels: Int(try b.u32("model.conv.channels")), kernel: Int(try b.u8("model.conv.kernel")),
                        stride: Int(try b.u8("model.conv.stride")), padding: Int(try b.u8("model.conv.padding"))))
            case 3: layers.append(.relu)
            case 4: layers.append(.maxPool(size: Int(try b.u8("model.maxpool.size"))))
            case 5: layers.append(.flatten)
            default: throw WireError.invalidValue(field: "model.layer.kind", reason: "unknown layer kind \(kind)")
            }
        }
        try b.finish("model", senderMinor: senderMinor)
        let spec = ModelSpec(name: name, input: input, classes: classes, layers: layers)
        do {
            try spec.validate()
        } catch {
            throw WireError.invalidValue(field: "model", reason: error.message)
        }
        return spec
    }
}

extension Message {
    /// The ERROR a receiver sends back for a frame it refused: the code and a text naming what was wrong —
    /// for another major version, both versions ("peer speaks 2.0, this coordinator 1.0").
    public static func errorReply(for error: WireError) -> Message {
        switch error {
        case .unsupportedVersion(let major, let minor):
            return .error(
                code: .unsupportedVersion,
                text: "unsupported protocol version \(major).\(minor): this peer speaks \(ProtocolVersion.current)")
        default:
            return .error(code: .malformed, text: error.description)
        }
    }
}
