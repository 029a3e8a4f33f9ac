import APTCoordinator
import APTCore
import Foundation
import Testing

/// A real fleet on loopback: `apt-coord serve` and three `apt-node run` processes, CURVE on, several rounds.
@Suite("A fleet on loopback", .serialized)
struct FleetTests {
    /// Starts `tool` with `arguments` (and `environment` added to this process's), its output going to `log`.
    func start(_ tool: String, _ arguments: [String], log: String, environment: [String: String] = [:]) throws
        -> Process
    {
        let p = Process()
        p.executableURL = productsDirectory.appendingPathComponent(tool)
        p.arguments = arguments
        if !environment.isEmpty {
            p.environment = ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
        }
        _ = FileManager.default.createFile(atPath: log, contents: nil)
        p.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: log))
        p.standardOutput = FileHandle.nullDevice
        try p.run()
        return p
    }

    func wait(_ p: Process, seconds: Double) -> Bool {
        let end = Date().addingTimeInterval(seconds)
        while p.isRunning && Date() < end { usleep(50_000) }
        if p.isRunning {
            // Nothing outlives its test.
            stop(p)
            return false
        }
        return true
    }

    @Test("three nodes and a coordinator complete 3 rounds with CURVE: accuracy rises, budgets hold, policies recorded")
    func fleet() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(try run("apt-coord", ["keygen", "--out", dir + "/coordinator"]).status == 0)
        var allow = "# the fleet\n"
        for i in 0..<3 {
            #expect(try run("apt-coord", ["keygen", "--out", "\(dir)/node-\(i)"]).status == 0)
            allow += try String(contentsOfFile: "\(dir)/node-\(i).pub", encoding: .utf8)
        }
        try allow.write(toFile: dir + "/allow.txt", atomically: true, encoding: .utf8)
        let ledgerPath = dir + "/ledger.sqlite"
        // The coordinator binds a free port and says which.
        let (server, endpoint, serverLog) = try serve(
            dir,
            [
                "--rounds", "3", "--min-nodes", "3", "--steps", "10", "--round-timeout", "60", "--eval-data",
                "/usr/share/datasets/fashion-mnist", "--eval-limit", "1000", "--curve-secret", dir + "/coordinator.key",
                "--allow", dir + "/allow.txt",
            ])
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(serverLog())")
        let budgets = [1.0, 1.0, 0.0005]
        var nodes: [Process] = []
        for i in 0..<3 {
            nodes.append(
                try start(
                    "apt-node",
                    [
                        "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                        "--energy-budget", String(budgets[i]), "--shard", "\(i)/3", "--train-limit", "640",
                        "--key", "\(dir)/node-\(i)", "--coordinator-key", dir + "/coordinator.pub",
                    ], log: "\(dir)/node-\(i).log"))
        }
        #expect(wait(server, seconds: 120), "the coordinator did not finish: \(serverLog())")
        for (i, n) in nodes.enumerated() {
            #expect(wait(n, seconds: 10), "node \(i) did not finish")
            #expect(
                n.terminationStatus == 0,
                "node \(i): \((try? String(contentsOfFile: "\(dir)/node-\(i).log", encoding: .utf8)) ?? "")")
        }
        #expect(server.terminationStatus == 0, "\(serverLog())")
        // The ledger, read-only as an operator would.
        let ledger = try LedgerStore(path: ledgerPath, readOnly: true)
        let rounds = try ledger.rounds().filter { $0.status == "completed" }
        #expect(rounds.map(\.number) == [1, 2, 3], "\(serverLog())")
        let accuracies = rounds.compactMap(\.accuracy)
        #expect(accuracies.count == 3)
        #expect((accuracies.last ?? 0) > (accuracies.first ?? 1), "accuracy did not rise: \(accuracies)")
        for row in try ledger.fleet() {
            let spent = row["energy_j"].double ?? .infinity
            let budget = row["energy_budget_j"].double ?? 0
            #expect(spent <= budget, "\(row["name"].string ?? "?") spent \(spent) of \(budget) J")
            #expect((row["peak_memory_bytes"].int ?? .max) <= (row["memory_budget_bytes"].int ?? 0))
            // Nodes are known by their CURVE keys, names are labels.
            #expect(row["identity"].string?.count == 40)
        }
        // The model a node holds at its bits is smaller than the float32 model, and recorded.
        let float32Bytes = try ModelSpec.mlp.parameterCounts().reduce(0, +) * 4
        let held = try ledger.database.rows("SELECT parameter_bytes FROM participations WHERE status = 'ok'")
        #expect(!held.isEmpty && held.allSatisfy { (1..<float32Bytes).contains($0["parameter_bytes"].int ?? 0) })
        let policies = try ledger.database.rows("SELECT reason FROM policies")
        #expect(policies.count >= 6)
        #expect(policies.allSatisfy { ($0["reason"].string ?? "").contains("steps of batch") })
    }

    @Test("a node killed with SIGKILL does not stop the rounds: they close at the deadline with the others")
    func killedNode() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-kill-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ledgerPath = dir + "/ledger.sqlite"
        let (server, endpoint, serverLog) = try serve(
            dir, ["--rounds", "2", "--min-nodes", "2", "--steps", "400", "--round-timeout", "4"])
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(serverLog())")
        var nodes: [Process] = []
        for i in 0..<3 {
            nodes.append(
                try start(
                    "apt-node",
                    [
                        "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                        "--energy-budget", "1", "--shard", "\(i)/3", "--train-limit", "6400",
                    ], log: "\(dir)/node-\(i).log"))
        }
        // Kill node 2 soon after it joins (while it trains, or between its rounds).
        let killBy = Date().addingTimeInterval(20)
        while Date() < killBy && !serverLog().contains("node pi-2 joined") { usleep(20_000) }
        usleep(300_000)
        kill(nodes[2].processIdentifier, SIGKILL)
        #expect(wait(server, seconds: 60), "the coordinator did not finish: \(serverLog())")
        #expect(server.terminationStatus == 0, "\(serverLog())")
        for n in nodes.prefix(2) { #expect(wait(n, seconds: 10) && n.terminationStatus == 0) }
        _ = wait(nodes[2], seconds: 1)
        let ledger = try LedgerStore(path: ledgerPath, readOnly: true)
        let completed = try ledger.rounds().filter { $0.status == "completed" }
        #expect(completed.map(\.number) == [1, 2], "\(serverLog())")
        let dropped = try ledger.database.rows(
            "SELECT p.round FROM participations p JOIN nodes n ON n.id = p.node_id WHERE n.name = 'pi-2' AND p.status = 'dropped'"
        )
        #expect(!dropped.isEmpty, "the killed node is recorded as dropped: \(serverLog())")
    }

    /// Starts `apt-coord serve` on a free loopback port with `arguments`; returns it, its endpoint and its log.
    func serve(_ dir: String, _ arguments: [String], environment: [String: String] = [:]) throws -> (
        Process, String, () -> String
    ) {
        let server = try start(
            "apt-coord", ["serve", "--bind", "tcp://127.0.0.1:*", "--ledger", dir + "/ledger.sqlite"] + arguments,
            log: dir + "/serve.log", environment: environment)
        let log = { (try? String(contentsOfFile: dir + "/serve.log", encoding: .utf8)) ?? "" }
        var endpoint = ""
        let deadline = Date().addingTimeInterval(20)
        while endpoint.isEmpty && Date() < deadline && server.isRunning {
            for line in log().split(separator: "\n") {
                if line.hasPrefix("serving ") { endpoint = String(line.split(separator: " ").last ?? "") }
                // With --log-format json: {"event":"serving",…,"endpoint":"tcp://…"}.
                if line.hasPrefix("{"),
                    let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                    object["event"] as? String == "serving", let e = object["endpoint"] as? String
                {
                    endpoint = e
                }
            }
            usleep(20_000)
        }
        return (server, endpoint, log)
    }

    @Test("a node whose budget cannot pay for a step is retired with BYE, exits 0, and the ledger shows it")
    func tinyBudget() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-tiny-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // The rounds come from a config file; the command line (in serve) adds the rest.
        try "# tiny\nrounds = 2\nmin-nodes = 2\nsteps = 5   # local steps\n".write(
            toFile: dir + "/coordinator.conf", atomically: true, encoding: .utf8)
        let (server, endpoint, log) = try serve(dir, ["--config", dir + "/coordinator.conf"])
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(log())")
        let budgets = ["1", "1", "0.0000001"]
        func node(_ i: Int) throws -> Process {
            try start(
                "apt-node",
                [
                    "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                    "--energy-budget", budgets[i], "--shard", "\(i)/3", "--train-limit", "640",
                ], log: "\(dir)/node-\(i).log")
        }
        // The poor node first: two rich ones could finish both rounds before it has even loaded its data.
        let poorNode = try node(2)
        let end = Date().addingTimeInterval(30)
        while !log().contains("node pi-2 retired") && Date() < end { usleep(20_000) }
        let nodes = [try node(0), try node(1), poorNode]
        #expect(wait(server, seconds: 60) && server.terminationStatus == 0, "\(log())")
        for n in nodes { #expect(wait(n, seconds: 10) && n.terminationStatus == 0) }
        let poorLog = (try? String(contentsOfFile: "\(dir)/node-2.log", encoding: .utf8)) ?? ""
        #expect(poorLog.contains("energy budget spent"), "\(poorLog)")
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let fleet = try ledger.fleet()
        let poor = try #require(fleet.first { $0["name"].string == "pi-2" })
        #expect(poor["state"].string == "retired")
        #expect((poor["energy_j"].double ?? 1) <= 0.0000001)
        #expect(try ledger.rounds().filter { $0.status == "completed" }.count == 2)
    }

    @Test("an APT node and a float32 node train through one coordinator: binary32 both ways for the float32 one")
    func mixedPrecisions() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-mixed-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, endpoint, log) = try serve(
            dir, ["--rounds", "2", "--min-nodes", "2", "--steps", "5", "--uplink-bits", "4", "--log-format", "json"])
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(log())")
        let nodes = try ["apt", "fp32"].enumerated().map { i, precision in
            try start(
                "apt-node",
                [
                    "run", "--coordinator", endpoint, "--name", precision, "--state-dir", "\(dir)/state-\(i)",
                    "--energy-budget", "10", "--shard", "\(i)/2", "--train-limit", "640", "--precision", precision,
                    "--log-format", "json",
                ], log: "\(dir)/node-\(i).log")
        }
        #expect(wait(server, seconds: 60) && server.terminationStatus == 0, "\(log())")
        for n in nodes { #expect(wait(n, seconds: 10) && n.terminationStatus == 0) }
        // The coordinator's last line states its own resource use.
        #expect(log().contains("\"event\":\"exit\"") && log().contains("\"peak_rss_bytes\""), "\(log())")
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let rows = try ledger.database.rows(
            """
            SELECT n.name, p.status, p.bits, p.bytes_up, p.bytes_down, p.peak_memory_bytes FROM participations p
            JOIN nodes n ON n.id = p.node_id ORDER BY p.round, n.name
            """)
        #expect(rows.count == 4 && rows.allSatisfy { $0["status"].string == "ok" }, "\(rows)")
        let parameters = try ModelSpec.mlp.parameterCounts().reduce(0, +)
        for row in rows {
            let up = try #require(row["bytes_up"].int)
            let down = try #require(row["bytes_down"].int)
            if row["name"].string == "fp32" {
                // Every value as binary32 both ways; the node reports 32-bit weights.
                #expect(up > 4 * parameters && down > 4 * parameters, "fp32: \(up) B up, \(down) B down")
                #expect(row["bits"].string == "[32,32,32]")
            } else {
                // 4-bit deltas up; weights at most 16 bits down.
                #expect(up < parameters && down < 2 * parameters + 4096, "apt: \(up) B up, \(down) B down")
            }
        }
        let memory = Dictionary(
            uniqueKeysWithValues: rows.prefix(2).map { ($0["name"].string ?? "", $0["peak_memory_bytes"].int ?? 0) })
        #expect((memory["apt"] ?? 0) * 2 < (memory["fp32"] ?? 0), "\(memory)")
        #expect(try ledger.rounds().last?.accuracy == nil)  // no --eval-data: no global accuracy
    }

    @Test("the coordinator's activation and error ranges bound the nodes' code widths; their reports pass the audit")
    func codeWidthRanges() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-codes-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // Pinned (one width each), so that the memory each node holds is known without the controller's choices.
        let (server, endpoint, log) = try serve(
            dir,
            ["--rounds", "2", "--min-nodes", "2", "--steps", "5", "--activation-bits", "7-7", "--error-bits", "6"])
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(log())")
        let nodes = try (0..<2).map { i in
            try start(
                "apt-node",
                [
                    "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                    "--energy-budget", "10", "--shard", "\(i)/2", "--train-limit", "640",
                ], log: "\(dir)/node-\(i).log")
        }
        #expect(wait(server, seconds: 60) && server.terminationStatus == 0, "\(log())")
        for n in nodes { #expect(wait(n, seconds: 10) && n.terminationStatus == 0) }
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let rows = try ledger.database.rows("SELECT status, peak_memory_bytes FROM participations")
        // Every energy report was believed: the audit priced the rounds at the policy's code widths.
        #expect(rows.count == 4 && rows.allSatisfy { $0["status"].string == "ok" }, "\(rows)\n\(log())")
        // 7-bit activations and 6-bit errors, packed, hold less than the knob's 8-bit codes at the narrowest
        // weights the knob allows: the nodes trained at the policy's widths.
        let c = TrainingConfiguration(model: .mlp, precision: .apt)
        let memory = try MemoryModel(spec: .mlp, mode: .apt, quantization: c.quantization, momentum: c.momentum)
        let knobs = memory.footprint(batch: 64, uniformWeightBits: c.controller.minBits).totalBytes
        let bounded = memory.footprint(
            batch: 64, weightBits: [16, 16, 16], activationBits: [7, 7, 7], errorBits: [6, 6, 6]
        ).totalBytes
        for row in rows {
            let peak = try #require(row["peak_memory_bytes"].int)
            #expect(peak <= bounded && peak < knobs, "peak \(peak) B; at 7/6-bit codes ≤ \(bounded), at 8/8 \(knobs)")
        }
    }

    @Test("apt-node simulate speaks for 30 nodes: every one takes part in every round, audited and recorded")
    func simulatedFleet() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-sim-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, endpoint, log) = try serve(
            dir, ["--rounds", "2", "--min-nodes", "30", "--wait-for", "30", "--uplink-bits", "4"])
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(log())")
        // A simulator that expects another model refuses to go on, and says why.
        let wrong = try start(
            "apt-node",
            ["simulate", "--coordinator", endpoint, "--count", "1", "--model", "lenet", "--name-prefix", "x"],
            log: dir + "/wrong.log")
        #expect(wait(wrong, seconds: 20) && wrong.terminationStatus == 1)
        let wrongLog = (try? String(contentsOfFile: dir + "/wrong.log", encoding: .utf8)) ?? ""
        #expect(wrongLog.contains("the coordinator serves model mlp, not lenet"), "\(wrongLog)")
        let simulator = try start(
            "apt-node",
            ["simulate", "--coordinator", endpoint, "--count", "30", "--delay-ms", "20", "--log-format", "json"],
            log: dir + "/simulate.log")
        #expect(wait(server, seconds: 60) && server.terminationStatus == 0, "\(log())")
        #expect(wait(simulator, seconds: 20) && simulator.terminationStatus == 0)
        let simLog = (try? String(contentsOfFile: dir + "/simulate.log", encoding: .utf8)) ?? ""
        #expect(simLog.contains("\"welcomed\":30,\"tasks\":60,\"updates\":60"), "\(simLog)")
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let rows = try ledger.database.rows(
            "SELECT status, bytes_up FROM participations WHERE node_id IN (SELECT id FROM nodes WHERE name LIKE 'sim-%')"
        )
        #expect(rows.count == 60 && rows.allSatisfy { $0["status"].string == "ok" }, "\(rows.prefix(3))")
        // 4-bit codes of the mlp's 235,146 values, and the frame around them.
        let values = try ModelSpec.mlp.parameterCounts().reduce(0, +)
        #expect(
            rows.allSatisfy { ($0["bytes_up"].int ?? 0) > values / 2 && ($0["bytes_up"].int ?? 0) < values / 2 + 1024 })
        #expect(
            try ledger.fleet().filter { ($0["name"].string ?? "").hasPrefix("sim-") }.allSatisfy {
                $0["state"].string == "idle"
            })
    }

    @Test("a node killed mid-round and restarted with its state dir resumes its spending, never spends twice")
    func restartedNode() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-restart-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, endpoint, log) = try serve(
            dir, ["--rounds", "3", "--min-nodes", "2", "--steps", "400", "--round-timeout", "4"])
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(log())")
        let budget = 0.05
        func node(_ i: Int, log suffix: String = "") throws -> Process {
            try start(
                "apt-node",
                [
                    "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                    "--energy-budget", String(budget), "--shard", "\(i)/3", "--train-limit", "6400",
                ], log: "\(dir)/node-\(i)\(suffix).log")
        }
        var nodes = try (0..<3).map { try node($0) }
        let state = dir + "/state-2/state.json"
        func charged() throws -> (spent: Double, committed: Double) {
            let data = try Data(contentsOf: URL(fileURLWithPath: state))
            let json = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            return ((json["spentJ"] as? Double) ?? -1, (json["committedJ"] as? Double) ?? -1)
        }
        // Kill node 2 while it trains (its round's allowance written ahead, not yet settled), then start it again
        // on the same state dir.
        let by = Date().addingTimeInterval(30)
        while Date() < by && ((try? charged())?.committed ?? 0) <= 0 { usleep(5_000) }
        kill(nodes[2].processIdentifier, SIGKILL)
        _ = wait(nodes[2], seconds: 5)
        let atKill = try charged()
        #expect(atKill.committed > 0, "killed while training, its round's allowance written ahead: \(log())")
        nodes[2] = try node(2, log: "-again")
        #expect(wait(server, seconds: 90) && server.terminationStatus == 0, "\(log())")
        for n in nodes { #expect(wait(n, seconds: 10) && n.terminationStatus == 0) }
        let again = (try? String(contentsOfFile: "\(dir)/node-2-again.log", encoding: .utf8)) ?? ""
        #expect(again.contains("resuming: "), "\(again)")
        let end = try charged()
        // Everything charged before the kill stays charged; nothing is left committed; the budget holds.
        #expect(end.committed == 0)
        #expect(end.spent >= atKill.spent + atKill.committed)
        #expect(end.spent <= budget)
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let rows = try ledger.database.rows(
            "SELECT p.round, p.status, p.energy_j FROM participations p JOIN nodes n ON n.id = p.node_id WHERE n.name = 'pi-2'"
        )
        // The restarted node took part again, as the same node, and what it reported is within what it charged.
        #expect(try ledger.fleet().filter { $0["name"].string == "pi-2" }.count == 1)
        #expect(
            rows.contains { ($0["round"].int ?? 0) >= 2 && ["ok", "partial"].contains($0["status"].string ?? "") },
            "\(rows)")
        let reported = rows.compactMap { $0["energy_j"].double }.reduce(0, +)
        #expect(reported <= end.spent + 1e-12, "the ledger has \(reported) J, the node charged \(end.spent) J")
    }

    @Test("nodes whose coordinator is killed and restarted on its ledger reconnect, say HELLO again and finish the run")
    func restartedCoordinator() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-coord-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rounds = ["--rounds", "4", "--min-nodes", "3", "--steps", "200", "--round-timeout", "10"]
        let (first, endpoint, firstLog) = try serve(dir, rounds)
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(firstLog())")
        let nodes = try (0..<3).map { i in
            try start(
                "apt-node",
                [
                    "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                    "--energy-budget", "1", "--shard", "\(i)/3", "--train-limit", "3200",
                ], log: "\(dir)/node-\(i).log")
        }
        // Kill the coordinator once round 1 is in the ledger; start it again on the same endpoint and ledger.
        let by = Date().addingTimeInterval(60)
        while Date() < by && !firstLog().contains("round 1:") { usleep(10_000) }
        kill(first.processIdentifier, SIGKILL)
        _ = wait(first, seconds: 5)
        try #require(firstLog().contains("round 1:"), "round 1 did not complete: \(firstLog())")
        let second = try start(
            "apt-coord", ["serve", "--bind", endpoint, "--ledger", dir + "/ledger.sqlite"] + rounds,
            log: dir + "/serve-again.log")
        let secondLog = { (try? String(contentsOfFile: dir + "/serve-again.log", encoding: .utf8)) ?? "" }
        #expect(wait(second, seconds: 120) && second.terminationStatus == 0, "\(secondLog())")
        #expect(secondLog().contains("resuming after round"), "\(secondLog())")
        for (i, n) in nodes.enumerated() {
            let text = (try? String(contentsOfFile: "\(dir)/node-\(i).log", encoding: .utf8)) ?? ""
            #expect(wait(n, seconds: 10) && n.terminationStatus == 0, "\(text)")
            // Welcomed by the first coordinator and again by the second.
            #expect(text.components(separatedBy: "welcomed as node").count - 1 >= 2, "\(text)")
        }
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        #expect(try ledger.rounds().filter { $0.status == "completed" }.map(\.number) == [1, 2, 3, 4])
        // The same three nodes, known by the same identities across the restart.
        #expect(try ledger.fleet().count == 3)
    }
}
