import APTCore
import APTProtocol
import Testing

@testable import APTCoordinator

/// Aggregation of quantised deltas: FedAvg as a running sum, robust statistics, and the checks before either.
@Suite("Aggregation")
struct AggregationTests {
    static let model = ModelSpec(
        name: "agg", input: [1, 2, 2], classes: 2, layers: [.flatten, .linear(outputs: 3), .relu, .linear(outputs: 2)])
    static let sizes = [12, 3, 6, 2]

    /// A dense delta of `values` per tensor at `bits` bits (f32 scale).
    static func delta(_ values: [[Float]], bits: Int = 16, topK: Int? = nil) -> [QuantizedTensor] {
        var random = RandomSource(seed: 1)
        return values.enumerated().map { i, v in
            QuantizedTensor.quantize(v, layer: UInt16(i), bits: bits, topK: topK, random: &random)
        }
    }

    static func values(seed: UInt64, scale: Float = 1) -> [[Float]] {
        var r = RandomSource(seed: seed)
        return sizes.map { n in (0..<n).map { _ in (r.nextUnitFloat() * 2 - 1) * scale } }
    }

    static func update(_ d: [QuantizedTensor], round: UInt32 = 3, samples: UInt64 = 10) -> Update {
        Update(
            round: round, attempt: 0, samplesTrained: samples, delta: d,
            ledger: LedgerEntry(energyJ: 0, peakMemoryBytes: 0, bits: [], loss: 0, accuracy: 0, durationS: 0))
    }

    @Test("FedAvg equals the hand-computed sample-weighted mean of the dequantised deltas")
    func fedAvg() throws {
        let check = try DeltaCheck(model: Self.model)
        var acc = FedAvgAccumulator(tensorSizes: Self.sizes)
        let inputs: [([[Float]], Int)] = [
            (Self.values(seed: 1), 100), (Self.values(seed: 2), 300), (Self.values(seed: 3), 50),
        ]
        var expected = Self.sizes.map { [Double](repeating: 0, count: $0) }
        for (v, samples) in inputs {
            let d = Self.delta(v)
            let norm = try check.check(Self.update(d, samples: UInt64(samples)), round: 3, attempt: 0)
            acc.add(d, samples: samples, norm: norm)
            for (t, tensor) in d.enumerated() {
                for (i, x) in tensor.dequantized().enumerated() { expected[t][i] += Double(x) * Double(samples) }
            }
        }
        #expect(acc.contributions == 3 && acc.totalWeight == 450)
        for (t, tensor) in acc.mean().enumerated() {
            for (i, x) in tensor.enumerated() {
                #expect(abs(Double(x) - expected[t][i] / 450) <= 1e-6, "tensor \(t) value \(i)")
            }
        }
    }

    @Test("FedAvg's mean is the same bit for bit whatever order the updates arrive in (binary32 and coded deltas)")
    func orderIndependent() throws {
        var random = RandomSource(seed: 12)
        var deltas: [([QuantizedTensor], Int)] = (1...6).map { k in
            (Self.delta(Self.values(seed: UInt64(k))), 50 + 37 * k)
        }
        deltas += (7...9).map { k in
            (
                Self.values(seed: UInt64(k)).enumerated().map { i, v in
                    QuantizedTensor.float32(v.map { $0 * 1.7 + 1e-3 }, layer: UInt16(i))
                }, 10 * k
            )
        }
        var means: [[[Float]]] = []
        for _ in 0..<4 {
            var acc = FedAvgAccumulator(tensorSizes: Self.sizes)
            for (d, samples) in deltas { acc.add(d, samples: samples, norm: DeltaCheck.norm(d)) }
            means.append(acc.mean())
            deltas.shuffle(using: &random)
        }
        for m in means.dropFirst() { #expect(m.map { $0.map(\.bitPattern) } == means[0].map { $0.map(\.bitPattern) }) }
    }

    @Test("clipping scales a delta down to the clip norm before it is averaged")
    func clipping() throws {
        let check = try DeltaCheck(model: Self.model)
        let d = Self.delta(Self.values(seed: 4, scale: 10))
        let norm = try check.check(Self.update(d), round: 3, attempt: 0)
        var acc = FedAvgAccumulator(tensorSizes: Self.sizes, clipNorm: norm / 4)
        acc.add(d, samples: 10, norm: norm)
        let clippedNorm = acc.mean().reduce(0.0) { $0 + $1.reduce(0.0) { $0 + Double($1) * Double($1) } }.squareRoot()
        #expect(abs(clippedNorm - norm / 4) <= 1e-3 * norm)
    }

    @Test("median and trimmed mean resist one node sending a huge delta; FedAvg does not")
    func robust() throws {
        let honest = (1...4).map { Self.delta(Self.values(seed: $0, scale: 0.01)) }
        let huge = Self.delta(Self.values(seed: 99, scale: 1000))
        var median = CoordinateAggregator(rule: .median, tensorSizes: Self.sizes)
        var trimmed = CoordinateAggregator(rule: .trimmedMean(beta: 0.2), tensorSizes: Self.sizes)
        var fedavg = FedAvgAccumulator(tensorSizes: Self.sizes)
        for d in honest + [huge] {
            median.add(d)
            trimmed.add(d)
            fedavg.add(d, samples: 1, norm: DeltaCheck.norm(d))
        }
        func maxAbs(_ x: [[Float]]) -> Float { x.flatMap { $0 }.map(abs).max() ?? 0 }
        #expect(maxAbs(median.aggregate()) <= 0.01 + 1e-4)
        #expect(maxAbs(trimmed.aggregate()) <= 0.01 + 1e-4)
        #expect(maxAbs(fedavg.mean()) > 10, "the huge delta should dominate a plain mean")
        // Held at the wire width: 16-bit codes, two bytes a value.
        #expect(median.heldBytes == 5 * Self.sizes.reduce(0, +) * 2)
        // The median of an odd count is the middle value exactly.
        var three = CoordinateAggregator(rule: .median, tensorSizes: [3])
        for v: [Float] in [[1, -1, 0.5], [2, -3, 0.25], [3, -2, 0.75]] { three.add(Self.delta([v])) }
        let m = three.aggregate()[0]
        #expect(abs(m[0] - 2) < 1e-3 && abs(m[1] + 2) < 1e-3 && abs(m[2] - 0.5) < 1e-3)
    }

    @Test("--aggregator spellings: the four rules and their refusals")
    func ruleParsing() {
        #expect(AggregationRule(parsing: "fedavg") == .fedAvg)
        #expect(AggregationRule(parsing: "fedadam") == .fedAdam)
        #expect(AggregationRule(parsing: "median") == .median)
        #expect(AggregationRule(parsing: "trimmed-mean:0.2") == .trimmedMean(beta: 0.2))
        for bad in ["", "FedAvg", "trimmed-mean", "trimmed-mean:0.5", "trimmed-mean:-0.1", "trimmed-mean:x", "mean"] {
            #expect(AggregationRule(parsing: bad) == nil, "\(bad)")
        }
        for rule in [AggregationRule.fedAvg, .fedAdam, .median, .trimmedMean(beta: 0.25)] {
            #expect(AggregationRule(parsing: rule.description) == rule)
        }
    }

    @Test("the server step: x += η·Δ, and FedAdam's moments computed by hand over two rounds")
    func serverStep() {
        var model: [[Float]] = [[1, -2]]
        var sgd = ServerOptimizer(rule: .median, learningRate: 0.5)
        sgd.apply([[0.2, 0.4]], to: &model)
        #expect(model == [[1.1, -1.8]])
        var adam = ServerOptimizer(rule: .fedAdam, learningRate: 0.01)
        var x: [[Float]] = [[0, 0]]
        var (m, v): ([Double], [Double]) = ([0, 0], [0, 0])
        var expected: [Double] = [0, 0]
        for delta: [Float] in [[0.1, -0.3], [0.05, 0.2]] {
            adam.apply([delta], to: &x)
            for i in 0..<2 {
                let d = Double(delta[i])
                m[i] = 0.9 * m[i] + 0.1 * d
                v[i] = 0.99 * v[i] + 0.01 * d * d
                expected[i] += 0.01 * m[i] / (v[i].squareRoot() + 1e-3)
            }
        }
        for i in 0..<2 { #expect(abs(Double(x[0][i]) - expected[i]) < 1e-6, "\(x[0][i]) vs \(expected[i])") }
    }

    @Test("every rule clips: a delta over the clip norm is scaled to it; the median weighs each node once")
    func roundAggregatorClips() throws {
        let d = Self.delta(Self.values(seed: 4, scale: 10))
        let norm = DeltaCheck.norm(d)
        for rule in [AggregationRule.fedAvg, .median, .trimmedMean(beta: 0.1)] {
            var round = RoundAggregator(rule: rule, tensorSizes: Self.sizes, clipNorm: norm / 4)
            round.add(d, samples: 10, norm: norm)
            #expect(round.count == 1)
            let got = round.aggregate().reduce(0.0) { $0 + $1.reduce(0.0) { $0 + Double($1) * Double($1) } }
            #expect(abs(got.squareRoot() - norm / 4) <= 1e-3 * norm, "\(rule)")
        }
        // Samples weigh FedAvg, not the median: two nodes agreeing outvote one with many samples.
        let a = Self.delta([[Float](repeating: 1, count: 12), [0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0]])
        let b = Self.delta([[Float](repeating: -1, count: 12), [0, 0, 0], [0, 0, 0, 0, 0, 0], [0, 0]])
        var median = RoundAggregator(rule: .median, tensorSizes: Self.sizes)
        var mean = RoundAggregator(rule: .fedAvg, tensorSizes: Self.sizes)
        for (delta, samples) in [(a, 1), (a, 1), (b, 1000)] {
            median.add(delta, samples: samples, norm: DeltaCheck.norm(delta))
            mean.add(delta, samples: samples, norm: DeltaCheck.norm(delta))
        }
        #expect(abs(median.aggregate()[0][0] - 1) < 1e-3)
        #expect(mean.aggregate()[0][0] < -0.99)
    }

    @Test("sparse top-k deltas read as zeros where no value was sent")
    func sparse() throws {
        var agg = CoordinateAggregator(rule: .median, tensorSizes: [10])
        let v: [Float] = [0, 5, 0, 0, -4, 0, 0, 0, 0, 3]
        for _ in 0..<3 { agg.add(Self.delta([v], bits: 8, topK: 3)) }
        let m = agg.aggregate()[0]
        for i in 0..<10 { #expect(abs(m[i] - v[i]) < 0.05, "coordinate \(i): \(m[i])") }
    }

    @Test("stale, wrong-shape and absurd deltas are rejected, each named")
    func rejections() throws {
        let check = try DeltaCheck(model: Self.model, maxNorm: 100)
        let good = Self.delta(Self.values(seed: 1))
        #expect(throws: DeltaRejection.stale(round: 2, attempt: 0, expectedRound: 3, expectedAttempt: 0)) {
            try check.check(Self.update(good, round: 2), round: 3, attempt: 0)
        }
        #expect(throws: DeltaRejection.tensorCount(got: 3, expected: 4)) {
            try check.check(Self.update(Array(good.dropLast())), round: 3, attempt: 0)
        }
        var swapped = good
        swapped.swapAt(0, 1)
        #expect(throws: DeltaRejection.shape(index: 0, layer: 1, count: 3, expectedCount: 12)) {
            try check.check(Self.update(swapped), round: 3, attempt: 0)
        }
        let absurd = Self.delta(Self.values(seed: 5, scale: 1000))
        #expect(throws: DeltaRejection.self) { try check.check(Self.update(absurd), round: 3, attempt: 0) }
        #expect(try check.check(Self.update(good), round: 3, attempt: 0) > 0)
    }

    @Test("random access to packed codes agrees with unpacking, at every bitwidth")
    func codeAt() {
        var r = RandomSource(seed: 7)
        for bits in 1...16 {
            let m = Int(QuantizedTensor.maxCode(bits: bits))
            let codes: [Int32] = (0..<37).map { _ in
                bits == 1 ? (r.next() & 1 == 0 ? -1 : 1) : Int32(Int(r.next() % UInt64(2 * m + 1)) - m)
            }
            let packed = PackedCodes(packing: codes, bits: bits)
            #expect((0..<37).map { packed.code(at: $0) } == codes, "bits \(bits)")
        }
    }
}
