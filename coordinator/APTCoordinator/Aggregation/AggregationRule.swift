/// How a round's accepted deltas become one step of the global model (`--aggregator`), after Flower's
/// strategies: FedAvg (McMahan et al., 2017), FedAdam (Reddi et al., "Adaptive Federated Optimization", 2021),
/// FedMedian and FedTrimmedAvg (Yin et al., 2018).
public enum AggregationRule: Hashable, Sendable, CustomStringConvertible {
    /// The sample-weighted mean delta, folded in as it arrives; the model moves by `serverLR ×` it.
    case fedAvg
    /// The sample-weighted mean delta as a pseudo-gradient for Adam on the server (β₁ 0.9, β₂ 0.99, τ 10⁻³).
    case fedAdam
    /// The coordinate-wise median of the deltas (each delta counts once, whatever its samples).
    case median
    /// The coordinate-wise mean after dropping ⌊β·n⌋ of the deltas from each end, 0 ≤ β < 0.5.
    case trimmedMean(beta: Double)

    /// Parses `fedavg`, `fedadam`, `median` or `trimmed-mean:β`; nil for anything else.
    public init?(parsing text: String) {
        switch text {
        case "fedavg": self = .fedAvg
        case "fedadam": self = .fedAdam
        case "median": self = .median
        default:
            guard text.hasPrefix("trimmed-mean:"), let beta = Double(text.dropFirst("trimmed-mean:".count)),
                beta >= 0, beta < 0.5
            else { return nil }
            self = .trimmedMean(beta: beta)
        }
    }

    /// The server learning rate used when none is given: 1 (apply the aggregate as it is), 0.01 for FedAdam
    /// (whose steps are normalised per coordinate, so η is the step size itself).
    public var defaultServerLR: Double {
        if case .fedAdam = self { return 0.01 }
        return 1
    }

    /// The spelling `init(parsing:)` accepts.
    public var description: String {
        switch self {
        case .fedAvg: return "fedavg"
        case .fedAdam: return "fedadam"
        case .median: return "median"
        case .trimmedMean(let beta): return "trimmed-mean:\(beta)"
        }
    }
}
