/// What a quantiser saw of a tensor's non-zero values: how many there were, and how many lay within half a step
/// of zero, so that rounding to nearest makes them 0. The fraction is the code analogue of APT's update
/// underflow: a tensor whose small values vanish needs a finer step relative to its largest value (more bits);
/// one whose values hardly ever vanish can afford a coarser one.
public struct UnderflowCounts: Sendable, Hashable, Codable {
    /// Non-zero values seen.
    public var nonzero = 0
    /// Of those, the ones within half a step of zero.
    public var under = 0

    /// Empty counts.
    public init() {}

    /// The fraction of non-zero values that vanish (0 when none were seen).
    public var fraction: Double { nonzero == 0 ? 0 : Double(under) / Double(nonzero) }

    /// Adds `other`'s counts.
    public mutating func add(_ other: UnderflowCounts) {
        nonzero += other.nonzero
        under += other.under
    }

    /// Adds the non-zero values of `values` and those within half of `step` of zero.
    public mutating func count(_ values: UnsafeBufferPointer<Float>, step: Float) {
        let half = step / 2
        var nz = 0
        var small = 0
        for v in values where v != 0 {
            nz += 1
            if abs(v) < half { small += 1 }
        }
        nonzero += nz
        under += small
    }
}
