/// Accumulates every MAC and every byte moved, per layer and per pass, at the bitwidths actually used.
public struct EnergyMeter: Sendable {
    /// The profile used for pricing.
    public let profile: DeviceProfile
    /// `counts[layer][pass]`.
    public private(set) var counts: [[OperationCounts]]

    /// Creates a meter for `layers` layers.
    public init(profile: DeviceProfile, layers: Int) {
        self.profile = profile
        self.counts = Array(
            repeating: Array(repeating: OperationCounts(), count: TrainingPass.allCases.count),
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
            backwardWeights: byPass[TrainingPass.backwardWeights.rawValue],
            update: byPass[TrainingPass.update.rawValue],
            compute: total.computeJoules, scalar: total.scalarJoules, memory: total.memoryJoules)
    }

    /// Clears all counts.
    public mutating func reset() {
        for i in counts.indices { for j in counts[i].indices { counts[i][j] = OperationCounts() } }
    }
}
