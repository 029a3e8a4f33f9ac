import APTCommandLine
import APTCoordinator
import APTCore
import APTProtocol
import Foundation

/// `apt-coord demo`: a whole fleet on this machine — `apt-coord serve` and N real `apt-node run` processes on
/// loopback, a mix of boards and budgets, Fashion-MNIST split non-IID — with round-by-round progress, the ledger
/// at the end, and every process it started stopped on success, failure and Ctrl-C.
enum DemoCommand {
    static let spec = CommandSpec(
        name: "apt-coord demo",
        overview: "Run a local fleet: apt-coord serve and N apt-node run processes on loopback, each a different "
            + "board with its own energy and memory budget (one too poor in energy to last, one tight in memory), "
            + "training on Fashion-MNIST split non-IID. Prints each round, then the fleet ledger.",
        options: [
            .value("nodes", "n", "Nodes to start (2...64).", default: "8"),
            .value("rounds", "n", "Rounds to run.", default: "20"),
            .value("model", "name", "mlp or lenet.", default: "mlp"),
            .value(
                "partition", "spec", "How the data is split: iid, labels:K or dirichlet:ALPHA.",
                default: "dirichlet:0.5"),
            .value("steps", "n", "Local steps per round at most.", default: "20"),
            .value(
                "uplink-bits", "b", "Bits per value of the nodes' deltas (with error feedback), 1...16.", default: "3"),
            .value("seed", "s", "Seed of the split and the nodes' sampling.", default: "0"),
            .flag("secure", "Generate CURVE keys and run encrypted and authenticated end to end."),
            .value(
                "dir", "dir", "Where the ledger, keys, state dirs and logs go (replaced if it holds an earlier demo).",
                default: "apt-demo"),
            .value("data", "dir", "Directory with the Fashion-MNIST IDX files.", default: Dataset.defaultDirectory),
            .value("html", "file", "Where to write the HTML report (default: DIR/report.html)."),
        ])

    /// One node of the demo fleet.
    struct Board {
        var name: String
        var profile: DeviceProfile
        var energyBudgetJ: Double
        var memoryBudgetBytes: Int
        var note: String
    }

    static func run(_ arguments: [String], console: Console) -> Int32 {
        spec.execute(arguments, console: console) { args in try demo(args, console: console) }
    }

    static func demo(_ args: ParsedArguments, console: Console) throws {
        let count = try args.int("nodes", default: 8)
        let rounds = try args.int("rounds", default: 20)
        let steps = try args.int("steps", default: 20)
        guard (2...64).contains(count) else { throw UsageError("--nodes must be in 2...64, got \(count)") }
        guard rounds >= 1, steps >= 1 else { throw UsageError("--rounds and --steps must be at least 1") }
        let uplinkBits = try args.int("uplink-bits", default: 3)
        guard (1...16).contains(uplinkBits) else {
            throw UsageError("--uplink-bits must be in 1...16, got \(uplinkBits)")
        }
        let modelName = args.string("model", default: "mlp")
        guard let model = ModelSpec.builtIn[modelName] else {
            throw UsageError("--model expects mlp or lenet, got '\(modelName)'")
        }
        let partition = args.string("partition", default: "dirichlet:0.5")
        do {
            _ = try PartitionScheme(parsing: partition)
        } catch {
            throw UsageError("\(error)")
        }
        let seed = max(0, try args.int("seed", default: 0))
        let data = args.string("data", default: Dataset.defaultDirectory)
        let dir = try prepare(args.string("dir", default: "apt-demo"))
        let tools = try toolPaths()
        let boards = try fleet(count: count, model: model, steps: steps)

        var fleet = LocalFleet(directory: dir, tools: tools, data: data)
        ShutdownSignal.install()
        defer { fleet.stopAll() }

        var serveArgs = [
            "serve", "--bind", "tcp://127.0.0.1:*", "--ledger", dir + "/ledger.sqlite", "--model", modelName,
            "--rounds",
            String(rounds), "--min-nodes",
            // Quorum half the fleet, but never more than the nodes left once the poor one retires.
            String(max(1, min(count - 2, count / 2))), "--wait-for", String(count), "--steps", String(steps),
            "--round-timeout", "60", "--uplink-bits", String(uplinkBits),
            "--eval-data", data, "--eval-limit", "2000", "--log-format", "json",
        ]
        var nodeKeys: [String: String] = [:]
        if args.flag("secure") {
            do {
                _ = try KeyFiles.create(prefix: dir + "/keys/coordinator", overwrite: true)
                var allow = "# the demo fleet\n"
                for b in boards {
                    let files = try KeyFiles.create(prefix: dir + "/keys/" + b.name, overwrite: true)
                    allow += files.keys.publicKey + "\n"
                    nodeKeys[b.name] = dir + "/keys/" + b.name
                }
                try allow.write(toFile: dir + "/keys/allow.txt", atomically: true, encoding: .utf8)
            } catch {
                throw CommandFailure("cannot make the demo's keys: \(error)")
            }
            serveArgs += ["--curve-secret", dir + "/keys/coordinator.key", "--allow", dir + "/keys/allow.txt"]
        }
        let (serve, endpoint, early) = try fleet.startCoordinator(serveArgs)
        let coordinatorLog = fleet.coordinatorLog
        console.out(
            "APT Fleet demo: \(count) nodes, \(rounds) rounds of \(modelName) on Fashion-MNIST (\(partition)), "
                + (args.flag("secure") ? "CURVE on" : "plain loopback") + "; coordinator at \(endpoint)\n")
        for (i, b) in boards.enumerated() {
            var extra: [String] = []
            if let key = nodeKeys[b.name] {
                extra = ["--key", key, "--coordinator-key", dir + "/keys/coordinator.pub"]
            }
            try fleet.startNode(
                b, shard: "\(i)/\(count)", endpoint: endpoint, partition: partition, seed: seed, extra: extra)
            console.out(
                "  \(b.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(b.profile.name), "
                    + "\(String(format: "%.3g", b.energyBudgetJ)) J, \(b.memoryBudgetBytes / 1024) KiB — \(b.note)\n")
        }
        // Progress: the coordinator's own JSON log, one line per round and per notable event.
        for event in early { report(event, rounds: rounds, console: console) }
        var lastProgress = Date()
        while serve.isRunning {
            if ShutdownSignal.requested {
                console.out("interrupted: stopping the fleet\n")
                throw CommandFailure("interrupted; the ledger so far is in \(dir)/ledger.sqlite")
            }
            let events = coordinatorLog.newEvents()
            if !events.isEmpty { lastProgress = Date() }
            for event in events { report(event, rounds: rounds, console: console) }
            // A round has 60 s; a fleet that says nothing for three minutes is stuck: stop it and say where to look.
            if Date().timeIntervalSince(lastProgress) > 180 {
                throw CommandFailure(
                    "no progress for 3 minutes; see \(dir)/coordinator.log and the node logs beside it")
            }
            usleep(50_000)
        }
        for event in coordinatorLog.newEvents() { report(event, rounds: rounds, console: console) }
        guard serve.terminationStatus == 0 else {
            throw CommandFailure(
                "apt-coord serve exited with status \(serve.terminationStatus): \(coordinatorLog.tail())")
        }
        fleet.waitForAll(seconds: 15)
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        console.out("\n" + LedgerCommand.render(try ledger.fleet(), title: "nodes", format: "table"))
        console.out("\n" + LedgerCommand.render(try ledger.roundHistory(), title: "rounds", format: "table"))
        let report = args["html"] ?? dir + "/report.html"
        try ReportCommand.write(ledger: dir + "/ledger.sqlite", to: report)
        console.out(
            "\nledger: \(dir)/ledger.sqlite (apt-coord ledger --ledger \(dir)/ledger.sqlite --node NAME)\n"
                + "report: \(report)\nlogs: \(dir)/coordinator.log, \(dir)/<node>.log\n")
    }

    /// Prints one coordinator event worth a newcomer's attention.
    static func report(_ event: [String: Any], rounds: Int, console: Console) {
        switch event["event"] as? String {
        case "round":
            let r = event["round"] as? Int ?? 0
            let accuracy = (event["accuracy"] as? Double).map { String(format: "%.4f", $0) } ?? "–"
            let energy = event["energy_j"] as? Double ?? 0
            let up = Double(event["bytes_up"] as? Int ?? 0) / 1e6
            let down = Double(event["bytes_down"] as? Int ?? 0) / 1e6
            let ok = event["ok"] as? Int ?? 0
            let partial = event["partial"] as? Int ?? 0
            let dropped = event["dropped"] as? Int ?? 0
            let rejected = event["rejected"] as? Int ?? 0
            console.out(
                String(
                    format: "round %3d/%d  accuracy %@  energy %.4g J  up %.2f MB  down %.2f MB  updates %d ok",
                    r, rounds, accuracy, energy, up, down, ok)
                    + (partial > 0 ? ", \(partial) partial" : "") + (dropped > 0 ? ", \(dropped) dropped" : "")
                    + (rejected > 0 ? ", \(rejected) rejected" : "") + "\n")
        case "retired", "distrusted", "policy-pushed", "round-failed":
            console.out("  \(event["message"] as? String ?? "")\n")
        default:
            break
        }
    }

    /// The demo's directory, made fresh: an earlier demo's is replaced, anything else is refused.
    static func prepare(_ dir: String) throws -> String {
        let fm = FileManager.default
        let marker = dir + "/.apt-demo"
        if fm.fileExists(atPath: dir) {
            let contents = (try? fm.contentsOfDirectory(atPath: dir)) ?? []
            guard contents.isEmpty || fm.fileExists(atPath: marker) else {
                throw CommandFailure("\(dir) exists and is not an earlier demo's directory; choose another --dir")
            }
            for item in contents { try? fm.removeItem(atPath: dir + "/" + item) }
        }
        do {
            try fm.createDirectory(atPath: dir + "/keys", withIntermediateDirectories: true)
            try "made by apt-coord demo\n".write(toFile: marker, atomically: true, encoding: .utf8)
        } catch {
            throw CommandFailure("cannot create \(dir): \(error.localizedDescription)")
        }
        return dir
    }

    /// This executable and the `apt-node` beside it.
    static func toolPaths() throws -> (coord: String, node: String) {
        let me = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        let node = me.deletingLastPathComponent().appendingPathComponent("apt-node").path
        guard FileManager.default.isExecutableFile(atPath: node) else {
            throw CommandFailure(
                "apt-node is not beside apt-coord (looked for \(node)); build both: swift build -c release")
        }
        return (me.path, node)
    }

    /// The demo fleet: boards cycling through the built-in profiles, generous budgets except node 1 (energy for
    /// three lean steps: the policy engine paces it to one step a round, then retires it) and node 2 (memory for a
    /// batch of 16 at 8-bit weights: the policy engine must cap its bits and batch).
    static func fleet(count: Int, model: ModelSpec, steps: Int) throws -> [Board] {
        let profiles = [DeviceProfile.raspberryPi4, .jetsonNano, .cortexM7, .generic45nm]
        var lean = PolicyEngine(model: model, stepsPerRound: steps)
        lean.tradeoff = lean.leanTradeoff
        let c = TrainingConfiguration(model: model, precision: .apt, tradeoff: lean.tradeoff)
        let memory = try MemoryModel(spec: model, mode: .apt, quantization: c.quantization, momentum: c.momentum)
        let tightMemory = memory.footprint(batch: 16, uniformWeightBits: 8).totalBytes + 4096
        return try (0..<count).map { i in
            let profile = profiles[i % profiles.count]
            let kind = ["pi4", "jetson", "m7", "gateway"][i % profiles.count]
            var board = Board(
                name: "\(kind)-\(i)", profile: profile, energyBudgetJ: 1, memoryBudgetBytes: 64 << 20,
                note: "room to spare")
            if i == 1 {
                let step = try lean.plan(
                    for: NodeBudget(
                        profile: profile, energyBudgetJ: 1e6, energySpentJ: 0, memoryBudgetBytes: 64 << 20,
                        localSamples: 1000), roundsLeft: 1
                ).stepCostJ
                board.energyBudgetJ = 3.5 * step
                board.note = "energy for about three lean steps: retires early"
            }
            if i == 2 {
                board.memoryBudgetBytes = tightMemory
                board.note = "tight memory: the policy engine caps its bits and batch"
            }
            return board
        }
    }
}
