/// The pass of a training step an operation belongs to.
public enum TrainingPass: Int, Sendable, CaseIterable, Codable {
    /// Forward: layer outputs.
    case forward
    /// Backward: errors propagated to the layer's input.
    case backwardInput
    /// Backward: weight gradients.
    case backwardWeights
    /// The optimiser update (momentum and weights).
    case update
}
