/// The priced operations of one layer for one training step, per pass. Built by `Layer.cost(...)` from the
/// layer's shapes and current bitwidths; the layer adds each pass to the meter as it runs it, and the trainer
/// sums a whole step ahead of time to honour an energy budget.
public struct CostSheet: Sendable, Equatable {
    /// Counts per pass, indexed by `TrainingPass.rawValue`.
    public var passes: [OperationCounts] = Array(repeating: OperationCounts(), count: TrainingPass.allCases.count)
    /// The profile used for pricing.
    public let profile: DeviceProfile

    /// An empty sheet priced with `profile`.
    public init(profile: DeviceProfile) { self.profile = profile }

    /// The counts of `pass`.
    public subscript(pass: TrainingPass) -> OperationCounts { passes[pass.rawValue] }

    /// Total energy of the sheet, J.
    public var joules: Double { passes.reduce(0) { $0 + $1.joules } }

    /// Adds `macs` integer multiply-accumulates of `bitsA`×`bitsB` operands into an `accumulatorBits` sum.
    public mutating func integerMACs(_ macs: Int, bitsA: Int, bitsB: Int, accumulatorBits: Int, pass: TrainingPass) {
        let pj = Double(macs) * (profile.intMultiplyPJ(bitsA, bitsB) + profile.intAddPJ(accumulatorBits))
        passes[pass.rawValue].macs += macs
        passes[pass.rawValue].computeJoules += pj * 1e-12
    }

    /// Adds `macs` fp32 multiply-accumulates.
    public mutating func floatMACs(_ macs: Int, pass: TrainingPass) {
        let pj = Double(macs) * (profile.fp32MultiplyPJ + profile.fp32AddPJ)
        passes[pass.rawValue].macs += macs
        passes[pass.rawValue].computeJoules += pj * 1e-12
    }

    /// Adds `ops` element-wise operations, each priced as one fp32 multiply and one fp32 add.
    public mutating func scalarOps(_ ops: Int, pass: TrainingPass) {
        let pj = Double(ops) * (profile.fp32MultiplyPJ + profile.fp32AddPJ)
        passes[pass.rawValue].scalarOps += ops
        passes[pass.rawValue].scalarJoules += pj * 1e-12
    }

    /// Adds `ops` element-wise operations on values that are `bits`-wide integer codes (`nil`: fp32 values).
    /// An integer operation (a compare, an add, a shift-round-saturate) is priced as one `bits`-wide add; an
    /// fp32 one as one fp32 multiply plus one fp32 add.
    public mutating func elementwise(_ ops: Int, bits: Int?, pass: TrainingPass) {
        guard let bits else { return scalarOps(ops, pass: pass) }
        passes[pass.rawValue].scalarOps += ops
        passes[pass.rawValue].scalarJoules += Double(ops) * profile.intAddPJ(bits) * 1e-12
    }

    /// Adds `ops` element-wise integer multiplies of `bitsA`-bit by `bitsB`-bit codes (the update's momentum
    /// and learning-rate products in a fixed-point run).
    public mutating func elementwiseMultiplies(_ ops: Int, bitsA: Int, bitsB: Int, pass: TrainingPass) {
        passes[pass.rawValue].scalarOps += ops
        passes[pass.rawValue].scalarJoules += Double(ops) * profile.intMultiplyPJ(bitsA, bitsB) * 1e-12
    }

    /// Adds moving a whole tensor of `bytes` bytes once (read or write), priced by the tensor's size.
    public mutating func traffic(tensorBytes bytes: Int, pass: TrainingPass) {
        passes[pass.rawValue].bytesMoved += bytes
        passes[pass.rawValue].memoryJoules += Double(bytes) * profile.pjPerByte(tensorBytes: bytes) * 1e-12
    }
}
