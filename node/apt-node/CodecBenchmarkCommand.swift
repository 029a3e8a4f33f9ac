import APTCommandLine
import APTCore
import APTProtocol
import Foundation

/// `apt-node benchmark-codec`: encode/decode throughput and bytes on the wire of real weight deltas.
enum CodecBenchmarkCommand {
    static let spec = CommandSpec(
        name: "apt-node benchmark-codec",
        overview: "Measure the quantised-tensor codec on real weight deltas (fp32 training steps on Fashion-MNIST): "
            + "encode and decode throughput and bytes on the wire at 2, 4, 8 and 16 bits, dense and top-k, "
            + "against raw float32.",
        options: [
            .value("data", "dir", "Directory with the IDX files.", default: Dataset.defaultDirectory),
            .value("models", "list", "Comma-separated models.", default: "mlp,lenet"),
            .value("steps", "n", "Training steps that make the delta.", default: "100"),
            .value("repeat", "n", "Encode/decode repetitions timed per configuration.", default: "20"),
            .value("density", "f", "Fraction kept by the top-k rows.", default: "0.01"),
            .value("format", "text|json", "Markdown table or JSON.", default: "text"),
        ])

    struct Row: Codable {
        var model: String
        var codec: String
        var bits: Int
        var density: Double
        var wireBytes: Int
        var float32Bytes: Int
        var ratio: Double
        var encodeMBps: Double
        var decodeMBps: Double
        /// Wire bytes per second decoded and folded into a float32 sum (`accumulate`), MB/s.
        var accumulateWireMBps: Double
        var rmsError: Double
    }

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in try benchmark(args, console: console) }
    }

    static func benchmark(_ args: ParsedArguments, console: Console) throws {
        let steps = try args.int("steps", default: 100)
        let repeats = max(1, try args.int("repeat", default: 20))
        let density = try args.double("density", default: 0.01)
        guard density > 0, density <= 1 else { throw UsageError("--density must be in (0, 1], got \(density)") }
        let format = try args.choice("format", among: ["text", "json"])
        let models = args.list("models", default: ["mlp", "lenet"])
        for name in models where ModelSpec.builtIn[name] == nil { throw UsageError("unknown model '\(name)'") }
        let train: Dataset
        do {
            train = try Dataset.split(directory: args.string("data", default: Dataset.defaultDirectory), train: true)
        } catch {
            throw CommandFailure("\(error)")
        }
        var rows: [Row] = []
        for name in models {
            guard let model = ModelSpec.builtIn[name] else { continue }
            let delta = try realDelta(model: model, data: train, steps: steps)
            let floats = delta.reduce(0) { $0 + $1.count }
            let f32Bytes = floats * 4
            for bits in [2, 4, 8, 16] {
                for topK in [false, true] {
                    var random = RandomSource(seed: 1)
                    var frame: [UInt8] = []
                    let t0 = MonotonicClock.seconds()
                    for _ in 0..<repeats {
                        let tensors = delta.enumerated().map { i, d in
                            QuantizedTensor.quantize(
                                d, layer: UInt16(i), bits: bits,
                                topK: topK ? max(1, Int(Double(d.count) * density)) : nil,
                                random: &random)
                        }
                        frame = Frame.encode(
                            .update(
                                Update(
                                    round: 1, samplesTrained: 0, delta: tensors,
                                    ledger: LedgerEntry(
                                        energyJ: 0, peakMemoryBytes: 0, bits: [], loss: 0, accuracy: 0, durationS: 0))))
                    }
                    let t1 = MonotonicClock.seconds()
                    var decoded: [Float] = []
                    for _ in 0..<repeats {
                        guard case .update(let u) = try Frame.decode(frame) else {
                            throw CommandFailure("decode failed")
                        }
                        decoded = u.delta.flatMap { $0.dequantized() }
                    }
                    let t2 = MonotonicClock.seconds()
                    // What an aggregator does: decode the frame and fold every tensor into a running float32 sum,
                    // without a dense copy.
                    var sums = delta.map { [Float](repeating: 0, count: $0.count) }
                    for _ in 0..<repeats {
                        guard case .update(let u) = try Frame.decode(frame) else {
                            throw CommandFailure("decode failed")
                        }
                        for (i, t) in u.delta.enumerated() {
                            sums[i].withUnsafeMutableBufferPointer { t.accumulate(into: $0, weight: 0.1) }
                        }
                    }
                    let t3 = MonotonicClock.seconds()
                    withExtendedLifetime(sums) {}
                    let flat = delta.flatMap { $0 }
                    var se = 0.0
                    for i in flat.indices { se += Double(flat[i] - decoded[i]) * Double(flat[i] - decoded[i]) }
                    let mb = Double(f32Bytes) * Double(repeats) / 1e6
                    rows.append(
                        Row(
                            model: name, codec: topK ? "top-k" : "dense", bits: bits, density: topK ? density : 1,
                            wireBytes: frame.count, float32Bytes: f32Bytes,
                            ratio: Double(f32Bytes) / Double(frame.count), encodeMBps: mb / (t1 - t0),
                            decodeMBps: mb / (t2 - t1),
                            accumulateWireMBps: Double(frame.count) * Double(repeats) / 1e6 / (t3 - t2),
                            rmsError: (se / Double(flat.count)).squareRoot()))
                }
            }
        }
        if format == "json" {
            console.out(String(decoding: try jsonData(rows), as: UTF8.self) + "\n")
        } else {
            var s =
                "| model | codec | bits | wire bytes | float32 bytes | ratio | encode MB/s | decode MB/s | "
                + "accumulate wire MB/s | RMS error |\n"
            s += "|---|---|---|---|---|---|---|---|---|---|\n"
            for r in rows {
                s += String(
                    format: "| %@ | %@ | %d | %d | %d | %.1f× | %.0f | %.0f | %.0f | %.3g |\n", r.model as NSString,
                    (r.codec == "top-k" ? "top-k \(r.density)" : r.codec) as NSString, r.bits, r.wireBytes,
                    r.float32Bytes, r.ratio, r.encodeMBps, r.decodeMBps, r.accumulateWireMBps, r.rmsError)
            }
            console.out(s)
        }
    }

    /// Weights after `steps` fp32 SGD steps minus the initial weights, per parameter tensor.
    static func realDelta(model: ModelSpec, data: Dataset, steps: Int) throws -> [[Float]] {
        var c = TrainingConfiguration(model: model, precision: .fp32)
        c.epochs = 1
        var trainer = try Trainer(configuration: c)
        let before = parameters(trainer.network)
        let subset = data.subset(Array(0..<min(data.count, steps * c.batchSize)))
        _ = trainer.run(train: subset, test: subset.subset(Array(0..<min(subset.count, 100))))
        let after = parameters(trainer.network)
        return zip(before, after).map { b, a in zip(a, b).map { $0 - $1 } }
    }

    static func parameters(_ n: Network) -> [[Float]] { n.parameterSnapshot.map { $0.dequantized() } }
}
