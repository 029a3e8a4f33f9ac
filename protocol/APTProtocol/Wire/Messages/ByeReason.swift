import APTCore

/// Why a peer leaves.
public enum ByeReason: UInt8, Sendable {
    /// Nothing wrong.
    case normal = 0
    /// The node's energy budget is spent.
    case energyBudgetExhausted = 1
    /// The node's memory budget cannot hold the work.
    case memoryBudget = 2
    /// The process is shutting down.
    case shutdown = 3
    /// The peer gave up after an error.
    case failure = 4
}
