/// The weight bitwidth of one layer over the iterations of a run.
public struct BitsHistory: Sendable, Codable, Equatable {
    /// Which of a weighted layer's tensors the history is of.
    public enum Kind: String, Sendable, Codable {
        /// Its weights: bits and fractional length, both set by the controller.
        case weights
        /// Its input activation codes: bits (the fractional length is chosen per batch).
        case activations
        /// Its error codes: bits (the fractional length is chosen per batch).
        case errors
    }
    /// Layer index in the network.
    public var layer: Int
    /// Layer name.
    public var name: String
    /// The tensor.
    public var kind: Kind
    /// The start, every change and the end: `[iteration, bits, fractionBits]` for weights (fp32: 32 and 0),
    /// `[iteration, bits]` for activations and errors.
    public var points: [[Int]]

    /// Creates a history.
    public init(layer: Int, name: String, kind: Kind, points: [[Int]]) {
        self.layer = layer
        self.name = name
        self.kind = kind
        self.points = points
    }
}

/// Energy of a run split by pass and by kind, J.
public struct EnergyBreakdown: Sendable, Codable, Equatable {
    /// Forward pass.
    public var forward: Double
    /// Errors to inputs.
    public var backwardInput: Double
    /// Weight gradients.
    public var backwardWeights: Double
    /// Optimiser updates.
    public var update: Double
    /// Multiply-accumulates.
    public var compute: Double
    /// Element-wise operations.
    public var scalar: Double
    /// Memory traffic.
    public var memory: Double

    enum CodingKeys: String, CodingKey {
        case forward, update, compute, scalar, memory
        case backwardInput = "backward_input"
        case backwardWeights = "backward_weights"
    }
}

/// Energy and traffic of one layer over a run.
public struct LayerEnergy: Sendable, Codable, Equatable {
    /// Layer index in the network.
    public var layer: Int
    /// Layer name, e.g. `conv(1→6, 5×5)`.
    public var name: String
    /// Energy by pass and by kind, J.
    public var energy: EnergyBreakdown
    /// Multiply-accumulates.
    public var macs: Int
    /// Bytes read or written.
    public var bytesMoved: Int

    /// Creates a row.
    public init(layer: Int, name: String, energy: EnergyBreakdown, macs: Int, bytesMoved: Int) {
        self.layer = layer
        self.name = name
        self.energy = energy
        self.macs = macs
        self.bytesMoved = bytesMoved
    }

    enum CodingKeys: String, CodingKey {
        case layer, name, energy, macs
        case bytesMoved = "bytes_moved"
    }
}

/// The outcome of a local training run (`apt-node train --report`). Schema: docs/report-schema.md.
public struct TrainingReport: Sendable, Codable, Equatable {
    /// Model name.
    public var model: String
    /// Precision mode, e.g. `apt`, `fp32`, `fixed:8`.
    public var precision: String
    /// The trade-off knob.
    public var tradeoff: Double
    /// Device profile used for pricing.
    public var profile: String
    /// Seed.
    public var seed: UInt64
    /// Epochs asked for.
    public var epochs: Int
    /// Batch size.
    public var batch: Int
    /// Learning rate.
    public var lr: Double
    /// Test-set accuracy at the end, 0...1.
    public var accuracy: Double
    /// Test-set mean cross-entropy at the end.
    public var loss: Double
    /// Mean training loss over the last epoch.
    public var trainLoss: Double
    /// Training energy, J (ALU + memory traffic, per the device profile).
    public var energyJ: Double
    /// Energy by pass and by kind.
    public var energyBreakdown: EnergyBreakdown
    /// Energy, MACs and traffic of every layer.
    public var energyPerLayer: [LayerEnergy]
    /// Multiply-accumulates performed in training.
    public var macs: Int
    /// Bytes of weights and biases at the end.
    public var paramBytes: Int
    /// Bytes of optimiser state at the end.
    public var optimizerBytes: Int
    /// Bytes kept for the backward pass at the peak.
    public var savedActivationBytes: Int
    /// Largest weight-gradient buffer held at once.
    public var gradientBytes: Int
    /// Largest transient workspace of a layer (outputs, transposes, unfolded patches); not in the peak.
    public var workspaceBytes: Int
    /// Peak training bytes: parameters + optimiser state + saved activations + gradients (largest seen).
    public var peakTrainBytes: Int
    /// The process's real peak resident set size, bytes (VmHWM).
    public var peakRssBytes: Int
    /// Training throughput (training steps only, no evaluation), samples per second.
    public var samplesPerS: Double
    /// Wall-clock seconds spent in training steps.
    public var trainSeconds: Double
    /// Samples trained on.
    public var samplesTrained: Int
    /// Steps taken.
    public var iterations: Int
    /// Final weight bitwidth per weighted layer.
    public var bits: [Int]
    /// Weight bitwidth of each weighted layer over the iterations.
    public var bitsHistory: [BitsHistory]
    /// Number of precision changes the controller made.
    public var precisionChanges: Int
    /// `completed`, or `energy_budget` when the energy budget stopped training early.
    public var stopReason: String

    enum CodingKeys: String, CodingKey {
        case model, precision, tradeoff, profile, seed, epochs, batch, lr, accuracy, loss, macs, bits, iterations
        case trainLoss = "train_loss"
        case energyJ = "energy_j"
        case energyBreakdown = "energy_breakdown"
        case energyPerLayer = "energy_per_layer"
        case paramBytes = "param_bytes"
        case optimizerBytes = "optimizer_bytes"
        case savedActivationBytes = "saved_activation_bytes"
        case workspaceBytes = "workspace_bytes"
        case gradientBytes = "gradient_bytes"
        case peakTrainBytes = "peak_train_bytes"
        case peakRssBytes = "peak_rss_bytes"
        case samplesPerS = "samples_per_s"
        case trainSeconds = "train_seconds"
        case samplesTrained = "samples_trained"
        case bitsHistory = "bits_history"
        case precisionChanges = "precision_changes"
        case stopReason = "stop_reason"
    }
}
