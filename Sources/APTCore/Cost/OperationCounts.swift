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
