import APTCommandLine
import APTCoordinator
import APTCore
import Foundation

/// `apt-coord benchmark-aggregation`: how fast the coordinator turns UPDATE bytes into a new global model.
enum BenchmarkCommand {
    static let spec = CommandSpec(
        name: "apt-coord benchmark-aggregation",
        overview: "Measure aggregation throughput: UPDATE wire bytes decoded, checked and folded into the global "
            + "model per second (the path apt-coord serve runs), for a model's full delta at each bitwidth and "
            + "rule. Use a release build for figures.",
        options: [
            .value("model", "name|file", "mlp, lenet or a JSON model spec file.", default: "mlp"),
            .value("bits", "list", "Comma-separated delta bitwidths.", default: "2,4,8"),
            .value(
                "rules", "list", "Comma-separated rules (fedavg, fedadam, median, trimmed-mean:BETA).",
                default: "fedavg,median"),
            .value("nodes", "n", "Updates per round.", default: "8"),
            .value("rounds", "n", "Rounds timed (after one untimed).", default: "5"),
            .value("format", "text|json", "Markdown table or JSON.", default: "text"),
        ])

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            let model: ModelSpec
            do throws(ModelSpecError) {
                model = try ModelSpec.load(args.string("model", default: "mlp"))
            } catch {
                throw UsageError("\(error)")
            }
            let bits = try args.list("bits", default: ["2", "4", "8"]).map { text throws(UsageError) -> Int in
                guard let b = Int(text), (1...16).contains(b) else {
                    throw UsageError("--bits expects bitwidths in 1...16, got '\(text)'")
                }
                return b
            }
            let rules = try args.list("rules", default: ["fedavg", "median"]).map {
                text throws(UsageError) -> AggregationRule in
                guard let r = AggregationRule(parsing: text) else {
                    throw UsageError("--rules: unknown rule '\(text)' (fedavg, fedadam, median, trimmed-mean:BETA)")
                }
                return r
            }
            let nodes = try args.int("nodes", default: 8)
            let rounds = try args.int("rounds", default: 5)
            guard nodes >= 1, rounds >= 1 else { throw UsageError("--nodes and --rounds must be at least 1") }
            let format = try args.choice("format", among: ["text", "json"])
            var rows: [AggregationBenchmark.Row] = []
            for b in bits {
                let frames = try AggregationBenchmark.updates(model: model, bits: b, nodes: nodes)
                for rule in rules {
                    if format == "text" && console.errorIsTerminal {
                        console.progress("\(model.name) \(b) bits \(rule)…")
                    }
                    rows.append(
                        try AggregationBenchmark.run(model: model, rule: rule, bits: b, frames: frames, rounds: rounds))
                }
            }
            if format == "text" && console.errorIsTerminal { console.endProgress() }
            if format == "json" {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                console.out(String(decoding: try encoder.encode(rows), as: UTF8.self) + "\n")
                return
            }
            console.out("| model | rule | bits | updates/round | UPDATE bytes | round s | MB/s | updates/s |\n")
            console.out("|---|---|---:|---:|---:|---:|---:|---:|\n")
            for r in rows {
                console.out(
                    "| \(r.model) | \(r.rule) | \(r.bits) | \(r.nodes) | \(r.updateBytes) | "
                        + String(
                            format: "%.4f | %.1f | %.1f |\n", r.roundSeconds, r.megabytesPerSecond, r.updatesPerSecond))
            }
        }
    }
}
