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
    /// on activation codes, fused with the pooling above a convolution; the layer above a pooling layer hands it
    /// error codes): `false` selects the float hand-over with the same rounding (pooling layers still make their
    /// input error's codes, from the floats handed to them), kept as the reference the code path is tested against
    /// bit for bit.
    var codesBetweenLayers = true
    /// Whether the running layer's backward pass must hand on its input error as error-bit codes (set by
    /// `Network` for a pooling layer whose error goes to a weighted layer through ReLUs only).
    public var quantizeInputError = false
    /// Whether a ReLU lies between the running pooling layer and that weighted layer, so that the errors of
    /// outputs that were not positive are dropped before the scale is chosen.
    public var maskNonPositiveOutputs = false
    /// Randomness for stochastic rounding of error codes: a stream of its own, so that error codes made an image
    /// at a time inside a layer's backward pass draw what they would draw when made after it.
    public var errorRandom: RandomSource
    /// Set by `Network` while a weighted layer runs its backward pass when its input error goes straight (through a
    /// flatten at most) to a pooling layer that hands error codes on: the layer then makes that error's codes an
    /// image at a time (`ImageErrorCodes`), masked by the pooling layer's signs when a ReLU lies beneath it, at
    /// the bits of the weighted layer below, instead of its float input error.
    var inputErrorCodes: InputErrorCodes?
    /// Set by `Network` while a convolution runs its forward pass when the max-pooling layer above it (through a
    /// ReLU or not) is fused into it (`Network.fusedPool`): it hands on pooled codes.
    var fusedPool: FusedPool?
    /// What the fused pooling layer keeps, left by the convolution for `Network` to hand over.
    var fusedPoolResult: FusedPoolResult?
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

    /// Where the error-code underflow of weighted layer `ordinal` (nil: the running layer's) is counted: nil
    /// unless this step measures.
    private func errorSlot(_ ordinal: Int?) -> Int? {
        guard measuringCodes, let k = ordinal ?? codeOrdinals.error, k < errorUnderflow.count else { return nil }
        return k
    }

    /// Counts `values`' underflow at `step` for the running layer's error codes, when measuring.
    mutating func countErrorUnderflow(_ values: UnsafeBufferPointer<Float>, step: Float) {
        if let k = errorSlot(nil) { errorUnderflow[k].count(values, step: step) }
    }

    /// Empty counts to fill for the error codes of weighted layer `ordinal` (nil: the running layer's), or nil
    /// when this step does not measure them.
    func errorUnderflowCounter(ordinal: Int? = nil) -> UnderflowCounts? {
        errorSlot(ordinal).map { _ in UnderflowCounts() }
    }

    /// Adds `counts` (from `errorUnderflowCounter`) to weighted layer `ordinal`'s error underflow (nil: the
    /// running layer's).
    mutating func addErrorUnderflow(_ counts: UnderflowCounts?, ordinal: Int? = nil) {
        if let counts, let k = errorSlot(ordinal) { errorUnderflow[k].add(counts) }
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
        var fork = random
        self.errorRandom = RandomSource(seed: fork.next() ^ 0x4552_524F_5253)
        self.meter = meter
        self.training = training
    }
}

/// How a weighted layer hands its input error to the pooling layer beneath it as codes (`StepContext`).
struct InputErrorCodes: Sendable {
    /// The pooling layer's sign bits, one per pooled output, when a ReLU lies beneath it.
    var mask: [UInt64]?
    /// Bits of the codes (the error bits of the weighted layer below the pooling layer).
    var bits: Int
    /// That weighted layer's ordinal (where the codes' underflow is counted).
    var ordinal: Int
}

/// A max-pooling layer fused into the convolution below it (`StepContext.fusedPool`).
struct FusedPool: Sendable {
    /// Window size and stride.
    var size: Int
    /// Whether a ReLU lies between them.
    var relu: Bool
}

/// What a fused pooling layer keeps for its backward pass.
struct FusedPoolResult: Sendable {
    /// Each output's arg-max.
    var argmax: PackedArgmax
    /// The outputs' signs (set where positive).
    var signs: [UInt64]
    /// The pooling layer's per-sample input shape.
    var inputShape: [Int]
}
