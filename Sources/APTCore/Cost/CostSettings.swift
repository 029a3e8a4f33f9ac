/// What pricing a step depends on besides the layer itself.
public struct CostSettings: Sendable {
    /// The arithmetic of the run.
    public var mode: PrecisionMode
    /// Bitwidths of activations, errors and momentum.
    public var quantization: QuantizationSettings
    /// Momentum coefficient (a momentum buffer is read and written when non-zero).
    public var momentum: Float
    /// Pricing.
    public var profile: DeviceProfile
    /// Whether the layer hands its output on as activation-bit codes (fixed point, every weighted layer but
    /// the last) rather than 32-bit values.
    public var quantizedOutput: Bool
    /// Creates settings.
    public init(
        mode: PrecisionMode, quantization: QuantizationSettings, momentum: Float, profile: DeviceProfile,
        quantizedOutput: Bool = false
    ) {
        self.mode = mode
        self.quantization = quantization
        self.momentum = momentum
        self.profile = profile
        self.quantizedOutput = quantizedOutput
    }
}

extension CostSettings {
    /// Width of the activation codes element-wise layers work on: `nil` (fp32 values) in an fp32 run.
    public var activationCodeBits: Int? { mode.isFixedPoint ? quantization.activationBits : nil }
    /// Width of the error codes element-wise layers work on: `nil` (fp32 values) in an fp32 run.
    public var errorCodeBits: Int? { mode.isFixedPoint ? quantization.errorBits : nil }
}
