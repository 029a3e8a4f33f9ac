import APTCoordinator
import APTCore
import APTProtocol
import Foundation
import Testing

/// `apt-node run` meeting what goes wrong on a board: a coordinator that is not there, a coordinator key that is
/// not the coordinator's, a node key it does not allow, a policy the node cannot hold in its memory budget. Each
/// gets a message that says what is wrong, and the state dir keeps what it had.
extension FleetTests {
    /// Stops `p` (SIGTERM, SIGKILL after 10 s) and waits for it to exit, so that nothing a test started outlives
    /// it. Returns whether SIGTERM alone stopped it.
    @discardableResult
    func stop(_ p: Process) -> Bool {
        guard p.isRunning else { return true }
        p.terminate()
        let end = Date().addingTimeInterval(10)
        while p.isRunning && Date() < end { usleep(20_000) }
        guard p.isRunning else { return true }
        kill(p.processIdentifier, SIGKILL)
        p.waitUntilExit()
        return false
    }

    /// The node's state file as JSON.
    func nodeState(_ dir: String) throws -> [String: Any] {
        let data = try Data(contentsOf: URL(fileURLWithPath: dir + "/state.json"))
        return try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
    }

    /// Waits up to `seconds` for `text` to appear in the file at `path`; returns the file.
    func waitFor(_ text: String, in path: String, seconds: Double) -> String {
        let end = Date().addingTimeInterval(seconds)
        var content = ""
        while Date() < end {
            content = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            if content.contains(text) { break }
            usleep(50_000)
        }
        return content
    }

    @Test("a wrong coordinator key, a key not on the allow-list, an unreachable coordinator: each named, still trying")
    func cannotJoin() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-join-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        for name in ["coordinator", "impostor"] {
            #expect(try run("apt-coord", ["keygen", "--out", "\(dir)/\(name)"]).status == 0)
        }
        for name in ["allowed", "stranger"] {
            #expect(try run("apt-node", ["keygen", "--out", "\(dir)/\(name)"]).status == 0)
        }
        try FileManager.default.copyItem(atPath: dir + "/allowed.pub", toPath: dir + "/allow.txt")
        let (server, endpoint, serverLog) = try serve(
            dir, ["--curve-secret", dir + "/coordinator.key", "--allow", dir + "/allow.txt", "--round-timeout", "5"])
        defer { stop(server) }
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(serverLog())")
        let cases: [(name: String, coordinator: String, key: String?, serverKey: String, expected: String)] = [
            ("wrong-key", endpoint, "allowed", "impostor", "is --coordinator-key the coordinator's public key?"),
            ("stranger", endpoint, "stranger", "coordinator", "refused this node's key (ZAP status 400)"),
            // Port 1 on loopback: nothing listens there.
            ("nobody", "tcp://127.0.0.1:1", nil, "coordinator", "reconnecting (attempt 1); is apt-coord serve running"),
        ]
        var nodes: [Process] = []
        for c in cases {
            var args = [
                "run", "--coordinator", c.coordinator, "--name", c.name, "--state-dir", "\(dir)/state-\(c.name)",
                "--energy-budget", "1", "--shard", "0/100",
            ]
            if let key = c.key { args += ["--key", "\(dir)/\(key)", "--coordinator-key", "\(dir)/\(c.serverKey).pub"] }
            nodes.append(try start("apt-node", args, log: "\(dir)/\(c.name).log"))
        }
        defer { for n in nodes where n.isRunning { stop(n) } }
        for (c, node) in zip(cases, nodes) {
            let log = waitFor(c.expected, in: "\(dir)/\(c.name).log", seconds: 15)
            #expect(log.contains(c.expected), "\(c.name): \(log)")
            #expect(node.isRunning, "\(c.name) gave up: \(log)")
            let state = try nodeState("\(dir)/state-\(c.name)")
            #expect(state["spentJ"] as? Double == 0 && state["committedJ"] as? Double == 0, "\(state)")
        }
        // SIGTERM stops each of them cleanly (even with the signal blocked by whatever started them).
        for (c, node) in zip(cases, nodes) {
            #expect(stop(node), "\(c.name) ignored SIGTERM")
            #expect(node.terminationStatus == 0, "\(c.name) exited \(node.terminationStatus)")
        }
        // None of them reached the fleet.
        #expect(!serverLog().contains("joined"), "\(serverLog())")
    }

    @Test(
        "a policy that needs more memory than the node's budget: ERROR cannot-comply, nothing spent; a fitting one trains"
    )
    func cannotComply() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-comply-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // This test is the coordinator, speaking the protocol itself.
        let context = try ZMQContext()
        let router = try RouterEndpoint(context: context, bind: "tcp://127.0.0.1:*")
        let spec = ModelSpec.mlp
        let knob = 0.5
        let c = TrainingConfiguration(model: spec, precision: .apt, tradeoff: knob)
        let memory = try MemoryModel(spec: spec, mode: .apt, quantization: c.quantization, momentum: c.momentum)
        let layers = memory.weightedLayerCount
        let wide = memory.footprint(batch: 64, uniformWeightBits: 16).totalBytes
        let lean = memory.footprint(batch: 4, uniformWeightBits: 8).totalBytes
        try #require(lean < wide - 1)
        let budget = wide - 1
        let node = try start(
            "apt-node",
            [
                "run", "--coordinator", router.endpoint, "--name", "small", "--state-dir", dir + "/state",
                "--energy-budget", "1", "--memory-budget", String(budget), "--shard", "0/60",
            ], log: dir + "/node.log")
        defer { stop(node) }
        let nodeLog = { (try? String(contentsOfFile: dir + "/node.log", encoding: .utf8)) ?? "" }
        func next(from only: PeerAddress? = nil, _ seconds: Double = 20) throws -> (PeerAddress, Message)? {
            let end = Date().addingTimeInterval(seconds)
            while Date() < end {
                if case .message(let peer, let m) = try router.receive(timeoutMs: 100), m.type != .heartbeat,
                    only == nil || only == peer
                {
                    return (peer, m)
                }
            }
            return nil
        }
        // Only this test's node: anything else that finds the port (a stray process) is ignored.
        var found: (PeerAddress, Hello)? = nil
        while found == nil, let (from, m) = try next() {
            if case .hello(let h) = m, h.name == "small" { found = (from, h) }
        }
        let (peer, h) = try #require(found, "no HELLO: \(nodeLog())")
        #expect(h.memoryBudgetBytes == UInt64(budget))
        let q = TrainingConfiguration.defaultQuantization(precision: .fp32, tradeoff: knob)
        let network = try Network(spec: spec, mode: .fp32, quantization: q, seed: 1)
        var random = RandomSource(seed: 1)
        let tensors = network.parameterSnapshot.enumerated().map { i, block in
            QuantizedTensor.quantize(
                block.dequantized(), layer: UInt16(i), bits: 16, scaleKind: .powerOfTwo, random: &random)
        }
        let wide16 = [Policy.BitRange](repeating: .init(min: 16, max: 16), count: layers)
        try router.send(.welcome(Welcome(nodeId: 1, model: spec, policy: Policy(layerBits: wide16))), to: peer)
        func task(_ round: UInt32, batch: Int, bits: Int) -> Message {
            .task(
                TrainingTask(
                    round: round, attempt: 1, timeoutMs: 30_000, payload: .fullModel, baseRound: 0, tensors: tensors,
                    policy: Policy(
                        layerBits: [Policy.BitRange](repeating: .init(min: bits, max: bits), count: layers),
                        tradeoff: knob, localEpochs: 0, localSteps: 2, batchSize: batch, roundEnergyJ: 0.5)))
        }
        try router.send(task(1, batch: 64, bits: 16), to: peer)
        let (_, refusal) = try #require(try next(from: peer), "no answer to the oversized task: \(nodeLog())")
        guard case .error(let code, let text) = refusal else {
            Issue.record("expected ERROR, got \(refusal)")
            return
        }
        #expect(code == .cannotComply)
        #expect(text.contains("needs \(wide) B") && text.contains("memory budget is \(budget) B"), "\(text)")
        let untouched = try nodeState(dir + "/state")
        #expect(untouched["spentJ"] as? Double == 0 && untouched["committedJ"] as? Double == 0, "\(untouched)")
        #expect(nodeLog().contains("cannot comply"))
        // A policy that fits is trained and answered with an UPDATE within the node's budgets.
        try router.send(task(2, batch: 4, bits: 8), to: peer)
        let (_, answer) = try #require(try next(from: peer), "no answer to the fitting task: \(nodeLog())")
        guard case .update(let u) = answer else {
            Issue.record("expected UPDATE, got \(answer)")
            return
        }
        #expect(u.round == 2 && u.stepsDone == 2)
        #expect(u.ledger.peakMemoryBytes <= UInt64(budget))
        // The node sends its UPDATE, then settles its write-ahead commitment: wait for the settled state.
        var spent = try nodeState(dir + "/state")
        let settle = Date().addingTimeInterval(10)
        while (spent["committedJ"] as? Double ?? 1) > 0 && Date() < settle {
            usleep(20_000)
            spent = try nodeState(dir + "/state")
        }
        #expect((spent["spentJ"] as? Double ?? 0) > 0 && (spent["spentJ"] as? Double ?? 1) <= 0.5, "\(spent)")
        // A POLICY between rounds: refused when it cannot be held, taken when it can.
        guard case .task(let oversized) = task(3, batch: 64, bits: 16),
            case .task(let lean) = task(3, batch: 4, bits: 6)
        else { return }
        try router.send(.policy(oversized.policy), to: peer)
        let (_, pushback) = try #require(try next(from: peer), "no answer to the oversized policy: \(nodeLog())")
        #expect(pushback.type == .error, "\(pushback)")
        try router.send(.policy(lean.policy), to: peer)
        let log = waitFor("new policy: bits 6-6/6-6/6-6", in: dir + "/node.log", seconds: 10)
        #expect(log.contains("new policy: bits 6-6/6-6/6-6"), "\(log)")
    }
}

/// `docs/deploy.md` works as shown: its config file joins a real coordinator.
extension FleetTests {
    /// The fenced block of `docs/deploy.md` whose first line is `firstLine`.
    func deployBlock(_ firstLine: String) throws -> String {
        let docs = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("docs/deploy.md")
        let text = try String(contentsOf: docs, encoding: .utf8)
        let blocks = text.components(separatedBy: "```").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
        let block = try #require(blocks.first { $0.split(separator: "\n").dropFirst().first == Substring(firstLine) })
        return block.split(separator: "\n", omittingEmptySubsequences: false).dropFirst().joined(separator: "\n")
    }

    @Test("the node.conf and unit of docs/deploy.md: the unit runs the config, the config joins and trains")
    func deployConfig() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-deploy-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let config = try deployBlock("# /etc/apt-node/node.conf")
        let unit = try deployBlock("# /etc/systemd/system/apt-node.service")
        #expect(unit.contains("\nExecStart=/usr/local/bin/apt-node run --config /etc/apt-node/node.conf\n"))
        try config.write(toFile: dir + "/node.conf", atomically: true, encoding: .utf8)
        #expect(try run("apt-coord", ["keygen", "--out", dir + "/coordinator"]).status == 0)
        #expect(try run("apt-node", ["keygen", "--out", dir + "/node"]).status == 0)
        try FileManager.default.copyItem(atPath: dir + "/node.pub", toPath: dir + "/allow.txt")
        let (server, endpoint, serverLog) = try serve(
            dir,
            [
                "--rounds", "2", "--min-nodes", "1", "--steps", "5", "--curve-secret", dir + "/coordinator.key",
                "--allow", dir + "/allow.txt",
            ])
        defer { stop(server) }
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(serverLog())")
        // Only what differs on this machine is overridden; every other setting comes from the file.
        let node = try start(
            "apt-node",
            [
                "run", "--config", dir + "/node.conf", "--coordinator", endpoint, "--key", dir + "/node",
                "--coordinator-key", dir + "/coordinator.pub", "--state-dir", dir + "/state",
            ], log: dir + "/node.log")
        #expect(wait(node, seconds: 60) && node.terminationStatus == 0, "\(serverLog())")
        #expect(wait(server, seconds: 10) && server.terminationStatus == 0, "\(serverLog())")
        let lines = try String(contentsOfFile: dir + "/node.log", encoding: .utf8).split(separator: "\n")
        let events = try lines.map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
        let rounds = events.filter { $0["event"] as? String == "round" }
        #expect(rounds.count == 2, "\(lines)")
        #expect(rounds.allSatisfy { ($0["budget_j"] as? Double) == 2.5 && ($0["steps"] as? Int) == 5 })
        #expect(events.first { $0["event"] as? String == "connecting" }?["samples"] as? Int == 1200, "shard 7/50")
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let row = try #require(try ledger.fleet().first)
        #expect(row["name"].string == "press-17")
        #expect(row["memory_budget_bytes"].int == 16 << 20)
        #expect((row["peak_memory_bytes"].int ?? .max) <= 16 << 20)
    }
}

/// Policies that change between rounds are pushed.
extension FleetTests {
    @Test("a node whose paced share changes gets a POLICY between rounds, recorded with its reason, within budget")
    func policyPush() throws {
        let dir = NSTemporaryDirectory() + "apt-fleet-push-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, endpoint, log) = try serve(
            dir,
            [
                "--rounds", "3", "--min-nodes", "2", "--steps", "5", "--log-format", "json", "--metrics",
                dir + "/fleet.prom",
            ])
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(log())")
        // 0.00024 J pays 3 steps a round for two rounds, then 4 in the last: the policy changes once.
        let budgets = ["1", "0.00024"]
        let nodes = try (0..<2).map { i in
            try start(
                "apt-node",
                [
                    "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                    "--energy-budget", budgets[i], "--shard", "\(i)/10",
                ], log: "\(dir)/node-\(i).log")
        }
        #expect(wait(server, seconds: 60) && server.terminationStatus == 0, "\(log())")
        for n in nodes { #expect(wait(n, seconds: 10) && n.terminationStatus == 0) }
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let pushed = try ledger.database.rows(
            """
            SELECT n.name, p.round, p.reason, p.policy FROM policies p JOIN nodes n ON n.id = p.node_id
            WHERE p.reason LIKE 'pushed: %'
            """)
        #expect(pushed.count >= 1, "\(log())")
        #expect(pushed.allSatisfy { $0["name"].string == "pi-1" }, "only the tight node's policy changes")
        let nodeLog = (try? String(contentsOfFile: "\(dir)/node-1.log", encoding: .utf8)) ?? ""
        #expect(nodeLog.contains("new policy: "), "\(nodeLog)")
        // The coordinator's JSON log: one object per line, a round event per round with its counts.
        let events = try log().split(separator: "\n").map { line in
            try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any], "\(line)")
        }
        let rounds = events.filter { $0["event"] as? String == "round" }
        #expect(rounds.map { $0["round"] as? Int } == [1, 2, 3])
        #expect(rounds.allSatisfy { $0["ok"] as? Int == 2 && ($0["bytes_up"] as? Int ?? 0) > 0 })
        #expect(events.contains { $0["event"] as? String == "policy-pushed" && $0["node"] as? String == "pi-1" })
        // The metrics file (textfile-collector format) agrees with the ledger; no temporary file is left behind.
        let metrics = try String(contentsOfFile: dir + "/fleet.prom", encoding: .utf8)
        #expect(!FileManager.default.fileExists(atPath: dir + "/fleet.prom.tmp"))
        var samples: [String: Double] = [:]
        for line in metrics.split(separator: "\n") where !line.hasPrefix("#") {
            let parts = line.split(separator: " ")
            if parts.count == 2, let v = Double(parts[1]) { samples[String(parts[0])] = v }
        }
        #expect(samples["apt_rounds_completed_total"] == 3, "\(metrics)")
        #expect(samples["apt_last_round_participants{status=\"ok\"}"] == 2)
        #expect(metrics.contains("# TYPE apt_node_energy_used_joules counter"))
        for row in try ledger.fleet() {
            let key = "apt_node_energy_used_joules{node=\"\(row["name"].string ?? "")\"}"
            #expect(samples[key] == row["energy_j"].double, "\(key) in \(metrics)")
        }
        let tight = try #require(try ledger.fleet().first { $0["name"].string == "pi-1" })
        #expect((tight["energy_j"].double ?? 1) <= 0.00024)
    }
}
