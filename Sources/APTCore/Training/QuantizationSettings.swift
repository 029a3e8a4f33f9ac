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
            ("initialWeightBits", initialWeightBits), ("activationBits", activationBits), ("errorBits", errorBits),
            ("gradientBits", gradientBits), ("momentumBits", momentumBits), ("biasBits", biasBits),
        ] where !r.contains(v) {
            throw ConfigurationError(field: "quantization.\(name)", value: v, requirement: "in 2...16")
        }
    }
}
