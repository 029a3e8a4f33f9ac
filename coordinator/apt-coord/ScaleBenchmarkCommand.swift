import APTCommandLine
import APTCoordinator
import APTCore
import Foundation

/// `apt-coord benchmark-scale`: one coordinator against simulated fleets of growing size.
enum ScaleBenchmarkCommand {
    static let spec = CommandSpec(
        name: "apt-coord benchmark-scale",
        overview: "Measure how many nodes one coordinator carries: for each count, apt-coord serve against "
            + "apt-node simulate --count N on loopback (every node in every round), and print the round latency "
            + "(TASKs out to round committed), updates folded per second, delta wire MB/s, and the coordinator's "
            + "CPU time and peak RSS. A count whose rounds do not complete is reported with why. Use a release build.",
        options: [
            .value("counts", "list", "Comma-separated fleet sizes.", default: "50,200,500,1000"),
            .value("rounds", "n", "Rounds per fleet.", default: "3"),
            .value("model", "name", "mlp or lenet.", default: "mlp"),
            .value("uplink-bits", "b", "Bits per delta value.", default: "8"),
            .value("delay-ms", "ms", "Mean delay of a simulated node from TASK to UPDATE.", default: "200"),
            .value("round-timeout", "seconds", "How long a round may take.", default: "300"),
            .value(
                "dir", "dir", "Where the ledgers and logs go (replaced if it holds an earlier run).",
                default: "apt-scale"),
            .value("format", "text|json", "Markdown table or JSON.", default: "text"),
        ])

    /// One fleet size's figures.
    struct Row: Codable {
        var nodes: Int
        var roundsCompleted: Int
        var roundLatencyS: Double
        var updatesPerSecond: Double
        var deltaMBPerSecond: Double
        var updateBytes: Double
        var coordinatorCPUSecondsPerRound: Double
        var coordinatorPeakRSSBytes: Int
        var simulatorPeakRSSBytes: Int
        var problem: String?
    }

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in
            let counts = try args.list("counts", default: ["50", "200", "500", "1000"]).map {
                text throws(UsageError) -> Int in
                guard let n = Int(text), (1...10_000).contains(n) else {
                    throw UsageError("--counts expects fleet sizes in 1...10000, got '\(text)'")
                }
                return n
            }
            let rounds = try args.int("rounds", default: 3)
            guard rounds >= 1 else { throw UsageError("--rounds must be at least 1") }
            let modelName = args.string("model", default: "mlp")
            guard ModelSpec.builtIn[modelName] != nil else {
                throw UsageError("--model expects mlp or lenet, got '\(modelName)'")
            }
            let bits = try args.int("uplink-bits", default: 8)
            guard (1...16).contains(bits) else { throw UsageError("--uplink-bits must be in 1...16, got \(bits)") }
            let delay = try args.int("delay-ms", default: 200)
            let timeout = try args.double("round-timeout", default: 300)
            guard delay >= 0, timeout > 0 else { throw UsageError("--delay-ms must be ≥ 0, --round-timeout > 0") }
            let json = try args.choice("format", among: ["text", "json"]) == "json"
            let root = try DemoCommand.prepare(args.string("dir", default: "apt-scale"))
            let tools = try DemoCommand.toolPaths()
            ShutdownSignal.install()
            var rows: [Row] = []
            for n in counts {
                if ShutdownSignal.requested { throw CommandFailure("interrupted") }
                console.err("\(n) simulated nodes, \(rounds) rounds …\n")
                let row = try measure(
                    nodes: n, rounds: rounds, model: modelName, bits: bits, delayMs: delay, timeout: timeout,
                    dir: "\(root)/\(n)", tools: tools)
                console.err(
                    row.problem.map { "      stopped: \($0)\n" }
                        ?? String(
                            format: "      %.2f s per round, %.0f updates/s\n", row.roundLatencyS, row.updatesPerSecond)
                )
                rows.append(row)
            }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                console.out(String(decoding: try encoder.encode(rows), as: UTF8.self) + "\n")
                return
            }
            console.out(
                "| nodes | rounds | round latency s | updates/s | delta MB/s | UPDATE bytes | coordinator CPU s/round "
                    + "| coordinator peak RSS MiB | simulator peak RSS MiB |\n|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
            )
            for r in rows {
                if let p = r.problem {
                    console.out("| \(r.nodes) | \(r.roundsCompleted) of \(rounds) | \(p) | | | | | | |\n")
                    continue
                }
                console.out(
                    String(
                        format: "| %d | %d | %.2f | %.0f | %.1f | %.0f | %.2f | %.1f | %.1f |\n", r.nodes,
                        r.roundsCompleted, r.roundLatencyS, r.updatesPerSecond, r.deltaMBPerSecond, r.updateBytes,
                        r.coordinatorCPUSecondsPerRound, Double(r.coordinatorPeakRSSBytes) / 1_048_576,
                        Double(r.simulatorPeakRSSBytes) / 1_048_576))
            }
        }
    }

    /// One coordinator and `nodes` simulated nodes for `rounds` rounds; the figures from the ledger and the two
    /// processes' own last lines.
    static func measure(
        nodes n: Int, rounds: Int, model: String, bits: Int, delayMs: Int, timeout: Double, dir: String,
        tools: (coord: String, node: String)
    ) throws -> Row {
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        } catch {
            throw CommandFailure("cannot create \(dir): \(error.localizedDescription)")
        }
        var fleet = LocalFleet(directory: dir, tools: tools, data: "")
        defer { fleet.stopAll() }
        let (serve, endpoint, _) = try fleet.startCoordinator([
            "serve", "--bind", "tcp://127.0.0.1:*", "--ledger", dir + "/ledger.sqlite", "--model", model, "--rounds",
            String(rounds), "--min-nodes", String(n), "--wait-for", String(n), "--round-timeout", String(timeout),
            "--uplink-bits", String(bits), "--log-format", "json",
        ])
        let simulator = try fleet.startNodeTool(
            [
                "simulate", "--coordinator", endpoint, "--count", String(n), "--model", model, "--delay-ms",
                String(delayMs), "--log-format", "json",
            ], log: "simulate.log")
        var exitEvent: [String: Any]? = nil
        let deadline = Date().addingTimeInterval(60 + Double(rounds) * timeout)
        var problem: String? = nil
        while serve.isRunning {
            if ShutdownSignal.requested { throw CommandFailure("interrupted") }
            for e in fleet.coordinatorLog.newEvents() where e["event"] as? String == "exit" { exitEvent = e }
            if !simulator.isRunning {
                // After the last round the simulator leaves as soon as it is told BYE; the coordinator is then
                // finishing. A coordinator still running 10 s later lost its nodes.
                let grace = Date().addingTimeInterval(10)
                while serve.isRunning && Date() < grace { usleep(50_000) }
                if serve.isRunning {
                    problem = "the simulator exited (status \(simulator.terminationStatus)); see \(dir)/simulate.log"
                }
                break
            }
            if Date() > deadline {
                problem = "no end within \(Int(60 + Double(rounds) * timeout)) s"
                break
            }
            usleep(100_000)
        }
        for e in fleet.coordinatorLog.newEvents() where e["event"] as? String == "exit" { exitEvent = e }
        fleet.waitForAll(seconds: 30)
        let simDone = LogFollower(path: dir + "/simulate.log").newEvents().last { $0["event"] as? String == "done" }
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let summary = try FleetRunSummary(ledger: ledger)
        let latencies = summary.roundSeconds
        let busy = latencies.reduce(0, +)
        if problem == nil && (serve.terminationStatus != 0 || summary.rounds < rounds) {
            problem = "apt-coord serve exited with status \(serve.terminationStatus) after \(summary.rounds) rounds"
        }
        return Row(
            nodes: n, roundsCompleted: summary.rounds,
            roundLatencyS: latencies.sorted().dropFirst(latencies.count / 2).first ?? 0,
            updatesPerSecond: busy > 0 ? Double(summary.updates) / busy : 0,
            deltaMBPerSecond: busy > 0 ? Double(summary.bytesUp) / busy / 1e6 : 0,
            updateBytes: summary.updates > 0 ? Double(summary.bytesUp) / Double(summary.updates) : 0,
            coordinatorCPUSecondsPerRound: (exitEvent?["cpu_s"] as? Double ?? 0) / Double(max(1, summary.rounds)),
            coordinatorPeakRSSBytes: exitEvent?["peak_rss_bytes"] as? Int ?? 0,
            simulatorPeakRSSBytes: simDone?["peak_rss_bytes"] as? Int ?? 0, problem: problem)
    }
}
