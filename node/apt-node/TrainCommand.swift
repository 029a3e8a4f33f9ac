import APTCommandLine
import APTCore
import Foundation

/// `apt-node train`: local training on one device, no coordinator.
enum TrainCommand {
    static let spec = CommandSpec(
        name: "apt-node train",
        overview: "Train a model locally with Adaptive Precision Training (or an fp32/fixed-point baseline) and "
            + "report accuracy, energy and memory.",
        options: [
            .value(
                "data", "dir", "Directory with the IDX files (gzipped or plain).",
                default: Dataset.defaultDirectory),
            .value("model", "name|file", "mlp, lenet, or a JSON model spec file.", default: "mlp"),
            .value("precision", "mode", "apt, fp32 or fixed:N (N in 2...16).", default: "apt"),
            .value(
                "tradeoff", "x", "APT knob in [0, 1]: higher saves more energy and memory, lower keeps accuracy.",
                default: "0.5"),
            .value("epochs", "n", "Passes over the training data.", default: "3"),
            .value("batch", "n", "Samples per step.", default: "64"),
            .value("lr", "rate", "SGD learning rate.", default: "0.05"),
            .value("momentum", "m", "SGD momentum in [0, 1).", default: "0.9"),
            .value(
                "profile", "name|file", "Device profile: generic-45nm, rpi4, jetson-nano, cortex-m7, or a JSON file.",
                default: "generic-45nm"),
            .value("energy-budget", "joules", "Stop cleanly at the last step that fits this energy."),
            .value("memory-budget", "bytes", "Refuse to start unless peak training memory fits (k/M/G suffixes)."),
            .value("seed", "s", "Seed for initialisation, shuffling, rounding and partitioning.", default: "0"),
            .value("shard", "i/n", "Train on shard i of n (0-based) of the training set."),
            .value("partition", "spec", "How shards are cut: iid, labels:K or dirichlet:ALPHA.", default: "iid"),
            .value("train-limit", "n", "Use only the first n training samples (after sharding)."),
            .value("test-limit", "n", "Evaluate on only the first n test samples."),
            .value("min-bits", "b", "APT: fewest weight bits (default 10, 4 from knob 0.75)."),
            .value("max-bits", "b", "APT: most weight bits (default 16, 8 from knob 0.75)."),
            .value("interval", "k", "APT: iterations between precision decisions.", default: "50"),
            .value(
                "activation-bits", "b",
                "Bits of activations (fixed point), held there (not adapted). Default from the precision and knob."),
            .value(
                "error-bits", "b",
                "Bits of back-propagated errors, held there (not adapted). Default from the precision and knob."),
            .value("momentum-bits", "b", "Bits of the momentum buffer. Default from the precision and knob."),
            .value(
                "adapt-activation-bits", "lo-hi",
                "APT: the controller moves each layer's activation bits within lo-hi from their underflow (default: from knob 0.75, a bit either side of the knob's width; below it, off)."
            ),
            .value(
                "adapt-error-bits", "lo-hi",
                "APT: the controller moves each layer's error bits within lo-hi from their underflow (default: as --adapt-activation-bits)."
            ),
            .value(
                "update-rounding", "mode", "Rounding of weight updates: nearest or stochastic. Default from the knob."),
            .value("error-rounding", "mode", "Rounding of errors: nearest or stochastic.", default: "stochastic"),
            .value(
                "activation-rounding", "mode", "Rounding of activations: nearest or stochastic.", default: "nearest"),
            .value(
                "gradient-rounding", "mode",
                "Rounding of gradients and momentum: nearest or stochastic. Default from the knob."),
            .value("report", "file", "Write the JSON report here (schema: docs/report-schema.md)."),
            .value("format", "text|json", "Summary on stdout as text or JSON.", default: "text"),
            .flag("quiet", "No progress display."),
        ])

    /// The flag of each configuration field the library names in its errors.
    static let flagOfField: [String: String] = [
        "epochs": "--epochs", "batchSize": "--batch", "learningRate": "--lr", "momentum": "--momentum",
        "tradeoff": "--tradeoff", "energyBudget": "--energy-budget", "memoryBudget": "--memory-budget",
        "seed": "--seed", "controller.minBits": "--min-bits", "controller.maxBits": "--max-bits",
        "controller.interval": "--interval", "quantization.activationBits": "--activation-bits",
        "quantization.errorBits": "--error-bits", "quantization.momentumBits": "--momentum-bits",
        "controller.activationBits": "--adapt-activation-bits", "controller.errorBits": "--adapt-error-bits",
    ]

    /// A configuration error as the command line says it: the field named by its flag.
    static func usageError(_ error: ConfigurationError) -> UsageError {
        UsageError(error.field.flatMap { flagOfField[$0] }.map { error.naming(field: $0) } ?? error.message)
    }

    /// The training samples to keep: shard `i` of `n` cut by `partition` from the labels alone, then at most
    /// `limit` of them; nil for all.
    static func selection(
        directory: String, shard: (Int, Int)?, partition: PartitionScheme, seed: UInt64, limit: Int?
    ) throws -> [Int]? {
        guard shard != nil || limit != nil else { return nil }
        let labels: [UInt8]
        do {
            labels = try Dataset.splitLabels(directory: directory, train: true)
        } catch {
            throw CommandFailure("\(error)")
        }
        var keep = Array(labels.indices)
        if let (i, n) = shard {
            do {
                keep = try Partitioner.shards(labels: labels, classes: 10, count: n, scheme: partition, seed: seed)[i]
            } catch {
                throw UsageError(error.message)
            }
        }
        if let limit, limit < keep.count { keep = Array(keep.prefix(max(limit, 1))) }
        return keep
    }

    /// Why `data` does not fit the trainer's model as test data, or nil.
    static func misfit(_ data: Dataset, _ trainer: Trainer) -> String? {
        do {
            try trainer.check(data, role: "test")
            return nil
        } catch {
            return error.message
        }
    }

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in try train(args, console: console) }
    }

    static func train(_ args: ParsedArguments, console: Console) throws {
        let (config, dataDir, shard, partition, format) = try configuration(from: args)
        var trainer: Trainer
        do {
            trainer = try Trainer(configuration: config)
        } catch let e as ConfigurationError {
            throw usageError(e)
        }
        // The shard is chosen from the labels alone; only its images are then read and kept (as bytes).
        let keep = try selection(
            directory: dataDir, shard: shard, partition: partition, seed: config.seed,
            limit: try args.int("train-limit"))
        let testLimit = try args.int("test-limit")
        let train: Dataset
        do {
            train = try Dataset.split(directory: dataDir, train: true, keeping: keep)
        } catch {
            throw CommandFailure("\(error)")
        }
        do {
            try trainer.check(train, role: "training")
        } catch {
            throw CommandFailure(error.message)
        }
        let showProgress = !args.flag("quiet") && console.errorIsTerminal
        var session = TrainingSession(configuration: config, network: trainer.network, data: train)
        let outcome = session.run(
            steps: config.epochs * session.stepsPerEpoch, energyLimit: config.energyBudget,
            progress: { p in
                guard showProgress else { return }
                let done = Double((p.epoch - 1) * p.stepsPerEpoch + p.step) / Double(p.epochs * p.stepsPerEpoch)
                let width = 24
                let filled = Int(done * Double(width))
                let bar = String(repeating: "#", count: filled) + String(repeating: "-", count: width - filled)
                console.progress(
                    String(
                        format: "epoch %d/%d [%@] %3.0f%%  loss %.4f  bits %@  %.3g J", p.epoch, p.epochs, bar,
                        done * 100, p.loss, p.bits.map(String.init).joined(separator: "/"), p.energyJ))
            })
        if showProgress { console.endProgress() }
        // The test set is read only now, when evaluation needs it, and streamed in chunks: it is never held
        // whole.
        var sums = EvaluationSums()
        var unfit: String? = nil
        do {
            try Dataset.forEachChunk(directory: dataDir, train: false, limit: testLimit.map { max($0, 1) }, chunk: 1000)
            {
                chunk throws(DataError) in
                guard unfit == nil else { return }
                unfit = misfit(chunk, trainer)
                if unfit == nil { session.evaluate(chunk, into: &sums) }
            }
        } catch {
            throw CommandFailure("\(error)")
        }
        if let unfit { throw CommandFailure(unfit) }
        guard sums.count > 0 else { throw CommandFailure("the test set in \(dataDir) is empty") }
        let report = session.report(
            accuracy: sums.accuracy, testLoss: sums.meanLoss, epochs: config.epochs, stopReason: outcome.stopReason)
        if report.stopReason == "energy_budget" {
            console.err(
                String(
                    format: "Stopped: energy budget %.6g J reached after %d steps (%.6g J used).\n",
                    config.energyBudget ?? 0, report.iterations, report.energyJ))
        }
        if let path = args["report"] {
            do {
                try writeJSON(report, to: path)
            } catch {
                throw CommandFailure("cannot write report \(path): \(error.localizedDescription)")
            }
        }
        if format == "json" {
            console.out(String(decoding: try jsonData(report), as: UTF8.self) + "\n")
        } else {
            console.out(summary(report))
        }
    }

    static func configuration(from args: ParsedArguments) throws(UsageError) -> (
        TrainingConfiguration, String, (Int, Int)?, PartitionScheme, String
    ) {
        let modelName = args.string("model", default: "mlp")
        let model = try modelSpec(modelName)
        let precision: PrecisionMode
        do {
            precision = try PrecisionMode(parsing: args.string("precision", default: "apt"))
        } catch {
            throw usageError(error)
        }
        let tradeoff = try args.double("tradeoff", default: TrainingConfiguration.defaultTradeoff)
        var c = TrainingConfiguration(model: model, precision: precision, tradeoff: tradeoff)
        c.epochs = try args.int("epochs", default: 3)
        c.batchSize = try args.int("batch", default: 64)
        c.learningRate = Float(try args.double("lr", default: 0.05))
        c.momentum = Float(try args.double("momentum", default: 0.9))
        if let s = try args.int("seed") {
            guard s >= 0 else { throw UsageError("--seed must be non-negative, got \(s)") }
            c.seed = UInt64(s)
        }
        c.profile = try profile(args.string("profile", default: "generic-45nm"))
        c.energyBudget = try args.double("energy-budget")
        c.memoryBudget = try args.int("memory-budget")
        c.controller.maxBits = try args.int("max-bits") ?? c.controller.maxBits
        // Without --min-bits the knob's floor follows a lower --max-bits down (e.g. --max-bits 8 at knob 0.5).
        c.controller.minBits = try args.int("min-bits") ?? min(c.controller.minBits, c.controller.maxBits)
        c.controller.interval = try args.int("interval") ?? c.controller.interval
        // A width given by hand is held there, unless a range to adapt in is given too.
        if let b = try args.int("activation-bits") {
            c.quantization.activationBits = b
            c.controller.activationBits = nil
        }
        if let b = try args.int("error-bits") {
            c.quantization.errorBits = b
            c.controller.errorBits = nil
        }
        if let b = try args.int("momentum-bits") { c.quantization.momentumBits = b }
        if let r = try args.bitRange("adapt-activation-bits") { c.controller.activationBits = r }
        if let r = try args.bitRange("adapt-error-bits") { c.controller.errorBits = r }
        if let r = args["update-rounding"] { c.quantization.updateRounding = try rounding(r, "update-rounding") }
        if let r = args["error-rounding"] { c.quantization.errorRounding = try rounding(r, "error-rounding") }
        if let r = args["activation-rounding"] {
            c.quantization.activationRounding = try rounding(r, "activation-rounding")
        }
        if let r = args["gradient-rounding"] { c.quantization.gradientRounding = try rounding(r, "gradient-rounding") }
        if precision == .apt {
            c.quantization.initialWeightBits = min(
                max(c.quantization.initialWeightBits, c.controller.minBits),
                c.controller.maxBits)
        }
        let shard = try shard(args)
        let partition: PartitionScheme
        do {
            partition = try PartitionScheme(parsing: args.string("partition", default: "iid"))
        } catch {
            throw usageError(error)
        }
        let format = try args.choice("format", among: ["text", "json"])
        return (c, args.string("data", default: Dataset.defaultDirectory), shard, partition, format)
    }

    /// `--shard i/n` (shard `i` of `n`, 0-based), or nil when it is not given.
    static func shard(_ args: ParsedArguments) throws(UsageError) -> (Int, Int)? {
        guard let s = args["shard"] else { return nil }
        let parts = s.split(separator: "/").map { Int($0) }
        guard parts.count == 2, let i = parts[0], let n = parts[1], n >= 1, i >= 0, i < n else {
            throw UsageError("--shard expects i/n with 0 ≤ i < n, got '\(s)'")
        }
        return (i, n)
    }

    static func rounding(_ text: String, _ option: String) throws(UsageError) -> RoundingMode {
        guard let r = RoundingMode(rawValue: text) else {
            throw UsageError("--\(option) expects nearest or stochastic, got '\(text)'")
        }
        return r
    }

    /// `--model NAME|FILE`, with a suggestion for a mistyped name.
    static func modelSpec(_ text: String) throws(UsageError) -> ModelSpec {
        do {
            return try ModelSpec.load(text)
        } catch .unknownName(let name) {
            throw UsageError(
                "\(ModelSpecError.unknownName(name)).\(didYouMean(name, among: ModelSpec.builtIn.keys.sorted()))")
        } catch {
            throw UsageError("\(error)")
        }
    }

    static func profile(_ text: String) throws(UsageError) -> DeviceProfile {
        if let p = DeviceProfile.named(text) { return p }
        if text.hasSuffix(".json") || text.contains("/") {
            guard let data = FileManager.default.contents(atPath: text) else {
                throw UsageError("cannot read device profile file '\(text)'")
            }
            do {
                let p = try JSONDecoder().decode(DeviceProfile.self, from: data)
                try p.validate()
                return p
            } catch let e as ConfigurationError {
                throw UsageError("device profile '\(text)': \(e.message)")
            } catch {
                throw UsageError("device profile '\(text)' is not valid: \(describeDecoding(error))")
            }
        }
        let names = DeviceProfile.builtIn.map(\.name)
        let hint = didYouMean(text, among: names)
        throw UsageError(
            "unknown profile '\(text)' (expected \(names.joined(separator: ", ")) or a .json file).\(hint)")
    }

    static func summary(_ r: TrainingReport) -> String {
        var s = ""
        s += "model          \(r.model)  precision \(r.precision)  tradeoff \(r.tradeoff)  profile \(r.profile)\n"
        s += String(
            format: "accuracy       %.4f  (test loss %.4f, last-epoch train loss %.4f)\n",
            r.accuracy, r.loss, r.trainLoss)
        s += String(format: "energy         %.6g J  (%@ MACs)\n", r.energyJ, "\(r.macs)")
        s +=
            "memory         params \(r.paramBytes) B, optimiser \(r.optimizerBytes) B, peak training \(r.peakTrainBytes) B, "
            + "peak RSS \(r.peakRssBytes) B\n"
        s += String(
            format: "speed          %.0f samples/s  (%d steps, %.2f s)\n", r.samplesPerS, r.iterations,
            r.trainSeconds)
        s += "bits           \(r.bits.map(String.init).joined(separator: " / "))  (\(r.precisionChanges) changes)\n"
        if r.stopReason != "completed" { s += "stopped        \(r.stopReason)\n" }
        return s
    }
}

/// JSON with sorted keys, pretty printed.
func jsonData<T: Encodable>(_ value: T) throws -> Data {
    let e = JSONEncoder()
    e.outputFormatting = [.prettyPrinted, .sortedKeys]
    return try e.encode(value)
}

/// Writes `value` as JSON to `path` atomically.
func writeJSON<T: Encodable>(_ value: T, to path: String) throws {
    try jsonData(value).write(to: URL(fileURLWithPath: path), options: .atomic)
}
