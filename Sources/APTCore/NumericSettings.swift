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
}

/// Bitwidths and rounding of every tensor kind in a fixed-point run. Ignored by `fp32`.
public struct QuantizationSettings: Hashable, Sendable, Codable {
    /// Bits of each layer's weights at the start (APT adapts them from here).
    public var initialWeightBits: Int
    /// Bits of layer inputs (saved for the backward pass), dynamic power-of-two scale per batch.
    public var activationBits: Int
    /// Bits of back-propagated errors, dynamic scale per batch.
    public var errorBits: Int
    /// Bits of the weight gradient before the update, dynamic scale per block of rows.
    public var gradientBits: Int
    /// Bits of the momentum buffer, scale adapted as it saturates or shrinks.
    public var momentumBits: Int
    /// Bits of biases (kept wider, as integer inference schemes do; they are a tiny share of memory).
    public var biasBits: Int
    /// Rounding of activations.
    public var activationRounding: RoundingMode
    /// Rounding of errors.
    public var errorRounding: RoundingMode
    /// Rounding of gradients and momentum.
    public var gradientRounding: RoundingMode
    /// Rounding of the weight update onto the weight grid.
    public var updateRounding: RoundingMode

    /// Creates settings; every bitwidth must be in 2...16.
    public init(
        initialWeightBits: Int, activationBits: Int, errorBits: Int, gradientBits: Int, momentumBits: Int,
        biasBits: Int = 16, activationRounding: RoundingMode = .nearest, errorRounding: RoundingMode = .stochastic,
        gradientRounding: RoundingMode = .nearest, updateRounding: RoundingMode = .nearest
    ) {
        self.initialWeightBits = initialWeightBits
        self.activationBits = activationBits
        self.errorBits = errorBits
        self.gradientBits = gradientBits
        self.momentumBits = momentumBits
        self.biasBits = biasBits
        self.activationRounding = activationRounding
        self.errorRounding = errorRounding
        self.gradientRounding = gradientRounding
        self.updateRounding = updateRounding
    }

    /// Checks every bitwidth.
    public func validate() throws(ConfigurationError) {
        let r = FixedPointFormat.minSupportedBits...FixedPointFormat.maxSupportedBits
        for (name, v) in [
            ("weight", initialWeightBits), ("activation", activationBits), ("error", errorBits),
            ("gradient", gradientBits), ("momentum", momentumBits), ("bias", biasBits),
        ] where !r.contains(v) {
            throw ConfigurationError("\(name) bits \(v) out of range (must be in 2...16)")
        }
    }
}

/// A configuration that cannot be used, with a message naming what was wrong.
public struct ConfigurationError: Error, CustomStringConvertible, Equatable {
    /// What was wrong.
    public var message: String
    /// Creates an error with `message`.
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}
