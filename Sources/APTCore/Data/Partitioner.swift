/// How a data set is split across the devices of a simulated fleet.
public enum PartitionScheme: Hashable, Sendable, CustomStringConvertible {
    /// Shuffled, equal-sized shards.
    case iid
    /// Each shard gets samples of `k` classes only.
    case labels(k: Int)
    /// Each class is split across shards in proportions drawn from Dirichlet(α): small α, skewed shards.
    case dirichlet(alpha: Double)

    /// Parses `iid`, `labels:K` or `dirichlet:α`.
    public init(parsing text: String) throws(ConfigurationError) {
        if text == "iid" {
            self = .iid
            return
        }
        let parts = text.split(separator: ":", maxSplits: 1).map(String.init)
        if parts.count == 2 && parts[0] == "labels", let k = Int(parts[1]), k >= 1 {
            self = .labels(k: k)
        } else if parts.count == 2 && parts[0] == "dirichlet", let a = Double(parts[1]), a > 0, a.isFinite {
            self = .dirichlet(alpha: a)
        } else {
            throw ConfigurationError(
                "unknown partition '\(text)' (expected iid, labels:K with K ≥ 1, or dirichlet:α with α > 0)")
        }
    }

    public var description: String {
        switch self {
        case .iid: return "iid"
        case .labels(let k): return "labels:\(k)"
        case .dirichlet(let a): return "dirichlet:\(a)"
        }
    }
}

/// Splits sample indices into shards, deterministically from a seed.
public enum Partitioner {
    /// The sample indices of every shard. Every sample goes to at most one shard; IID and `labels:K` use every
    /// sample, and so does Dirichlet.
    public static func shards(
        labels: [UInt8], classes: Int, count n: Int, scheme: PartitionScheme, seed: UInt64
    ) throws(ConfigurationError) -> [[Int]] {
        guard n >= 1 else { throw ConfigurationError("shard count must be at least 1, got \(n)") }
        guard labels.count >= n else {
            throw ConfigurationError("cannot split \(labels.count) samples into \(n) shards")
        }
        var random = RandomSource(seed: seed ^ 0x5041_5254)
        switch scheme {
        case .iid:
            var idx = Array(labels.indices)
            idx.shuffle(using: &random)
            return (0..<n).map { s in
                let lo = s * idx.count / n
                let hi = (s + 1) * idx.count / n
                return Array(idx[lo..<hi])
            }
        case .labels(let k):
            guard k <= classes else {
                throw ConfigurationError("labels:\(k) asks for more classes per shard than the \(classes) there are")
            }
            var byClass = perClass(labels: labels, classes: classes, random: &random)
            // Shard s gets classes s·k ... s·k + k − 1 (mod classes), starting from a seeded rotation.
            let rotation = Int(random.next() % UInt64(classes))
            var owners = [[Int]](repeating: [], count: classes)
            for s in 0..<n {
                for j in 0..<k { owners[(rotation + s * k + j) % classes].append(s) }
            }
            var out = [[Int]](repeating: [], count: n)
            for c in 0..<classes where !owners[c].isEmpty {
                let o = owners[c]
                let samples = byClass[c]
                for (r, s) in o.enumerated() {
                    let lo = r * samples.count / o.count
                    let hi = (r + 1) * samples.count / o.count
                    out[s].append(contentsOf: samples[lo..<hi])
                }
                byClass[c] = []
            }
            for s in out.indices { out[s].shuffle(using: &random) }
            return out
        case .dirichlet(let alpha):
            let byClass = perClass(labels: labels, classes: classes, random: &random)
            let minSize = min(10, labels.count / n)
            for _ in 0..<1000 {
                var out = [[Int]](repeating: [], count: n)
                for c in 0..<classes {
                    let samples = byClass[c]
                    var p = (0..<n).map { _ in random.nextGamma(shape: alpha) }
                    let sum = p.reduce(0, +)
                    if sum <= 0 { p = [Double](repeating: 1, count: n) }
                    let total = p.reduce(0, +)
                    var cum = 0.0
                    var lo = 0
                    for s in 0..<n {
                        cum += p[s] / total
                        let hi =
                            s == n - 1
                            ? samples.count : min(samples.count, Int((cum * Double(samples.count)).rounded()))
                        if hi > lo { out[s].append(contentsOf: samples[lo..<hi]) }
                        lo = max(lo, hi)
                    }
                }
                if out.allSatisfy({ $0.count >= minSize }) {
                    for s in out.indices { out[s].shuffle(using: &random) }
                    return out
                }
            }
            throw ConfigurationError(
                "dirichlet:\(alpha) left a shard with fewer than \(minSize) samples after 1000 draws; use a larger α or fewer shards"
            )
        }
    }

    static func perClass(labels: [UInt8], classes: Int, random: inout RandomSource) -> [[Int]] {
        var byClass = [[Int]](repeating: [], count: classes)
        for (i, l) in labels.enumerated() where Int(l) < classes { byClass[Int(l)].append(i) }
        for c in byClass.indices { byClass[c].shuffle(using: &random) }
        return byClass
    }
}
