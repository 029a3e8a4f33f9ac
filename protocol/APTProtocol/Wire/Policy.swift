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

    /// A weight-bit range.
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
        learningRate: Double = 0.05, uplinkBits: Int = 8, uplinkDensity: Double = 1, roundEnergyJ: Double = 0
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
    }

    /// How many values of a `count`-element tensor the uplink sends: `max(1, ⌊uplinkDensity · count⌋)` in
    /// binary64, or nil (send it dense) when that is every value.
    public func topK(count: Int) -> Int? {
        let k = max(1, Int((uplinkDensity * Double(count)).rounded(.down)))
        return k < count ? k : nil
    }

    /// Checks every field, naming the first that is wrong.
    public func validate() throws(WireError) {
        for (i, b) in layerBits.enumerated()
        where !(2...16).contains(b.min) || !(2...16).contains(b.max) || b.min > b.max {
            throw WireError.invalidValue(
                field: "policy.layerBits[\(i)]", reason: "\(b.min)...\(b.max) is not within 2...16")
        }
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
        w.block(b.bytes)
    }

    static func decode(from r: inout ByteReader, senderMinor: UInt8) throws(WireError) -> Policy {
        var p = try r.block("policy", limit: 1 << 20)
        let n = Int(try p.u16("policy.layerBits.count"))
        var bits: [BitRange] = []
        bits.reserveCapacity(min(n, p.remaining / 2))
        for _ in 0..<n {
            let lo = Int(try p.u8("policy.layerBits.min"))
            let hi = Int(try p.u8("policy.layerBits.max"))
            bits.append(BitRange(min: lo, max: hi))
        }
        let policy = Policy(
            layerBits: bits, tradeoff: try p.f64("policy.tradeoff"), localEpochs: Int(try p.u32("policy.localEpochs")),
            localSteps: Int(try p.u32("policy.localSteps")), batchSize: Int(try p.u32("policy.batchSize")),
            learningRate: try p.f64("policy.learningRate"), uplinkBits: Int(try p.u8("policy.uplinkBits")),
            uplinkDensity: try p.f64("policy.uplinkDensity"), roundEnergyJ: try p.f64("policy.roundEnergyJ"))
        try p.finish("policy", senderMinor: senderMinor)
        try policy.validate()
        return policy
    }
}
