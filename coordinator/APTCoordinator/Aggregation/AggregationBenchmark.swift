import APTCore
import APTProtocol

/// The coordinator's aggregation path, timed as it runs in `serve`: each UPDATE's wire bytes are decoded
/// (`Frame.decode` with the serving limits), checked (`DeltaCheck`), folded in (`RoundAggregator`), and at the
/// round's end aggregated and applied to the float32 global model (`ServerOptimizer`). Throughput is the UPDATE
/// wire bytes of a round over the time of all of that.
public enum AggregationBenchmark {
    /// One measured configuration.
    public struct Row: Codable, Sendable, Equatable {
        /// The model.
        public var model: String
        /// The aggregation rule.
        public var rule: String
        /// Bits per delta value on the wire.
        public var bits: Int
        /// Updates per round.
        public var nodes: Int
        /// Bytes of one UPDATE frame.
        public var updateBytes: Int
        /// Rounds timed.
        public var rounds: Int
        /// Median time of a round's aggregation, s.
        public var roundSeconds: Double
        /// UPDATE wire bytes decoded and folded per second, MB/s (10⁶ B).
        public var megabytesPerSecond: Double
        /// Updates folded per second.
        public var updatesPerSecond: Double
    }

    /// `nodes` UPDATE frames of `model`'s full delta at `bits` bits: dense, power-of-two-free (float32 scale),
    /// values drawn around ±10⁻³ as local SGD deltas are. The values do not change the work: every code is read.
    public static func updates(model: ModelSpec, bits: Int, nodes: Int, round: UInt32 = 1) throws -> [[UInt8]] {
        let sizes = try model.parameterCounts()
        var random = RandomSource(seed: 11)
        return (0..<nodes).map { n in
            let delta = sizes.enumerated().map { i, count in
                let values = (0..<count).map { _ in (random.nextUnitFloat() - 0.5) * 2e-3 }
                return QuantizedTensor.quantize(
                    values, layer: UInt16(i), bits: bits, rounding: .stochastic, random: &random)
            }
            let update = Update(
                round: round, attempt: 0, samplesTrained: UInt64(64 * (n + 1)), stepsDone: 10, stepsAsked: 10,
                delta: delta,
                ledger: LedgerEntry(
                    energyJ: 1e-4, peakMemoryBytes: 1 << 20, bits: [UInt8](repeating: 12, count: sizes.count / 2),
                    loss: 1, accuracy: 0.5, durationS: 1))
            return Frame.encode(.update(update))
        }
    }

    /// Times `rounds` rounds (after one untimed) of aggregating `frames` under `rule`.
    public static func run(
        model: ModelSpec, rule: AggregationRule, bits: Int, frames: [[UInt8]], rounds: Int
    ) throws -> Row {
        let sizes = try model.parameterCounts()
        let limits = try DecodeLimits(serving: model)
        let check = try DeltaCheck(model: model)
        var global = sizes.map { [Float](repeating: 0, count: $0) }
        var optimizer = ServerOptimizer(rule: rule)
        var times: [Double] = []
        for r in 0...max(1, rounds) {
            let start = MonotonicClock.seconds()
            var round = RoundAggregator(rule: rule, tensorSizes: sizes)
            for frame in frames {
                guard case .update(let u) = try Frame.decode(frame, limits: limits) else {
                    throw WireError.invalidValue(field: "benchmark", reason: "not an UPDATE")
                }
                let norm = try check.check(u, round: u.round, attempt: u.attempt)
                round.add(u.delta, samples: Int(u.samplesTrained), norm: norm)
            }
            optimizer.apply(round.aggregate(), to: &global)
            if r > 0 { times.append(MonotonicClock.seconds() - start) }
        }
        let median = times.sorted()[times.count / 2]
        let bytes = frames.reduce(0) { $0 + $1.count }
        return Row(
            model: model.name, rule: rule.description, bits: bits, nodes: frames.count,
            updateBytes: frames.first?.count ?? 0, rounds: times.count, roundSeconds: median,
            megabytesPerSecond: Double(bytes) / median / 1e6, updatesPerSecond: Double(frames.count) / median)
    }
}
