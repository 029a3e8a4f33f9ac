import APTCommandLine
import APTCoordinator
import APTCore
import Foundation

/// `apt-coord benchmark-fleet`: the same local fleet run twice — APT nodes sending quantised deltas, and float32
/// nodes sending float32 deltas (plain FedAvg through the same coordinator) — for each partition and seed, with the
/// figures side by side.
enum FleetBenchmarkCommand {
    static let spec = CommandSpec(
        name: "apt-coord benchmark-fleet",
        overview: "Run the demo's fleet (same boards, shards, seeds, rounds and steps) twice per partition and seed — "
            + "APT with quantised deltas, then float32 training with float32 deltas (FedAvg) — as real processes on "
            + "loopback, and print final and best accuracy, rounds to a target accuracy, fleet training energy, peak "
            + "node training memory and RSS, bytes per node per round each way, wall time per round, and the "
            + "coordinator's CPU time and peak RSS. Budgets are lifted so both fleets do the same work. Use a release "
            + "build.",
        options: [
            .value("nodes", "n", "Nodes per fleet (2...64).", default: "8"),
            .value("rounds", "n", "Rounds per run.", default: "20"),
            .value("steps", "n", "Local steps per round.", default: "20"),
            .value("model", "name", "mlp or lenet.", default: "mlp"),
            .value("partitions", "list", "Comma-separated splits.", default: "iid,dirichlet:0.5,labels:2"),
            .value("seeds", "list", "Comma-separated seeds.", default: "0,1,2"),
            .value("uplink-bits", "b", "Bits per value of an APT node's delta.", default: "3"),
            .value("target", "accuracy", "Accuracy for the rounds-to-target row.", default: "0.8"),
            .value(
                "dir", "dir", "Where the runs' ledgers and logs go (replaced if it holds an earlier run).",
                default: "apt-benchmark"),
            .value("data", "dir", "Directory with the Fashion-MNIST IDX files.", default: Dataset.defaultDirectory),
            .value("format", "text|json", "Markdown tables or JSON.", default: "text"),
        ])

    /// One fleet run's figures: the ledger's and the processes' own.
    struct Run: Codable {
        var precision: String
        var partition: String
        var seed: Int
        var summary: FleetRunSummary
        /// The largest peak RSS of any node process, bytes.
        var peakNodeRSSBytes: Int
        /// The coordinator's CPU time, seconds.
        var coordinatorCPUSeconds: Double
        /// The coordinator's peak RSS, bytes.
        var coordinatorPeakRSSBytes: Int
    }

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in try benchmark(args, console: console) }
    }

    static func benchmark(_ args: ParsedArguments, console: Console) throws {
        let count = try args.int("nodes", default: 8)
        let rounds = try args.int("rounds", default: 20)
        let steps = try args.int("steps", default: 20)
        guard (2...64).contains(count) else { throw UsageError("--nodes must be in 2...64, got \(count)") }
        guard rounds >= 1, steps >= 1 else { throw UsageError("--rounds and --steps must be at least 1") }
        let modelName = args.string("model", default: "mlp")
        guard let model = ModelSpec.builtIn[modelName] else {
            throw UsageError("--model expects mlp or lenet, got '\(modelName)'")
        }
        let partitions = args.list("partitions", default: ["iid", "dirichlet:0.5", "labels:2"])
        for p in partitions {
            do {
                _ = try PartitionScheme(parsing: p)
            } catch {
                throw UsageError("--partitions: \(error)")
            }
        }
        let seeds = try args.list("seeds", default: ["0", "1", "2"]).map { text throws(UsageError) -> Int in
            guard let s = Int(text), s >= 0 else {
                throw UsageError("--seeds expects non-negative integers, got '\(text)'")
            }
            return s
        }
        let uplinkBits = try args.int("uplink-bits", default: 3)
        guard (1...16).contains(uplinkBits) else {
            throw UsageError("--uplink-bits must be in 1...16, got \(uplinkBits)")
        }
        let target = try args.double("target", default: 0.8)
        guard target > 0, target <= 1 else { throw UsageError("--target must be in (0, 1], got \(target)") }
        let json = try args.choice("format", among: ["text", "json"]) == "json"
        let data = args.string("data", default: Dataset.defaultDirectory)
        let root = try DemoCommand.prepare(args.string("dir", default: "apt-benchmark"))
        let tools = try DemoCommand.toolPaths()
        // The demo's boards, with budgets no run reaches: both fleets train every step of every round.
        let boards = try DemoCommand.fleet(count: count, model: model, steps: steps).map { b in
            var b = b
            b.energyBudgetJ = 1e6
            b.memoryBudgetBytes = 256 << 20
            return b
        }
        ShutdownSignal.install()
        var runs: [Run] = []
        let total = partitions.count * seeds.count * 2
        for partition in partitions {
            for seed in seeds {
                for precision in ["apt", "fp32"] {
                    if ShutdownSignal.requested { throw CommandFailure("interrupted") }
                    let dir = "\(root)/\(partition.replacingOccurrences(of: ":", with: "-"))-seed\(seed)-\(precision)"
                    console.err(
                        "[\(runs.count + 1)/\(total)] \(partition), seed \(seed), \(precision): \(count) nodes × "
                            + "\(rounds) rounds …\n")
                    let run = try fleetRun(
                        precision: precision, partition: partition, seed: seed, boards: boards, rounds: rounds,
                        steps: steps, modelName: modelName, uplinkBits: uplinkBits, dir: dir, tools: tools, data: data)
                    console.err(
                        String(
                            format: "      final accuracy %.4f, fleet energy %.4g J, %.1f s per round\n",
                            run.summary.finalAccuracy, run.summary.fleetEnergyJ, run.summary.wallPerRoundS))
                    runs.append(run)
                }
            }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let bytes = try encoder.encode(runs)
            console.out(String(decoding: bytes, as: UTF8.self) + "\n")
            return
        }
        console.out(
            "Fleet benchmark: \(count) nodes × \(rounds) rounds × \(steps) steps of \(modelName), seeds "
                + "\(seeds.map(String.init).joined(separator: ",")); APT uplink \(uplinkBits)-bit deltas, float32 "
                + "FedAvg uplink binary32 deltas. Mean over seeds, [min, max] where they differ.\n")
        for partition in partitions {
            let apt = runs.filter { $0.partition == partition && $0.precision == "apt" }
            let fp32 = runs.filter { $0.partition == partition && $0.precision == "fp32" }
            console.out("\n" + table(partition: partition, apt: apt, fp32: fp32, target: target))
        }
    }

    /// Runs one fleet of `boards` at `precision` to completion and reads its figures.
    static func fleetRun(
        precision: String, partition: String, seed: Int, boards: [DemoCommand.Board], rounds: Int, steps: Int,
        modelName: String, uplinkBits: Int, dir: String, tools: (coord: String, node: String), data: String
    ) throws -> Run {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure("cannot create \(dir): \(error.localizedDescription)")
        }
        var fleet = LocalFleet(directory: dir, tools: tools, data: data)
        defer { fleet.stopAll() }
        let (serve, endpoint, _) = try fleet.startCoordinator([
            "serve", "--bind", "tcp://127.0.0.1:*", "--ledger", dir + "/ledger.sqlite", "--model", modelName,
            "--rounds", String(rounds), "--min-nodes", String(boards.count), "--wait-for", String(boards.count),
            "--steps", String(steps), "--round-timeout", "120", "--uplink-bits", String(uplinkBits),
            "--eval-data", data, "--eval-limit", "2000", "--seed", String(seed), "--log-format", "json",
        ])
        for (i, b) in boards.enumerated() {
            try fleet.startNode(
                b, shard: "\(i)/\(boards.count)", endpoint: endpoint, partition: partition, seed: seed,
                extra: ["--precision", precision])
        }
        var lastProgress = Date()
        var exitEvent: [String: Any]? = nil
        while serve.isRunning {
            if ShutdownSignal.requested { throw CommandFailure("interrupted") }
            let events = fleet.coordinatorLog.newEvents()
            if !events.isEmpty { lastProgress = Date() }
            for e in events where e["event"] as? String == "exit" { exitEvent = e }
            if Date().timeIntervalSince(lastProgress) > 300 {
                throw CommandFailure("no progress for 5 minutes; see \(dir)/coordinator.log and the node logs")
            }
            usleep(50_000)
        }
        for e in fleet.coordinatorLog.newEvents() where e["event"] as? String == "exit" { exitEvent = e }
        guard serve.terminationStatus == 0, let exitEvent else {
            throw CommandFailure(
                "apt-coord serve exited with status \(serve.terminationStatus): \(fleet.coordinatorLog.tail())")
        }
        fleet.waitForAll(seconds: 15)
        // Each node's own peak RSS, from its last line ("done").
        var nodeRSS = 0
        for b in boards {
            let events = LogFollower(path: "\(dir)/\(b.name).log").newEvents()
            guard let done = events.last(where: { $0["peak_rss_bytes"] != nil }),
                let rss = done["peak_rss_bytes"] as? Int
            else {
                throw CommandFailure("\(b.name) did not report its peak RSS; see \(dir)/\(b.name).log")
            }
            nodeRSS = max(nodeRSS, rss)
        }
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let summary = try FleetRunSummary(ledger: ledger)
        guard summary.rounds == rounds else {
            throw CommandFailure("the \(precision) fleet completed \(summary.rounds) of \(rounds) rounds; see \(dir)")
        }
        return Run(
            precision: precision, partition: partition, seed: seed, summary: summary, peakNodeRSSBytes: nodeRSS,
            coordinatorCPUSeconds: exitEvent["cpu_s"] as? Double ?? 0,
            coordinatorPeakRSSBytes: exitEvent["peak_rss_bytes"] as? Int ?? 0)
    }

    /// The side-by-side Markdown table of one partition.
    static func table(partition: String, apt: [Run], fp32: [Run], target: Double) -> String {
        func mean(_ v: [Double]) -> Double { v.isEmpty ? 0 : v.reduce(0, +) / Double(v.count) }
        func cell(_ v: [Double], _ f: (Double) -> String) -> String {
            guard let lo = v.min(), let hi = v.max() else { return "–" }
            let m = f(mean(v))
            return f(lo) == f(hi) ? m : "\(m) [\(f(lo)), \(f(hi))]"
        }
        func acc(_ x: Double) -> String { String(format: "%.4f", x) }
        func num(_ x: Double) -> String { String(format: "%.4g", x) }
        func mib(_ x: Double) -> String { String(format: "%.1f", x / 1_048_576) }
        func kib(_ x: Double) -> String { String(format: "%.1f", x / 1024) }
        func saving(_ a: [Double], _ f: [Double]) -> String {
            let (ma, mf) = (mean(a), mean(f))
            return mf > 0 ? String(format: "%.1f%% less", 100 * (1 - ma / mf)) : "–"
        }
        func times(_ a: [Double], _ f: [Double]) -> String {
            let (ma, mf) = (mean(a), mean(f))
            return ma > 0 ? String(format: "%.2f× fewer", mf / ma) : "–"
        }
        var rows: [(String, (Run) -> Double, (Double) -> String, ([Double], [Double]) -> String)] = [
            (
                "final accuracy", { $0.summary.finalAccuracy }, acc,
                { a, f in String(format: "%+.2f pts", 100 * (mean(a) - mean(f))) }
            ),
            (
                "mean accuracy, last 5 rounds", { $0.summary.meanAccuracy(lastRounds: 5) }, acc,
                { a, f in String(format: "%+.2f pts", 100 * (mean(a) - mean(f))) }
            ),
            (
                "best accuracy", { $0.summary.bestAccuracy }, acc,
                { a, f in String(format: "%+.2f pts", 100 * (mean(a) - mean(f))) }
            ),
        ]
        rows.append(
            (
                "rounds to \(acc(target))", { Double($0.summary.roundsToReach(target) ?? 0) },
                { $0 == 0 ? "not reached" : String(format: "%.1f", $0) }, { _, _ in "" }
            ))
        rows += [
            ("fleet training energy (J)", { $0.summary.fleetEnergyJ }, num, saving),
            ("peak node training memory (KiB)", { Double($0.summary.peakNodeMemoryBytes) }, kib, saving),
            ("peak node RSS (MiB)", { Double($0.peakNodeRSSBytes) }, mib, saving),
            (
                "uplink bytes per node per round", { $0.summary.bytesUpPerNodeRound }, { String(format: "%.0f", $0) },
                times
            ),
            (
                "downlink bytes per node per round", { $0.summary.bytesDownPerNodeRound },
                { String(format: "%.0f", $0) }, times
            ),
            ("wall time per round (s)", { $0.summary.wallPerRoundS }, { String(format: "%.2f", $0) }, saving),
            ("coordinator CPU (s)", { $0.coordinatorCPUSeconds }, { String(format: "%.2f", $0) }, saving),
            ("coordinator peak RSS (MiB)", { Double($0.coordinatorPeakRSSBytes) }, mib, saving),
        ]
        var out = "### \(partition)\n\n| | APT | float32 FedAvg | APT against float32 |\n|---|---|---|---|\n"
        for (name, value, format, compare) in rows {
            let a = apt.map(value)
            let f = fp32.map(value)
            out += "| \(name) | \(cell(a, format)) | \(cell(f, format)) | \(compare(a, f)) |\n"
        }
        return out
    }
}
