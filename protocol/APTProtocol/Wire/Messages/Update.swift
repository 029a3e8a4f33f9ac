import APTCore

/// A node's result for a round.
public struct Update: Hashable, Sendable {
    /// Round number.
    public var round: UInt32
    /// Samples trained on.
    public var samplesTrained: UInt64
    /// The quantised weight delta, one tensor per parameter tensor.
    public var delta: [QuantizedTensor]
    /// What the round cost.
    public var ledger: LedgerEntry
    /// Creates an UPDATE.
    public init(round: UInt32, samplesTrained: UInt64, delta: [QuantizedTensor], ledger: LedgerEntry) {
        self.round = round
        self.samplesTrained = samplesTrained
        self.delta = delta
        self.ledger = ledger
    }
}
