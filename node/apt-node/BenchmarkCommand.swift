import APTCommandLine
import APTCore
import Foundation

/// `apt-node benchmark`: the engine's results table (docs/results.md), each configuration in its own process
/// so that peak RSS is per configuration.
enum BenchmarkCommand {
    static let spec = CommandSpec(
        name: "apt-node benchmark",
        overview: "Train every configuration of the engine benchmark (fp32, fixed:8, fixed:16, APT at three knob "
            + "values, or a sweep of static configurations) on each model, each in its own process, and print a "
            + "Markdown table.",
        options: [
            .value("data", "dir", "Directory with the IDX files.", default: Dataset.defaultDirectory),
            .value("models", "list", "Comma-separated models.", default: "mlp,lenet"),
            .value(
                "precisions", "list",
                "Comma-separated configurations: fp32, fixed:N, apt@KNOB, or static:W/A/E (APT's engine with weights "
                    + "pinned at W bits, activations at A, errors at E; each a number, a range 8-16 or a list "
                    + "8|12|16, expanded to every combination).",
                default: "fp32,fixed:8,fixed:16,apt@0.25,apt@0.5,apt@0.75"),
            .value("epochs", "n", "Epochs per run.", default: "3"),
            .value(
                "seeds", "list",
                "Comma-separated seeds; every configuration runs once per seed and the table "
                    + "shows means (accuracy also min–max).", default: "0"),
            .value("train-limit", "n", "Use only the first n training samples."),
            .value("extra", "args", "Extra arguments passed to every 'apt-node train' run (one string)."),
            .value("jobs", "n", "Runs at a time (one per core; figures of speed need 1).", default: "1"),
            .value("out", "dir", "Keep each run's JSON report in this directory."),
            .value("format", "text|json", "Markdown table or JSON array of reports.", default: "text"),
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in try benchmark(args, console: console) }
    }

    /// One configuration of the benchmark: its label in the table and its `apt-node train` arguments.
    struct Configuration: Equatable {
        var label: String
        var arguments: [String]
    }

    /// The configurations a `--precisions` entry stands for.
    static func configurations(_ entry: String) throws -> [Configuration] {
        if entry.hasPrefix("apt@") {
            let knob = String(entry.dropFirst(4))
            guard let t = Double(knob), (0...1).contains(t) else {
                throw UsageError("--precisions: 'apt@KNOB' needs a knob in [0, 1], got '\(entry)'")
            }
            return [Configuration(label: entry, arguments: ["--precision", "apt", "--tradeoff", knob])]
        }
        guard entry.hasPrefix("static:") else {
            _ = try PrecisionMode(parsing: entry)
            return [Configuration(label: entry, arguments: ["--precision", entry])]
        }
        let parts = entry.dropFirst(7).split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 3 else {
            throw UsageError("--precisions: 'static:W/A/E' needs three widths, got '\(entry)'")
        }
        func widths(_ s: String) throws -> [Int] {
            let bad = UsageError("--precisions: '\(s)' in '\(entry)' is not a width, a range lo-hi or a list a|b")
            if s.contains("-") {
                guard let range = ParsedArguments.range(s) else { throw bad }
                return try range.map { try checked($0) }
            }
            return try s.split(separator: "|").map {
                guard let b = Int($0) else { throw bad }
                return try checked(b)
            }
        }
        func checked(_ b: Int) throws -> Int {
            guard (2...16).contains(b) else { throw UsageError("--precisions: widths must be in 2...16, got \(b)") }
            return b
        }
        var out: [Configuration] = []
        for w in try widths(parts[0]) {
            for a in try widths(parts[1]) {
                for e in try widths(parts[2]) {
                    // Weights pinned; updates round as APT's knob rounds them at that width (stochastic at 8 bits
                    // or fewer, where rounding to nearest loses most updates).
                    out.append(
                        Configuration(
                            label: "static:\(w)/\(a)/\(e)",
                            arguments: [
                                "--precision", "apt", "--min-bits", "\(w)", "--max-bits", "\(w)",
                                "--activation-bits", "\(a)", "--error-bits", "\(e)",
                                "--update-rounding", w <= 8 ? "stochastic" : "nearest",
                            ]))
                }
            }
        }
        return out
    }

    static func benchmark(_ args: ParsedArguments, console: Console) throws {
        let models = args.list("models", default: ["mlp", "lenet"])
        let entries = args.list(
            "precisions", default: ["fp32", "fixed:8", "fixed:16", "apt@0.25", "apt@0.5", "apt@0.75"])
        let configs = try entries.flatMap { try configurations($0) }
        let format = try args.choice("format", among: ["text", "json"])
        let seeds = args.list("seeds", default: ["0"])
        for s in seeds where UInt64(s) == nil { throw UsageError("--seeds expects whole numbers, got '\(s)'") }
        let jobs = try args.int("jobs") ?? 1
        guard jobs >= 1 else { throw UsageError("--jobs expects at least 1, got \(jobs)") }
        let outDir = args["out"] ?? NSTemporaryDirectory() + "apt-bench-\(getpid())"
        try? FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        // Every run, in table order.
        var runs: [(label: String, arguments: [String], path: String)] = []
        for model in models {
            for c in configs {
                for seed in seeds {
                    var runArgs = [
                        "train", "--model", model, "--epochs", args.string("epochs", default: "3"), "--seed", seed,
                        "--data", args.string("data", default: Dataset.defaultDirectory), "--quiet",
                    ]
                    runArgs += c.arguments
                    if let l = args["train-limit"] { runArgs += ["--train-limit", l] }
                    if let e = args["extra"] { runArgs += e.split(separator: " ").map(String.init) }
                    let name = c.label.map { "/:@|".contains($0) ? "_" : $0 }
                    let path = "\(outDir)/\(model)-\(String(name))-seed\(seed).json"
                    runArgs += ["--report", path]
                    runs.append((c.label, runArgs, path))
                }
            }
        }
        var labelled: [(label: String, report: TrainingReport)] = []
        var next = 0
        while next < runs.count {
            // Up to `jobs` runs at a time.
            let batch = runs[next..<min(next + jobs, runs.count)]
            var started: [Process] = []
            for run in batch {
                console.err("running: apt-node \(run.arguments.joined(separator: " "))\n")
                let proc = Process()
                proc.executableURL = URL(fileURLWithPath: exe)
                proc.arguments = run.arguments
                proc.standardOutput = FileHandle.nullDevice
                do { try proc.run() } catch { throw CommandFailure("cannot start \(exe): \(error)") }
                started.append(proc)
            }
            for (proc, run) in zip(started, batch) {
                proc.waitUntilExit()
                guard proc.terminationStatus == 0, let data = FileManager.default.contents(atPath: run.path),
                    let r = try? JSONDecoder().decode(TrainingReport.self, from: data)
                else {
                    throw CommandFailure(
                        "run '\(run.arguments.joined(separator: " "))' failed with status \(proc.terminationStatus)")
                }
                labelled.append((run.label, r))
            }
            next += batch.count
        }
        if format == "json" {
            console.out(String(decoding: try jsonData(labelled.map(\.report)), as: UTF8.self) + "\n")
        } else {
            console.out(table(labelled))
            console.out(staticSummary(labelled))
        }
    }

    /// The runs of each configuration of each model, in first-seen order.
    static func groups(_ runs: [(label: String, report: TrainingReport)]) -> [(
        model: String, label: String, runs: [TrainingReport]
    )] {
        var order: [String] = []
        var groups: [String: (String, String, [TrainingReport])] = [:]
        for (label, r) in runs {
            let key = r.model + "\u{0}" + label
            if groups[key] == nil { order.append(key) }
            groups[key, default: (r.model, label, [])].2.append(r)
        }
        return order.compactMap { groups[$0] }.map { (model: $0.0, label: $0.1, runs: $0.2) }
    }

    static func mean(_ rs: [TrainingReport], _ f: (TrainingReport) -> Double) -> Double {
        rs.map(f).reduce(0, +) / Double(max(rs.count, 1))
    }

    /// One row per configuration: means over seeds (accuracy with its min–max), savings against fp32's means.
    static func table(_ runs: [(label: String, report: TrainingReport)]) -> String {
        let all = groups(runs)
        var s =
            "| model | configuration | seeds | accuracy (min–max) | Δacc vs fp32 | energy J | energy saved | "
            + "peak train bytes | memory saved | peak RSS MiB | samples/s | final bits (first seed) |\n"
        s += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for g in all {
            let rs = g.runs
            let base = all.first { $0.model == g.model && $0.label == "fp32" }?.runs
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
            s += String(
                format: "| %@ | %@ | %d | %.4f (%.4f–%.4f) | %@ | %.4g | %@ | %.0f | %@ | %.0f | %.0f | %@ |\n",
                g.model as NSString, g.label as NSString, rs.count, acc, lo, hi,
                dAcc as NSString, energy, eSaved as NSString, memory, mSaved as NSString,
                mean(rs) { Double($0.peakRssBytes) } / 1_048_576, mean(rs) { $0.samplesPerS },
                (rs.first?.bits.map(String.init).joined(separator: "/") ?? "") as NSString)
        }
        return s
    }

    /// When static configurations ran: per model, the most accurate one and its seeds' accuracy band, the
    /// cheapest static configuration whose mean accuracy lies in that band (the best static configuration), and
    /// each APT configuration against it.
    static func staticSummary(_ runs: [(label: String, report: TrainingReport)]) -> String {
        let all = groups(runs)
        var s = ""
        for model in Set(all.map(\.model)).sorted() {
            let statics = all.filter { $0.model == model && $0.label.hasPrefix("static:") }
            guard let top = statics.max(by: { mean($0.runs) { $0.accuracy } < mean($1.runs) { $0.accuracy } })
            else { continue }
            let band = (top.runs.map(\.accuracy).min() ?? 0)...(top.runs.map(\.accuracy).max() ?? 0)
            guard
                let best = statics.filter({ mean($0.runs) { $0.accuracy } >= band.lowerBound })
                    .min(by: { mean($0.runs) { $0.energyJ } < mean($1.runs) { $0.energyJ } })
            else { continue }
            let bestEnergy = mean(best.runs) { $0.energyJ }
            let bestMemory = mean(best.runs) { Double($0.peakTrainBytes) }
            s += String(
                format: "\n%@: most accurate static %@ (%.4f, seeds %.4f–%.4f); best static (cheapest in that band) "
                    + "%@: %.4f, %.4g J, %.0f B\n",
                model as NSString, top.label as NSString, mean(top.runs) { $0.accuracy }, band.lowerBound,
                band.upperBound, best.label as NSString, mean(best.runs) { $0.accuracy }, bestEnergy, bestMemory)
            /// "12.3% less" or "4.5% more" for a saving of `fraction`.
            func saving(_ fraction: Double) -> String {
                String(format: "%.1f%% %@", abs(fraction) * 100, fraction >= 0 ? "less" : "more")
            }
            for apt in all where apt.model == model && apt.label.hasPrefix("apt@") {
                let acc = mean(apt.runs) { $0.accuracy }
                s += String(
                    format: "  %@: %.4f (%@ the band), %@ energy, %@ peak training memory\n",
                    apt.label as NSString, acc, (acc >= band.lowerBound ? "within" : "below") as NSString,
                    saving(1 - mean(apt.runs) { $0.energyJ } / bestEnergy) as NSString,
                    saving(1 - mean(apt.runs) { Double($0.peakTrainBytes) } / bestMemory) as NSString)
            }
        }
        return s
    }
}
