import APTCommandLine
import APTCore
import Foundation

/// `apt-node benchmark`: the engine's results table (docs/results.md), each configuration in its own process
/// so that peak RSS is per configuration.
enum BenchmarkCommand {
    static let spec = CommandSpec(
        name: "apt-node benchmark",
        overview: "Train every configuration of the engine benchmark (fp32, fixed:8, fixed:16, APT at three knob "
            + "values) on each model, each in its own process, and print a Markdown table.",
        options: [
            .value("data", "dir", "Directory with the IDX files.", default: Dataset.defaultDirectory),
            .value("models", "list", "Comma-separated models.", default: "mlp,lenet"),
            .value(
                "precisions", "list", "Comma-separated configurations (apt@KNOB for APT).",
                default: "fp32,fixed:8,fixed:16,apt@0.25,apt@0.5,apt@0.75"),
            .value("epochs", "n", "Epochs per run.", default: "3"),
            .value(
                "seeds", "list",
                "Comma-separated seeds; every configuration runs once per seed and the table "
                    + "shows means (accuracy also min–max).", default: "0"),
            .value("train-limit", "n", "Use only the first n training samples."),
            .value("extra", "args", "Extra arguments passed to every 'apt-node train' run (one string)."),
            .value("out", "dir", "Keep each run's JSON report in this directory."),
            .value("format", "text|json", "Markdown table or JSON array of reports.", default: "text"),
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in try benchmark(args, console: console) }
    }

    static func benchmark(_ args: ParsedArguments, console: Console) throws {
        let models = args.list("models", default: ["mlp", "lenet"])
        let precisions = args.list(
            "precisions", default: ["fp32", "fixed:8", "fixed:16", "apt@0.25", "apt@0.5", "apt@0.75"])
        let format = try args.choice("format", among: ["text", "json"])
        let seeds = args.list("seeds", default: ["0"])
        for s in seeds where UInt64(s) == nil { throw UsageError("--seeds expects whole numbers, got '\(s)'") }
        let outDir = args["out"] ?? NSTemporaryDirectory() + "apt-bench-\(getpid())"
        try? FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var reports: [TrainingReport] = []
        for model in models {
            for p in precisions {
                for seed in seeds {
                    var runArgs = [
                        "train", "--model", model, "--epochs", args.string("epochs", default: "3"), "--seed", seed,
                        "--data", args.string("data", default: Dataset.defaultDirectory), "--quiet",
                    ]
                    if p.hasPrefix("apt@") {
                        runArgs += ["--precision", "apt", "--tradeoff", String(p.dropFirst(4))]
                    } else {
                        runArgs += ["--precision", p]
                    }
                    if let l = args["train-limit"] { runArgs += ["--train-limit", l] }
                    if let e = args["extra"] { runArgs += e.split(separator: " ").map(String.init) }
                    let path = "\(outDir)/\(model)-\(p.replacingOccurrences(of: ":", with: "_"))-seed\(seed).json"
                    runArgs += ["--report", path]
                    console.err("running: apt-node \(runArgs.joined(separator: " "))\n")
                    let proc = Process()
                    proc.executableURL = URL(fileURLWithPath: exe)
                    proc.arguments = runArgs
                    proc.standardOutput = FileHandle.nullDevice
                    do {
                        try proc.run()
                        proc.waitUntilExit()
                    } catch {
                        throw CommandFailure("cannot start \(exe): \(error)")
                    }
                    guard proc.terminationStatus == 0, let data = FileManager.default.contents(atPath: path),
                        let r = try? JSONDecoder().decode(TrainingReport.self, from: data)
                    else {
                        throw CommandFailure(
                            "run '\(runArgs.joined(separator: " "))' failed with status \(proc.terminationStatus)")
                    }
                    reports.append(r)
                }
            }
        }
        if format == "json" {
            console.out(String(decoding: try jsonData(reports), as: UTF8.self) + "\n")
        } else {
            console.out(table(reports))
        }
    }

    /// One row per configuration: means over seeds (accuracy with its min–max), savings against fp32's means.
    static func table(_ reports: [TrainingReport]) -> String {
        struct Key: Hashable { var model: String, precision: String, tradeoff: Double }
        var order: [Key] = []
        var groups: [Key: [TrainingReport]] = [:]
        for r in reports {
            let k = Key(model: r.model, precision: r.precision, tradeoff: r.precision == "apt" ? r.tradeoff : -1)
            if groups[k] == nil { order.append(k) }
            groups[k, default: []].append(r)
        }
        func mean(_ rs: [TrainingReport], _ f: (TrainingReport) -> Double) -> Double {
            rs.map(f).reduce(0, +) / Double(max(rs.count, 1))
        }
        var s =
            "| model | precision | knob | seeds | accuracy (min–max) | Δacc vs fp32 | energy J | energy saved | "
            + "peak train bytes | memory saved | peak RSS MiB | samples/s | final bits (first seed) |\n"
        s += "|---|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for k in order {
            let rs = groups[k] ?? []
            let base = groups[Key(model: k.model, precision: "fp32", tradeoff: -1)]
            let acc = mean(rs) { $0.accuracy }
            let energy = mean(rs) { $0.energyJ }
            let memory = mean(rs) { Double($0.peakTrainBytes) }
            let lo = rs.map(\.accuracy).min() ?? 0
            let hi = rs.map(\.accuracy).max() ?? 0
            let dAcc = base.map { String(format: "%+.2f", (acc - mean($0) { $0.accuracy }) * 100) } ?? "–"
            let eSaved = base.map { String(format: "%.1f%%", (1 - energy / mean($0) { $0.energyJ }) * 100) } ?? "–"
            let mSaved =
                base.map { String(format: "%.1f%%", (1 - memory / mean($0) { Double($0.peakTrainBytes) }) * 100) }
                ?? "–"
            let knob = k.precision == "apt" ? String(k.tradeoff) : "–"
            s += String(
                format: "| %@ | %@ | %@ | %d | %.4f (%.4f–%.4f) | %@ | %.4g | %@ | %.0f | %@ | %.0f | %.0f | %@ |\n",
                k.model as NSString, k.precision as NSString, knob as NSString, rs.count, acc, lo, hi,
                dAcc as NSString, energy, eSaved as NSString, memory, mSaved as NSString,
                mean(rs) { Double($0.peakRssBytes) } / 1_048_576, mean(rs) { $0.samplesPerS },
                (rs.first?.bits.map(String.init).joined(separator: "/") ?? "") as NSString)
        }
        return s
    }
}
