/// Everything a layer needs from the run while it computes a pass.
public struct StepContext: Sendable {
    /// The arithmetic of the run.
    public var mode: PrecisionMode
    /// Bitwidths and rounding for fixed-point runs.
    public var quantization: QuantizationSettings
    /// Optimiser hyper-parameters.
    public var hyper: UpdateHyperparameters
    /// Randomness for stochastic rounding.
    public var random: RandomSource
    /// Where MACs and bytes are counted.
    public var meter: EnergyMeter
    /// Whether to keep what the backward pass needs.
    public var training: Bool
    /// Index of the layer being run (for the meter).
    public var layerIndex: Int = 0
    /// Whether the running layer must hand on its output as activation-bit codes (set by `Network`).
    public var quantizeOutput = false
    /// Bits of the activation codes the running layer hands on: the next weighted layer's activation bits (set
    /// by `Network`; `quantization.activationBits` and `quantization.errorBits` are the running layer's own).
    public var outputBits: Int
    /// Whether activations and errors pass between layers as codes (a fixed-point network's weighted layers hand
    /// on activation codes; pooling hands errors on as codes): `false` selects the float hand-over with the same
    /// rounding, kept as the reference the code path is tested against bit for bit.
    var codesBetweenLayers = true
    /// Whether the running layer's backward pass must hand on its input error as error-bit codes (set by
    /// `Network` for a pooling layer whose error goes to a weighted layer through ReLUs only).
    public var quantizeInputError = false
    /// Whether a ReLU lies between the running pooling layer and that weighted layer, so that the errors of
    /// outputs that were not positive are dropped before the scale is chosen.
    public var maskNonPositiveOutputs = false
    /// Whether a ReLU keeps its mask for the backward pass (set by `Network`: not when the error will come back
    /// as a pooling layer's error codes, masked by that layer's signs).
    var keepReLUMask = true
    /// Whether this step counts how much of each activation and error tensor underflows its codes' step (the
    /// controller's measure for their bits; set on one step per decision interval).
    public var measuringCodes = false
    /// Underflow of each weighted layer's input activation codes over the measured steps (by weighted ordinal).
    public var activationUnderflow: [UnderflowCounts] = []
    /// Underflow of each weighted layer's error codes over the measured steps.
    public var errorUnderflow: [UnderflowCounts] = []
    /// The weighted layer whose activation codes the running layer makes (the next one), and the one whose
    /// error codes it makes (its own, or for a pooling layer the one below): set by `Network`.
    var codeOrdinals: (activation: Int?, error: Int?) = (nil, nil)

    /// Where the running layer's activation-code underflow is counted: nil unless this step measures and the
    /// layer makes another layer's activation codes.
    private var activationSlot: Int? {
        guard measuringCodes, let k = codeOrdinals.activation, k < activationUnderflow.count else { return nil }
        return k
    }

    /// Counts `values`' underflow at `step` for the running layer's activation codes, when measuring.
    mutating func countActivationUnderflow(_ values: UnsafeBufferPointer<Float>, step: Float) {
        if let k = activationSlot { activationUnderflow[k].count(values, step: step) }
    }

    /// Adds `counts` to the running layer's activation-code underflow, when measuring.
    mutating func addActivationUnderflow(_ counts: UnderflowCounts) {
        if let k = activationSlot { activationUnderflow[k].add(counts) }
    }

    /// Counts `values`' underflow at `step` for the running layer's error codes, when measuring.
    mutating func countErrorUnderflow(_ values: UnsafeBufferPointer<Float>, step: Float) {
        guard measuringCodes, let k = codeOrdinals.error, k < errorUnderflow.count else { return }
        errorUnderflow[k].count(values, step: step)
    }

    /// Samples of the last training step whose largest logit was their label's (training accuracy).
    public var correct = 0

    /// Creates a context.
    public init(
        mode: PrecisionMode, quantization: QuantizationSettings, hyper: UpdateHyperparameters,
        random: RandomSource, meter: EnergyMeter, training: Bool
    ) {
        self.mode = mode
        self.quantization = quantization
        self.outputBits = quantization.activationBits
        self.hyper = hyper
        self.random = random
        self.meter = meter
        self.training = training
    }
}
