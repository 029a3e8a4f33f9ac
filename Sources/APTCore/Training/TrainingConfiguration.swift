/// Everything that defines a local training run.
public struct TrainingConfiguration: Sendable {
    /// The network.
    public var model: ModelSpec
    /// fp32, fixed:N or apt.
    public var precision: PrecisionMode
    /// The APT trade-off knob in [0, 1]: higher saves more energy and memory, lower keeps more accuracy.
    public var tradeoff: Double
    /// Passes over the training data.
    public var epochs: Int
    /// Samples per step.
    public var batchSize: Int
    /// SGD learning rate.
    public var learningRate: Float
    /// SGD momentum.
    public var momentum: Float
    /// Seed of every random choice.
    public var seed: UInt64
    /// Energy pricing.
    public var profile: DeviceProfile
    /// Stop before a step would take total energy above this many joules.
    public var energyBudget: Double?
    /// Refuse to start when the peak training memory would exceed this many bytes.
    public var memoryBudget: Int?
    /// The precision controller's settings (APT only).
    public var controller: ControllerSettings
    /// Bitwidths and rounding (fixed point only).
    public var quantization: QuantizationSettings

    /// The default trade-off knob.
    public static let defaultTradeoff = 0.5

    /// A configuration with the defaults of `precision` and `tradeoff` for everything not given.
    public init(
        model: ModelSpec, precision: PrecisionMode, tradeoff: Double = TrainingConfiguration.defaultTradeoff,
        epochs: Int = 3, batchSize: Int = 64, learningRate: Float = 0.05, momentum: Float = 0.9, seed: UInt64 = 0,
        profile: DeviceProfile = .generic45nm, energyBudget: Double? = nil, memoryBudget: Int? = nil
    ) {
        self.model = model
        self.precision = precision
        self.tradeoff = tradeoff
        self.epochs = epochs
        self.batchSize = batchSize
        self.learningRate = learningRate
        self.momentum = momentum
        self.seed = seed
        self.profile = profile
        self.energyBudget = energyBudget
        self.memoryBudget = memoryBudget
        self.controller = ControllerSettings.forTradeoff(tradeoff)
        self.quantization = TrainingConfiguration.defaultQuantization(precision: precision, tradeoff: tradeoff)
        if precision == .apt {
            // Weights start at 8 bits, or at the controller's floor when that is higher.
            quantization.initialWeightBits = min(
                max(quantization.initialWeightBits, controller.minBits),
                controller.maxBits)
        }
    }

    /// Default bitwidths. `fixed:N` uses N bits for every tensor. APT asks for 8-bit weights (raised to the
    /// controller's floor by `init`) with gradients at 16 bits. Below knob 0.75 updates round to nearest
    /// (underflow is what the controller answers with more bits) and momentum is 16 bits. From 0.75 weights stay
    /// within 8 bits (Int8 storage), updates round stochastically so that sub-step updates survive on average,
    /// and momentum is 8 bits (Int8 storage) with gradients and momentum rounded stochastically (rounded to
    /// nearest, an 8-bit momentum loses its small components: 3.3 points on mlp). Activation and error bits are
    /// 8 at knob 0.5 and drop by one per further 0.25 (7 at 0.75, 6 at 1; from 0.75 they are where the
    /// controller starts, `ControllerSettings.forTradeoff`). Below the default the knob spends
    /// memory and energy on the codes that carry the training signal: errors are 16-bit codes below 0.5, and
    /// activations too below 0.25 (Int16 storage), so each step down costs memory as well as energy.
    public static func defaultQuantization(precision: PrecisionMode, tradeoff: Double) -> QuantizationSettings {
        switch precision {
        case .fixed(let b):
            return QuantizationSettings(
                initialWeightBits: b, activationBits: b, errorBits: b, gradientBits: b,
                momentumBits: b)
        case .fp32, .apt:
            let io = aggressiveCodeBits(tradeoff)
            let aggressive = tradeoff >= 0.75
            return QuantizationSettings(
                initialWeightBits: 8, activationBits: tradeoff < 0.25 ? 16 : io, errorBits: tradeoff < 0.5 ? 16 : io,
                gradientBits: 16,
                momentumBits: aggressive ? 8 : 16, gradientRounding: aggressive ? .stochastic : .nearest,
                updateRounding: aggressive ? .stochastic : .nearest)
        }
    }

    /// The activation and error width at knob `t` from 0.5 up: 8, one bit fewer per 0.25 above 0.5.
    static func aggressiveCodeBits(_ t: Double) -> Int { 8 - Int((max(0, t - 0.5) * 4).rounded(.down)) }

    /// The activation-code widths the run may use: the controller's range where it adapts them (APT), else the
    /// quantisation settings' one width.
    public var activationBitRange: ClosedRange<Int> {
        (precision == .apt ? controller.activationBits : nil) ?? quantization
            .activationBits...quantization.activationBits
    }

    /// The error-code widths the run may use, as `activationBitRange`.
    public var errorBitRange: ClosedRange<Int> {
        (precision == .apt ? controller.errorBits : nil) ?? quantization.errorBits...quantization.errorBits
    }

    /// Checks every field, naming the first that is wrong.
    public func validate() throws(ConfigurationError) {
        guard epochs >= 1 else { throw ConfigurationError(field: "epochs", value: epochs, requirement: "at least 1") }
        guard batchSize >= 1 else {
            throw ConfigurationError(field: "batchSize", value: batchSize, requirement: "at least 1")
        }
        guard learningRate > 0, learningRate.isFinite else {
            throw ConfigurationError(field: "learningRate", value: learningRate, requirement: "a positive number")
        }
        guard momentum >= 0, momentum < 1 else {
            throw ConfigurationError(field: "momentum", value: momentum, requirement: "in [0, 1)")
        }
        guard tradeoff >= 0, tradeoff <= 1 else {
            throw ConfigurationError(field: "tradeoff", value: tradeoff, requirement: "in [0, 1]")
        }
        if let e = energyBudget, !(e > 0 && e.isFinite) {
            throw ConfigurationError(field: "energyBudget", value: e, requirement: "a positive number of joules")
        }
        if let m = memoryBudget, m <= 0 {
            throw ConfigurationError(field: "memoryBudget", value: m, requirement: "a positive number of bytes")
        }
        try profile.validate()
        try model.validate()
        if precision.isFixedPoint { try quantization.validate() }
        if precision == .apt { try controller.validate() }
    }
}
