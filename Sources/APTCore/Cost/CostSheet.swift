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

    /// Adds `ops` element-wise adds, compares or shifts on `bits`-wide integers (`nil`: fp32 adds).
    public mutating func adds(_ ops: Int, bits: Int?, pass: TrainingPass) {
        let pj = bits.map { profile.intAddPJ($0) } ?? profile.fp32AddPJ
        passes[pass.rawValue].scalarOps += ops
        passes[pass.rawValue].scalarJoules += Double(ops) * pj * 1e-12
    }

    /// Adds `ops` element-wise multiplies of `bitsA`-bit by `bitsB`-bit integers, or with `float` fp32
    /// multiplies.
    public mutating func multiplies(_ ops: Int, bitsA: Int, bitsB: Int, pass: TrainingPass, float: Bool = false) {
        let pj = float ? profile.fp32MultiplyPJ : profile.intMultiplyPJ(bitsA, bitsB)
        passes[pass.rawValue].scalarOps += ops
        passes[pass.rawValue].scalarJoules += Double(ops) * pj * 1e-12
    }

    /// Per-byte energy of each pass's traffic, pJ (set from its working set; SRAM until set).
    private var pjPerByte: [Double]? = nil

    /// Decides the memory level of `pass`'s traffic from its working set: SRAM when `bytes` fit the profile's
    /// SRAM, DRAM otherwise.
    public mutating func setWorkingSet(_ bytes: Int, pass: TrainingPass) {
        var levels = pjPerByte ?? Array(repeating: profile.sramPJPerByte, count: TrainingPass.allCases.count)
        levels[pass.rawValue] = profile.pjPerByte(workingSetBytes: bytes)
        pjPerByte = levels
    }

    /// Adds `bytes` bytes read or written in `pass`, priced at the pass's memory level.
    public mutating func traffic(_ bytes: Int, pass: TrainingPass) {
        let pj = pjPerByte?[pass.rawValue] ?? profile.sramPJPerByte
        passes[pass.rawValue].bytesMoved += bytes
        passes[pass.rawValue].memoryJoules += Double(bytes) * pj * 1e-12
    }
}
