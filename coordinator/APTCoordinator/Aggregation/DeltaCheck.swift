import APTCore
import APTProtocol

/// Why a node's delta is not averaged. Each is recorded with the round and the node.
public enum DeltaRejection: Error, Equatable, CustomStringConvertible, Sendable {
    /// The update answers another round or attempt.
    case stale(round: UInt32, attempt: UInt32, expectedRound: UInt32, expectedAttempt: UInt32)
    /// The number of tensors differs from the model's.
    case tensorCount(got: Int, expected: Int)
    /// Tensor `index` names another layer or has another size than the model's.
    case shape(index: Int, layer: UInt16, count: Int, expectedCount: Int)
    /// The delta's L2 norm is not finite or is beyond the absurd-norm bound.
    case norm(Double, limit: Double)

    public var description: String {
        switch self {
        case .stale(let r, let a, let er, let ea):
            return "stale update for round \(r) attempt \(a) (the round is \(er) attempt \(ea))"
        case .tensorCount(let g, let e): return "\(g) tensors, the model has \(e)"
        case .shape(let i, let l, let c, let e):
            return "tensor \(i) is layer \(l) with \(c) values; the model's tensor \(i) has \(e)"
        case .norm(let n, let l): return "delta norm \(n) is not finite or above the limit \(l)"
        }
    }
}

/// The checks every UPDATE's delta passes before it is aggregated: the right round and attempt, one tensor per
/// parameter tensor of the model in order with the right sizes, and a finite norm within a bound. Codes cannot
/// be NaN, the decoder refuses non-finite scales and float32 values, so a finite norm means finite values.
public struct DeltaCheck: Sendable {
    /// Element count of each parameter tensor, in wire order.
    public let tensorSizes: [Int]
    /// Deltas with an L2 norm above this are refused as absurd.
    public let maxNorm: Double

    /// Checks against `model`; `maxNorm` bounds the L2 norm of a whole delta.
    public init(model: ModelSpec, maxNorm: Double = 1e6) throws(ConfigurationError) {
        tensorSizes = try model.parameterCounts()
        self.maxNorm = maxNorm
    }

    /// The L2 norm of a delta, from its packed codes (binary64 sums).
    public static func norm(_ delta: [QuantizedTensor]) -> Double {
        var sum = 0.0
        for t in delta {
            if t.isFloat32 {
                for i in 0..<t.packedCodes.count {
                    let v = Double(t.storedValue(at: i))
                    sum += v * v
                }
                continue
            }
            let s = Double(t.scale.value)
            // Squares of codes summed exactly in 64-bit integers (each at most 2^30), one pass over the packed codes.
            var codes: Int64 = 0
            t.packedCodes.forEachCodeQuickly { _, c in codes &+= c * c }
            sum += Double(codes) * s * s
        }
        return sum.squareRoot()
    }

    /// Checks `update` as the answer to `round`/`attempt`; returns its norm.
    @discardableResult
    public func check(_ update: Update, round: UInt32, attempt: UInt32) throws(DeltaRejection) -> Double {
        guard update.round == round, update.attempt == attempt else {
            throw .stale(round: update.round, attempt: update.attempt, expectedRound: round, expectedAttempt: attempt)
        }
        guard update.delta.count == tensorSizes.count else {
            throw .tensorCount(got: update.delta.count, expected: tensorSizes.count)
        }
        for (i, t) in update.delta.enumerated() where Int(t.layer) != i || t.count != tensorSizes[i] {
            throw .shape(index: i, layer: t.layer, count: t.count, expectedCount: tensorSizes[i])
        }
        let n = Self.norm(update.delta)
        guard n.isFinite, n <= maxNorm else { throw .norm(n, limit: maxNorm) }
        return n
    }
}
