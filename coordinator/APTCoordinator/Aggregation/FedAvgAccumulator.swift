import APTCore
import APTProtocol

/// FedAvg as a running sum: each accepted delta is folded into binary64 sums as it arrives, straight from its
/// packed codes (`QuantizedTensor.accumulate`), weighted by the samples it was trained on — no node's delta is
/// ever held. With a clip norm, a delta whose L2 norm exceeds it is scaled down to it first. The sums are kept in
/// binary64 so that the order in which updates arrive changes only their last bits, which the binary32 mean
/// rounds away: a fleet run with fixed seeds gives the same global model every time (the float32 sums it replaced
/// made every run differ, and on a pathological split such as two labels per node the difference grew to several
/// points of accuracy within 20 rounds). Partial sums of a relay tier can be added later.
public struct FedAvgAccumulator: Sendable {
    /// The weighted sums, one per parameter tensor.
    public private(set) var sums: [[Double]]
    /// The sum of weights folded in.
    public private(set) var totalWeight: Double = 0
    /// Deltas folded in.
    public private(set) var contributions = 0
    /// Clip deltas to this L2 norm (nil: no clipping).
    public let clipNorm: Double?

    /// Empty sums for tensors of `sizes`.
    public init(tensorSizes sizes: [Int], clipNorm: Double? = nil) {
        sums = sizes.map { [Double](repeating: 0, count: $0) }
        self.clipNorm = clipNorm
    }

    /// Folds in `delta` (checked by `DeltaCheck`, whose norm is `norm`) with weight `samples`.
    public mutating func add(_ delta: [QuantizedTensor], samples: Int, norm: Double) {
        precondition(delta.count == sums.count, "FedAvgAccumulator: \(delta.count) tensors for \(sums.count)")
        guard samples > 0 else { return }
        var w = Double(samples)
        if let clip = clipNorm, norm > clip, norm > 0 { w *= clip / norm }
        for (i, t) in delta.enumerated() {
            sums[i].withUnsafeMutableBufferPointer { t.accumulate(into: $0, weight: w) }
        }
        totalWeight += Double(samples)
        contributions += 1
    }

    /// The weighted mean delta, tensor by tensor (zeros when nothing was added).
    public func mean() -> [[Float]] {
        guard totalWeight > 0 else { return sums.map { $0.map { Float($0) } } }
        return sums.map { $0.map { Float($0 / totalWeight) } }
    }
}
