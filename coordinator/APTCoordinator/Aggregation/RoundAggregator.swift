import APTProtocol

/// One round's aggregation under an `AggregationRule`: FedAvg and FedAdam fold each delta into a running
/// sample-weighted sum as it arrives (`FedAvgAccumulator`), median and trimmed mean hold the deltas at their wire
/// bitwidth (`CoordinateAggregator`). With a clip norm, a delta whose L2 norm exceeds it is scaled down to it
/// first, under every rule.
public struct RoundAggregator: Sendable {
    enum Store: Sendable {
        case running(FedAvgAccumulator)
        case held(CoordinateAggregator)
    }

    /// The rule.
    public let rule: AggregationRule
    var store: Store

    /// An empty round for tensors of `sizes`.
    public init(rule: AggregationRule, tensorSizes sizes: [Int], clipNorm: Double? = nil) {
        self.rule = rule
        switch rule {
        case .fedAvg, .fedAdam:
            store = .running(FedAvgAccumulator(tensorSizes: sizes, clipNorm: clipNorm))
        case .median:
            store = .held(CoordinateAggregator(rule: .median, tensorSizes: sizes, clipNorm: clipNorm))
        case .trimmedMean(let beta):
            store = .held(CoordinateAggregator(rule: .trimmedMean(beta: beta), tensorSizes: sizes, clipNorm: clipNorm))
        }
    }

    /// Deltas added.
    public var count: Int {
        switch store {
        case .running(let a): return a.contributions
        case .held(let a): return a.count
        }
    }

    /// Adds a checked delta (`norm` from `DeltaCheck`) trained on `samples` samples.
    public mutating func add(_ delta: [QuantizedTensor], samples: Int, norm: Double) {
        // The store is emptied while the aggregator is bound, so that the binding is the only reference to its
        // sums and they are updated in place rather than copied whole on every update.
        let taken = store
        store = .running(FedAvgAccumulator(tensorSizes: []))
        switch consume taken {
        case .running(var a):
            a.add(delta, samples: samples, norm: norm)
            store = .running(a)
        case .held(var a):
            if samples > 0 { a.add(delta, norm: norm) }
            store = .held(a)
        }
    }

    /// The round's aggregate delta (zeros when nothing was added).
    public func aggregate() -> [[Float]] {
        switch store {
        case .running(let a): return a.mean()
        case .held(let a): return a.aggregate()
        }
    }
}
