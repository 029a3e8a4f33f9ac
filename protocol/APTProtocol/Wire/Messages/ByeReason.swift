import APTCore

/// Why a peer leaves (BYE). A receiver keeps an unknown reason (from a newer minor version) as it is and
/// treats it like `failure`.
public struct ByeReason: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    /// The code on the wire.
    public var rawValue: UInt8
    /// Wraps a code.
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// Nothing wrong.
    public static let normal = ByeReason(rawValue: 0)
    /// The node's energy budget is spent.
    public static let energyBudgetExhausted = ByeReason(rawValue: 1)
    /// The node's memory budget cannot hold the work.
    public static let memoryBudget = ByeReason(rawValue: 2)
    /// The process is shutting down.
    public static let shutdown = ByeReason(rawValue: 3)
    /// The peer gave up after an error.
    public static let failure = ByeReason(rawValue: 4)

    public var description: String {
        switch self {
        case .normal: return "normal"
        case .energyBudgetExhausted: return "energy budget exhausted"
        case .memoryBudget: return "memory budget"
        case .shutdown: return "shutdown"
        case .failure: return "failure"
        default: return "reason \(rawValue)"
        }
    }
}
