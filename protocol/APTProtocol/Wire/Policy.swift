/// A node's precision policy for the coming rounds: what the coordinator tells it, what it must stay within.
/// Shared by node and coordinator; versioned with the protocol (docs/protocol.md, "Policy").
public struct Policy: Hashable, Sendable, Codable {
    /// Per weighted layer: the fewest and most weight bits the node may use (APT adapts within).
    public var layerBits: [BitRange]
    /// The APT trade-off knob in [0, 1].
    public var tradeoff: Double
    /// Local epochs per round (0 when `localSteps` is used).
    public var localEpochs: Int
    /// Local steps per round (0 when `localEpochs` is used).
    public var localSteps: Int
    /// Samples per local step.
    public var batchSize: Int
    /// SGD learning rate.
    public var learningRate: Double
    /// Bits per value of the uplink delta: 1…16 for codes, 32 for binary32 values (a float32 node; protocol 2.1).
    public var uplinkBits: Int
    /// Fraction of the delta's values to send (top-k); 1 sends everything.
    public var uplinkDensity: Double
    /// Energy the node may spend in the round, J (0: no per-round allowance).
    public var roundEnergyJ: Double
    /// Per weighted layer: the fewest and most bits of the activation codes the layer receives, within which the
    /// node's controller adapts them; empty: what the node's knob gives (from knob 0.75 its own ranges, below it
    /// one width, not adapted) (since protocol 2.2).
    public var activationBits: [BitRange]
    /// Per weighted layer: the fewest and most bits of the error codes the layer receives, as `activationBits`
    /// (since protocol 2.2).
    public var errorBits: [BitRange]

    /// A bit range (weights, activation or error codes).
    public struct BitRange: Hashable, Sendable, Codable {
        /// Fewest bits.
        public var min: Int
        /// Most bits.
        public var max: Int
        /// Creates a range.
        public init(min: Int, max: Int) {
            self.min = min
            self.max = max
        }
    }

    /// Creates a policy.
    public init(
        layerBits: [BitRange], tradeoff: Double = 0.5, localEpochs: Int = 1, localSteps: Int = 0, batchSize: Int = 64,
        learningRate: Double = 0.05, uplinkBits: Int = 8, uplinkDensity: Double = 1, roundEnergyJ: Double = 0,
        activationBits: [BitRange] = [], errorBits: [BitRange] = []
    ) {
        self.layerBits = layerBits
        self.tradeoff = tradeoff
        self.localEpochs = localEpochs
        self.localSteps = localSteps
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.uplinkBits = uplinkBits
        self.uplinkDensity = uplinkDensity
        self.roundEnergyJ = roundEnergyJ
        self.activationBits = activationBits
        self.errorBits = errorBits
    }

    /// The widest (`widest`) or narrowest code widths the policy lets each weighted layer use, activations then
    /// errors; a kind the policy leaves empty takes `otherwise`'s range for every layer (the node's knob's).
    public func codeBits(
        widest: Bool, otherwise: (activations: ClosedRange<Int>, errors: ClosedRange<Int>)
    ) -> (activations: [Int], errors: [Int]) {
        let n = layerBits.count
        func ends(_ given: [BitRange], _ knob: ClosedRange<Int>) -> [Int] {
            given.isEmpty
                ? [Int](repeating: widest ? knob.upperBound : knob.lowerBound, count: n)
                : given.map { widest ? $0.max : $0.min }
        }
        return (ends(activationBits, otherwise.activations), ends(errorBits, otherwise.errors))
    }

    /// How many values of a `count`-element tensor the uplink sends: `max(1, ⌊uplinkDensity · count⌋)` in
    /// binary64, or nil (send it dense) when that is every value.
    public func topK(count: Int) -> Int? {
        let k = max(1, Int((uplinkDensity * Double(count)).rounded(.down)))
        return k < count ? k : nil
    }

    /// Checks every field, naming the first that is wrong.
    public func validate() throws(WireError) {
        try Policy.validate(layerBits, "layerBits")
        guard tradeoff.isFinite, (0...1).contains(tradeoff) else {
            throw WireError.invalidValue(field: "policy.tradeoff", reason: "\(tradeoff) is outside [0, 1]")
        }
        guard localEpochs >= 0, localSteps >= 0, localEpochs + localSteps > 0 else {
            throw WireError.invalidValue(
                field: "policy.localEpochs", reason: "one of local epochs or steps must be positive")
        }
        guard batchSize >= 1 else {
            throw WireError.invalidValue(field: "policy.batchSize", reason: "\(batchSize) < 1")
        }
        guard learningRate.isFinite, learningRate > 0 else {
            throw WireError.invalidValue(field: "policy.learningRate", reason: "\(learningRate) is not positive")
        }
        guard (1...16).contains(uplinkBits) || uplinkBits == QuantizedTensor.float32Bits else {
            throw WireError.invalidValue(
                field: "policy.uplinkBits", reason: "\(uplinkBits) is neither in 1...16 nor 32")
        }
        guard uplinkDensity.isFinite, uplinkDensity > 0, uplinkDensity <= 1 else {
            throw WireError.invalidValue(field: "policy.uplinkDensity", reason: "\(uplinkDensity) is outside (0, 1]")
        }
        guard roundEnergyJ.isFinite, roundEnergyJ >= 0 else {
            throw WireError.invalidValue(
                field: "policy.roundEnergyJ", reason: "\(roundEnergyJ) is negative or not finite")
        }
        for (name, ranges) in [("activationBits", activationBits), ("errorBits", errorBits)] {
            guard ranges.isEmpty || ranges.count == layerBits.count else {
                throw WireError.invalidValue(
                    field: "policy.\(name)",
                    reason: "\(ranges.count) ranges for \(layerBits.count) weighted layers (give none or one per layer)"
                )
            }
            try Policy.validate(ranges, name)
        }
    }

    /// Checks that every range is within 2...16 with its fewest bits at most its most.
    static func validate(_ ranges: [BitRange], _ name: String) throws(WireError) {
        for (i, b) in ranges.enumerated() where !(2...16).contains(b.min) || !(2...16).contains(b.max) || b.min > b.max
        {
            throw WireError.invalidValue(
                field: "policy.\(name)[\(i)]", reason: "\(b.min)...\(b.max) is not within 2...16")
        }
    }

    func encode(into w: inout ByteWriter) {
        var b = ByteWriter()
        b.u16(UInt16(clamping: layerBits.count))
        for r in layerBits.prefix(Int(UInt16.max)) {
            b.u8(UInt8(clamping: r.min))
            b.u8(UInt8(clamping: r.max))
        }
        b.f64(tradeoff)
        b.u32(UInt32(clamping: localEpochs))
        b.u32(UInt32(clamping: localSteps))
        b.u32(UInt32(clamping: batchSize))
        b.f64(learningRate)
        b.u8(UInt8(clamping: uplinkBits))
        b.f64(uplinkDensity)
        b.f64(roundEnergyJ)
        // 2.2: code-width ranges, appended.
        for ranges in [activationBits, errorBits] { Policy.encode(ranges, into: &b) }
        w.block(b.bytes)
    }

    static func encode(_ ranges: [BitRange], into b: inout ByteWriter) {
        b.u16(UInt16(clamping: ranges.count))
        for r in ranges.prefix(Int(UInt16.max)) {
            b.u8(UInt8(clamping: r.min))
            b.u8(UInt8(clamping: r.max))
        }
    }

    static func decodeRanges(_ field: String, from p: inout ByteReader) throws(WireError) -> [BitRange] {
        let n = Int(try p.u16("\(field).count"))
        var out: [BitRange] = []
        out.reserveCapacity(min(n, p.remaining / 2))
        for _ in 0..<n {
            let lo = Int(try p.u8("\(field).min"))
            let hi = Int(try p.u8("\(field).max"))
            out.append(BitRange(min: lo, max: hi))
        }
        return out
    }

    static func decode(from r: inout ByteReader, senderMinor: UInt8) throws(WireError) -> Policy {
        var p = try r.block("policy", limit: 1 << 20)
        let bits = try decodeRanges("policy.layerBits", from: &p)
        var policy = Policy(
            layerBits: bits, tradeoff: try p.f64("policy.tradeoff"), localEpochs: Int(try p.u32("policy.localEpochs")),
            localSteps: Int(try p.u32("policy.localSteps")), batchSize: Int(try p.u32("policy.batchSize")),
            learningRate: try p.f64("policy.learningRate"), uplinkBits: Int(try p.u8("policy.uplinkBits")),
            uplinkDensity: try p.f64("policy.uplinkDensity"), roundEnergyJ: try p.f64("policy.roundEnergyJ"))
        if senderMinor >= 2 {
            policy.activationBits = try decodeRanges("policy.activationBits", from: &p)
            policy.errorBits = try decodeRanges("policy.errorBits", from: &p)
        }
        try p.finish("policy", senderMinor: senderMinor)
        try policy.validate()
        return policy
    }
}
