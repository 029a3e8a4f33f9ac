import APTCore
import APTProtocol

/// Robust aggregation, coordinate by coordinate: the median, or the mean after trimming a fraction β of the
/// largest and smallest values, of every parameter across the nodes' deltas. The deltas are held at their wire
/// bitwidth (packed codes) and decoded one coordinate at a time across the nodes, so the working memory beyond
/// them is one float per node. One node sending a huge delta moves neither statistic far.
public struct CoordinateAggregator: Sendable {
    /// Which statistic.
    public enum Rule: Hashable, Sendable {
        /// The coordinate-wise median.
        case median
        /// The coordinate-wise mean of the values left after dropping ⌊β·n⌋ from each end (0 ≤ β < 0.5).
        case trimmedMean(beta: Double)
    }

    /// The rule.
    public let rule: Rule
    /// Element count of each parameter tensor.
    public let tensorSizes: [Int]
    /// Clip deltas to this L2 norm (nil: no clipping).
    public let clipNorm: Double?
    private var deltas: [[QuantizedTensor]] = []
    /// Per delta, the factor that clips it (1 when within the clip norm).
    private var factors: [Float] = []

    /// An aggregator for tensors of `sizes`.
    public init(rule: Rule, tensorSizes sizes: [Int], clipNorm: Double? = nil) {
        if case .trimmedMean(let beta) = rule {
            precondition(beta >= 0 && beta < 0.5, "trimmed mean needs 0 ≤ β < 0.5, got \(beta)")
        }
        self.rule = rule
        self.tensorSizes = sizes
        self.clipNorm = clipNorm
    }

    /// Deltas held.
    public var count: Int { deltas.count }

    /// Bytes the held deltas occupy (their packed codes and indices).
    public var heldBytes: Int {
        deltas.reduce(0) { $0 + $1.reduce(0) { $0 + $1.packedCodes.bytes.count + 4 * ($1.indices?.count ?? 0) } }
    }

    /// Holds `delta` (checked by `DeltaCheck`, whose norm is `norm`; only needed with a clip norm).
    public mutating func add(_ delta: [QuantizedTensor], norm: Double = 0) {
        precondition(delta.count == tensorSizes.count, "CoordinateAggregator: \(delta.count) tensors")
        deltas.append(delta)
        if let clip = clipNorm, norm > clip, norm > 0 { factors.append(Float(clip / norm)) } else { factors.append(1) }
    }

    /// The value of coordinate `i` of tensor `t` in `delta`.
    static func value(_ t: QuantizedTensor, _ i: Int) -> Float {
        guard let indices = t.indices else { return t.storedValue(at: i) }
        // Sparse: binary search the sorted indices.
        var lo = 0
        var hi = indices.count
        while lo < hi {
            let mid = (lo + hi) / 2
            if Int(indices[mid]) < i { lo = mid + 1 } else { hi = mid }
        }
        return lo < indices.count && Int(indices[lo]) == i ? t.storedValue(at: lo) : 0
    }

    /// The aggregate, tensor by tensor (zeros when nothing was added).
    public func aggregate() -> [[Float]] {
        let n = deltas.count
        guard n > 0 else { return tensorSizes.map { [Float](repeating: 0, count: $0) } }
        var out: [[Float]] = []
        var column = [Float](repeating: 0, count: n)
        for (t, size) in tensorSizes.enumerated() {
            var result = [Float](repeating: 0, count: size)
            for i in 0..<size {
                for k in 0..<n { column[k] = Self.value(deltas[k][t], i) * factors[k] }
                column.sort()
                switch rule {
                case .median:
                    result[i] = n % 2 == 1 ? column[n / 2] : (column[n / 2 - 1] + column[n / 2]) / 2
                case .trimmedMean(let beta):
                    let cut = Int((beta * Double(n)).rounded(.down))
                    var s: Float = 0
                    for k in cut..<(n - cut) { s += column[k] }
                    result[i] = s / Float(n - 2 * cut)
                }
            }
            out.append(result)
        }
        return out
    }
}
