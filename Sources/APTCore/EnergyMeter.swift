/// The pass of a training step an operation belongs to.
public enum TrainingPass: Int, Sendable, CaseIterable, Codable {
    /// Forward: layer outputs.
    case forward
    /// Backward: errors propagated to the layer's input.
    case backwardInput
    /// Backward: weight gradients.
    case backwardWeights
    /// The optimiser update (momentum and weights).
    case update
}

/// Counts of what one layer did in one pass, and the energy they cost.
public struct OperationCounts: Sendable, Codable, Equatable {
    /// Multiply-accumulates.
    public var macs: Int = 0
    /// Element-wise operations (quantisation, bias, activation functions, pooling, the update's arithmetic):
    /// fp32 operations in an fp32 run, integer operations at the operands' width in a fixed-point run.
    public var scalarOps: Int = 0
    /// Bytes read or written.
    public var bytesMoved: Int = 0
    /// Energy of the MACs, J.
    public var computeJoules: Double = 0
    /// Energy of the other operations, J.
    public var scalarJoules: Double = 0
    /// Energy of the memory traffic, J.
    public var memoryJoules: Double = 0

    /// Creates empty counts.
    public init() {}

    /// Total energy, J.
    public var joules: Double { computeJoules + scalarJoules + memoryJoules }

    /// Adds `other` into these counts.
    public mutating func add(_ other: OperationCounts) {
        macs += other.macs
        scalarOps += other.scalarOps
        bytesMoved += other.bytesMoved
        computeJoules += other.computeJoules
        scalarJoules += other.scalarJoules
        memoryJoules += other.memoryJoules
    }
}

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

/// Accumulates every MAC and every byte moved, per layer and per pass, at the bitwidths actually used.
public struct EnergyMeter: Sendable {
    /// The profile used for pricing.
    public let profile: DeviceProfile
    /// `counts[layer][pass]`.
    public private(set) var counts: [[OperationCounts]]

    /// Creates a meter for `layers` layers.
    public init(profile: DeviceProfile, layers: Int) {
        self.profile = profile
        self.counts = Array(repeating: Array(repeating: OperationCounts(), count: TrainingPass.allCases.count),
                            count: layers)
    }

    /// Records what `layer` did in `pass`.
    public mutating func record(_ sheet: CostSheet, pass: TrainingPass, layer: Int) {
        counts[layer][pass.rawValue].add(sheet[pass])
    }

    /// Total energy so far, J.
    public var totalJoules: Double { counts.reduce(0) { $0 + $1.reduce(0) { $0 + $1.joules } } }

    /// Totals per pass over all layers.
    public var perPass: [TrainingPass: OperationCounts] {
        var out: [TrainingPass: OperationCounts] = [:]
        for p in TrainingPass.allCases {
            var c = OperationCounts()
            for l in counts { c.add(l[p.rawValue]) }
            out[p] = c
        }
        return out
    }

    /// Totals per layer over all passes.
    public var perLayer: [OperationCounts] {
        counts.map { l in l.reduce(into: OperationCounts()) { $0.add($1) } }
    }

    /// Energy by pass and by kind over the layers in `layers` (all layers by default), J.
    public func breakdown(layers: Range<Int>? = nil) -> EnergyBreakdown {
        let range = layers ?? counts.indices
        var byPass = Array(repeating: 0.0, count: TrainingPass.allCases.count)
        var total = OperationCounts()
        for l in range {
            for p in TrainingPass.allCases {
                byPass[p.rawValue] += counts[l][p.rawValue].joules
                total.add(counts[l][p.rawValue])
            }
        }
        return EnergyBreakdown(
            forward: byPass[TrainingPass.forward.rawValue], backwardInput: byPass[TrainingPass.backwardInput.rawValue],
            backwardWeights: byPass[TrainingPass.backwardWeights.rawValue], update: byPass[TrainingPass.update.rawValue],
            compute: total.computeJoules, scalar: total.scalarJoules, memory: total.memoryJoules)
    }

    /// Clears all counts.
    public mutating func reset() {
        for i in counts.indices { for j in counts[i].indices { counts[i][j] = OperationCounts() } }
    }
}
