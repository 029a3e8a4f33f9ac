/// Which arithmetic a training run uses. All three go through the same layers and the same loop.
public enum PrecisionMode: Hashable, Sendable, CustomStringConvertible {
    /// The float32 baseline: float weights, activations, errors and momentum.
    case fp32
    /// Fixed-point everywhere at `bits` bits (weights, activations, errors, gradients, momentum), never adapted.
    case fixed(bits: Int)
    /// Adaptive Precision Training: fixed-point, per-layer weight bitwidth adapted by `PrecisionController`.
    case apt

    /// Parses `fp32`, `apt` or `fixed:N` (N in 2...16).
    public init(parsing text: String) throws(ConfigurationError) {
        switch text {
        case "fp32": self = .fp32
        case "apt": self = .apt
        default:
            let parts = text.split(separator: ":", omittingEmptySubsequences: false)
            guard parts.count == 2, parts[0] == "fixed", let n = Int(parts[1]) else {
                throw ConfigurationError("unknown precision '\(text)' (expected apt, fp32 or fixed:N with N in 2...16)")
            }
            guard (FixedPointFormat.minSupportedBits...FixedPointFormat.maxSupportedBits).contains(n) else {
                throw ConfigurationError("precision fixed:\(n) is out of range (N must be in 2...16)")
            }
            self = .fixed(bits: n)
        }
    }

    public var description: String {
        switch self {
        case .fp32: return "fp32"
        case .apt: return "apt"
        case .fixed(let b): return "fixed:\(b)"
        }
    }

    /// Whether values are integers codes (anything but fp32).
    public var isFixedPoint: Bool { self != .fp32 }

    /// N for `fixed:N`, else nil.
    public var fixedBits: Int? {
        if case .fixed(let b) = self { return b }
        return nil
    }
}
