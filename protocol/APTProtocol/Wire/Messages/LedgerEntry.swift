import APTCore

/// A node's ledger entry for one round.
public struct LedgerEntry: Hashable, Sendable {
    /// Energy spent in the round, J.
    public var energyJ: Double
    /// Peak training memory in the round, bytes.
    public var peakMemoryBytes: UInt64
    /// Final weight bits per weighted layer.
    public var bits: [UInt8]
    /// Mean training loss.
    public var loss: Double
    /// Local accuracy (0…1).
    public var accuracy: Double
    /// Wall-clock duration, seconds.
    public var durationS: Double
    /// Creates an entry.
    public init(
        energyJ: Double, peakMemoryBytes: UInt64, bits: [UInt8], loss: Double, accuracy: Double, durationS: Double
    ) {
        self.energyJ = energyJ
        self.peakMemoryBytes = peakMemoryBytes
        self.bits = bits
        self.loss = loss
        self.accuracy = accuracy
        self.durationS = durationS
    }
}
