/// Applies a round's aggregate delta to the global model: `x += η·Δ` for FedAvg, median and trimmed mean; for
/// FedAdam, Adam on the pseudo-gradient Δ without bias correction, as Reddi et al. (2021, Algorithm 2) write it:
/// `m ← β₁m + (1−β₁)Δ`, `v ← β₂v + (1−β₂)Δ²`, `x += η·m / (√v + τ)`. FedAdam's moments live in memory: a
/// restarted coordinator starts them again from zero (the model itself comes back from the ledger's checkpoint).
public struct ServerOptimizer: Sendable {
    /// The rule whose server step this is.
    public let rule: AggregationRule
    /// The server learning rate η.
    public let learningRate: Double
    /// FedAdam's β₁, β₂ and τ.
    public static let beta1: Float = 0.9, beta2: Float = 0.99, tau: Float = 1e-3
    var m: [[Float]] = []
    var v: [[Float]] = []

    /// An optimizer for `rule` with server learning rate `learningRate` (the rule's default when nil).
    public init(rule: AggregationRule, learningRate: Double? = nil) {
        self.rule = rule
        self.learningRate = learningRate ?? rule.defaultServerLR
    }

    /// Moves `model` by `delta`.
    public mutating func apply(_ delta: [[Float]], to model: inout [[Float]]) {
        precondition(delta.count == model.count, "ServerOptimizer: \(delta.count) tensors for \(model.count)")
        let eta = Float(learningRate)
        guard case .fedAdam = rule else {
            for t in model.indices {
                model[t].withUnsafeMutableBufferPointer { x in
                    delta[t].withUnsafeBufferPointer { d in for i in x.indices { x[i] += eta * d[i] } }
                }
            }
            return
        }
        if m.isEmpty {
            m = delta.map { [Float](repeating: 0, count: $0.count) }
            v = m
        }
        let (b1, b2, tau) = (Self.beta1, Self.beta2, Self.tau)
        for t in model.indices {
            for i in model[t].indices {
                let d = delta[t][i]
                m[t][i] = b1 * m[t][i] + (1 - b1) * d
                v[t][i] = b2 * v[t][i] + (1 - b2) * d * d
                model[t][i] += eta * m[t][i] / (v[t][i].squareRoot() + tau)
            }
        }
    }
}
