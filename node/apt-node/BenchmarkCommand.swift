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
            .value("data", "dir", "Directory with the IDX files.", default: "/usr/share/datasets/fashion-mnist"),
            .value("models", "list", "Comma-separated models.", default: "mlp,lenet"),
            .value("precisions", "list", "Comma-separated configurations (apt@KNOB for APT).",
                   default: "fp32,fixed:8,fixed:16,apt@0.25,apt@0.5,apt@0.75"),
            .value("epochs", "n", "Epochs per run.", default: "3"),
            .value("seed", "s", "Seed shared by every run.", default: "0"),
            .value("train-limit", "n", "Use only the first n training samples."),
            .value("extra", "args", "Extra arguments passed to every 'apt-node train' run (one string)."),
            .value("out", "dir", "Keep each run's JSON report in this directory."),
            .value("format", "text|json", "Markdown table or JSON array of reports.", default: "text"),
        ])

    static func run(_ arguments: [String]) -> Never {
        let args: ParsedArguments
        do { args = try parseArguments(arguments, spec: spec) } catch { Terminal.usageFailure(error.message, spec: spec) }
        if args.helpRequested {
            Terminal.out(spec.helpText)
            exit(0)
        }
        let models = (args["models"] ?? "mlp,lenet").split(separator: ",").map(String.init)
        let precisions = (args["precisions"] ?? "fp32,fixed:8,fixed:16,apt@0.25,apt@0.5,apt@0.75")
            .split(separator: ",").map(String.init)
        let outDir = args["out"] ?? NSTemporaryDirectory() + "apt-bench-\(getpid())"
        try? FileManager.default.createDirectory(atPath: outDir, withIntermediateDirectories: true)
        let exe = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath().path
        var reports: [TrainingReport] = []
        for model in models {
            for p in precisions {
                var runArgs = ["train", "--model", model, "--epochs", args["epochs"] ?? "3", "--seed", args["seed"] ?? "0",
                               "--data", args["data"] ?? "/usr/share/datasets/fashion-mnist", "--quiet"]
                if p.hasPrefix("apt@") {
                    runArgs += ["--precision", "apt", "--tradeoff", String(p.dropFirst(4))]
                } else {
                    runArgs += ["--precision", p]
                }
                if let l = args["train-limit"] { runArgs += ["--train-limit", l] }
                if let e = args["extra"] { runArgs += e.split(separator: " ").map(String.init) }
                let path = "\(outDir)/\(model)-\(p.replacingOccurrences(of: ":", with: "_")).json"
                runArgs += ["--report", path]
                Terminal.err("running: apt-node \(runArgs.joined(separator: " "))\n")
                let proc = Process()
                proc.executableURL = URL(fileURLWithPath: exe)
                proc.arguments = runArgs
                proc.standardOutput = FileHandle.nullDevice
                do {
                    try proc.run()
                    proc.waitUntilExit()
                } catch {
                    Terminal.failure("cannot start \(exe): \(error)")
                }
                guard proc.terminationStatus == 0, let data = FileManager.default.contents(atPath: path),
                      let r = try? JSONDecoder().decode(TrainingReport.self, from: data)
                else {
                    Terminal.failure("run '\(runArgs.joined(separator: " "))' failed with status \(proc.terminationStatus)")
                }
                reports.append(r)
            }
        }
        if args["format"] == "json" {
            Terminal.out(String(decoding: (try? jsonData(reports)) ?? Data(), as: UTF8.self) + "\n")
        } else {
            Terminal.out(table(reports))
        }
        exit(0)
    }

    static func table(_ reports: [TrainingReport]) -> String {
        var s = "| model | precision | knob | accuracy | Δacc vs fp32 | energy J | energy saved | peak train bytes | memory saved | peak RSS MiB | samples/s | final bits |\n"
        s += "|---|---|---|---|---|---|---|---|---|---|---|---|\n"
        for r in reports {
            let base = reports.first { $0.model == r.model && $0.precision == "fp32" }
            let dAcc = base.map { String(format: "%+.2f", (r.accuracy - $0.accuracy) * 100) } ?? "–"
            let eSaved = base.map { String(format: "%.1f%%", (1 - r.energyJ / $0.energyJ) * 100) } ?? "–"
            let mSaved = base.map {
                String(format: "%.1f%%", (1 - Double(r.peakTrainBytes) / Double($0.peakTrainBytes)) * 100)
            } ?? "–"
            let knob = r.precision == "apt" ? String(r.tradeoff) : "–"
            s += String(format: "| %@ | %@ | %@ | %.4f | %@ | %.4g | %@ | %d | %@ | %.0f | %.0f | %@ |\n",
                        r.model as NSString, r.precision as NSString, knob as NSString, r.accuracy, dAcc as NSString,
                        r.energyJ, eSaved as NSString, r.peakTrainBytes, mSaved as NSString,
                        Double(r.peakRssBytes) / 1_048_576, r.samplesPerS,
                        r.bits.map(String.init).joined(separator: "/") as NSString)
        }
        return s
    }
}
