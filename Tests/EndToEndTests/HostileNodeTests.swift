import APTCoordinator
import APTCore
import APTProtocol
import Foundation
import Testing

/// A real `apt-coord serve` with honest simulated nodes, and hostile ones speaking the protocol by hand: every
/// broken, replayed, misdirected or lying message is refused and recorded, and the fleet goes on.
extension FleetTests {
    /// The next message of `type` on `dealer` within `seconds` (others are skipped).
    func next(_ type: MessageType, on dealer: DealerEndpoint, seconds: Double = 20) throws -> Message? {
        let end = Date().addingTimeInterval(seconds)
        while Date() < end {
            if let m = try dealer.receive(timeoutMs: 100), m.type == type { return m }
        }
        return nil
    }

    static func update(round: UInt32, delta: [QuantizedTensor], energyJ: Double = 0) -> Message {
        .update(
            Update(
                round: round, attempt: 0, samplesTrained: 64, stepsDone: 1, stepsAsked: 1, delta: delta,
                ledger: LedgerEntry(
                    energyJ: energyJ, peakMemoryBytes: 1000, bits: [10, 10, 10], loss: 1, accuracy: 0.1,
                    durationS: 0.1)))
    }

    @Test(
        "random bytes, truncated and mis-checksummed frames, NaN, wrong shapes, replays, strangers and a liar: all refused, recorded, and the rounds complete"
    )
    func hostileNodes() throws {
        let dir = NSTemporaryDirectory() + "apt-hostile-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, endpoint, serveLog) = try serve(
            dir,
            [
                "--rounds", "3", "--min-nodes", "3", "--wait-for", "4", "--steps", "5", "--round-timeout", "30",
                "--log-format", "json",
            ])
        defer { stop(server) }
        try #require(!endpoint.isEmpty, "no endpoint: \(serveLog())")
        let honest = try start(
            "apt-node", ["simulate", "--coordinator", endpoint, "--count", "3", "--delay-ms", "600"],
            log: dir + "/simulate.log")
        defer { stop(honest) }
        let context = try ZMQContext()
        let mallory = try DealerEndpoint(context: context, connect: endpoint, identity: Array("mallory".utf8))
        try mallory.send(
            .hello(
                Hello(
                    name: "mallory", profile: .raspberryPi4, energyBudgetJ: 1000, memoryBudgetBytes: 64 << 20,
                    localSamples: 600, capabilities: [.apt])))
        guard case .task(let task) = try #require(try next(.task, on: mallory)) else { return }
        #expect(task.round == 1)
        let sizes = try ModelSpec.mlp.parameterCounts()
        let zeros = sizes.enumerated().map { i, n in
            QuantizedTensor(
                layer: UInt16(i), count: n, bits: 4, scale: .float32(0), indices: nil,
                codes: [Int32](repeating: 0, count: n))
        }
        // 1. Frames that do not decode: each answered with ERROR malformed.
        var random = RandomSource(seed: 3)
        let noise = (0..<200).map { _ in UInt8(truncatingIfNeeded: random.next()) }
        let valid = Frame.encode(Self.update(round: 1, delta: zeros))
        var badCRC = valid
        badCRC[12] ^= 0xFF
        var nan = Frame.encode(
            Self.update(
                round: 1,
                delta: sizes.enumerated().map { i, n in
                    QuantizedTensor.float32([Float](repeating: 0, count: n), layer: UInt16(i))
                }
            ))
        // The first binary32 value: after the frame header (16), the UPDATE's fixed fields (27) and tensor 0's
        // header (12). It becomes a quiet NaN, and the checksum is made right again.
        nan.replaceSubrange(55..<59, with: [0x00, 0x00, 0xC0, 0x7F])
        let crc = CRC32C.checksum(nan, from: 16)
        nan.replaceSubrange(12..<16, with: withUnsafeBytes(of: crc.littleEndian) { Array($0) })
        for frame in [noise, Array(valid.prefix(40)), badCRC, nan] {
            try mallory.sendRaw(frame)
            guard case .error(let code, _) = try #require(try next(.error, on: mallory)) else { return }
            #expect(code == .malformed)
        }
        // 2. A wrong-shaped delta answers the round (rejected); the same frame again is a replay; round 99 has not
        // started.
        let wrongShape = Frame.encode(Self.update(round: 1, delta: Array(zeros.prefix(2))))
        try mallory.sendRaw(wrongShape)
        try mallory.sendRaw(wrongShape)
        try mallory.send(Self.update(round: 99, delta: zeros))
        // 3. A node that joined after round 1 began was not selected for it.
        let eve = try DealerEndpoint(context: context, connect: endpoint, identity: Array("eve".utf8))
        try eve.send(
            .hello(
                Hello(
                    name: "eve", profile: .raspberryPi4, energyBudgetJ: 1000, memoryBudgetBytes: 64 << 20,
                    localSamples: 600, capabilities: [.apt])))
        _ = try #require(try next(.welcome, on: eve))
        try eve.send(Self.update(round: 1, delta: zeros))
        usleep(200_000)
        try eve.send(.bye(reason: .shutdown, text: "leaving"))
        // 4. Round 2: a well-formed update whose energy report is far above what its policy allows.
        guard case .task(let second) = try #require(try next(.task, on: mallory)) else { return }
        #expect(second.round == 2)
        try mallory.send(Self.update(round: 2, delta: zeros, energyJ: 999))
        guard case .bye(let reason, let text) = try #require(try next(.bye, on: mallory)) else { return }
        #expect(reason == .failure && text.contains("distrusted"), "\(text)")
        // The rounds go on with the honest nodes and the run ends.
        let end = Date().addingTimeInterval(60)
        while server.isRunning && Date() < end { usleep(50_000) }
        #expect(!server.isRunning && server.terminationStatus == 0, "\(serveLog())")
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        #expect(try ledger.rounds().map(\.status) == ["completed", "completed", "completed"])
        let sims = try ledger.database.rows(
            """
            SELECT n.name, COUNT(*) AS ok, SUM(p.energy_j) AS spent, MAX(p.cumulative_energy_j) AS cumulative
            FROM participations p JOIN nodes n ON n.id = p.node_id
            WHERE n.name LIKE 'sim-%' AND p.status = 'ok' GROUP BY n.name
            """)
        #expect(sims.count == 3 && sims.allSatisfy { $0["ok"].int == 3 }, "\(sims)")
        // Energy counted once: each honest node's running total is the sum of its rounds.
        for s in sims {
            #expect(abs((s["spent"].double ?? 0) - (s["cumulative"].double ?? -1)) < 1e-12, "\(s)")
        }
        let rows = try ledger.participations(node: "mallory")
        #expect(rows.map { $0["status"].string } == ["rejected", "rejected"], "\(rows)")
        #expect(rows.first?["reason"].string == "2 tensors, the model has 6")
        #expect(rows.last?["reason"].string?.contains("energy report") == true, "\(rows)")
        let events = try ledger.database.rows(
            "SELECT n.name, e.kind, e.detail FROM events e JOIN nodes n ON n.id = e.node_id ORDER BY e.id")
        let of = { (name: String) in events.filter { $0["name"].string == name } }
        #expect(of("mallory").filter { $0["kind"].string == "malformed" }.count == 4, "\(events)")
        let details = of("mallory").compactMap { $0["detail"].string }
        #expect(details.contains { $0.contains("checksum") } && details.contains { $0.contains("not a finite number") })
        #expect(details.contains { $0.contains("duplicate") } && details.contains { $0.contains("not started") })
        #expect(of("mallory").contains { $0["kind"].string == "distrusted" })
        #expect(of("eve").contains { ($0["detail"].string ?? "").contains("not selected") }, "\(events)")
        #expect(try ledger.state(identity: "mallory") == "distrusted")
        // The global model stayed finite: every value of the last checkpoint is a number.
        let checkpoint = try #require(try ledger.latestCheckpoint())
        #expect(checkpoint.round == 3)
        let floats = stride(from: 0, to: checkpoint.model.count, by: 4).map { i in
            Float(
                bitPattern: UInt32(checkpoint.model[i]) | UInt32(checkpoint.model[i + 1]) << 8
                    | UInt32(checkpoint.model[i + 2]) << 16 | UInt32(checkpoint.model[i + 3]) << 24)
        }
        #expect(floats.count == sizes.reduce(0, +) && floats.allSatisfy(\.isFinite))
        mallory.close()
        eve.close()
    }

    @Test(
        "a coordinator killed (SIGKILL) while collecting, aggregating, committing or just after commit resumes on its ledger: no round lost or counted twice",
        arguments: CrashPoint.Stage.allCases)
    func killedCoordinator(at stage: CrashPoint.Stage) throws {
        let dir = NSTemporaryDirectory() + "apt-crash-\(stage.rawValue)-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rounds = ["--rounds", "3", "--min-nodes", "2", "--wait-for", "2", "--steps", "3", "--round-timeout", "20"]
        let (first, endpoint, firstLog) = try serve(
            dir, rounds + ["--log-format", "json"], environment: ["APT_COORD_CRASH_AT": "\(stage.rawValue):2"])
        defer { stop(first) }
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(firstLog())")
        let nodes = try (0..<2).map { i in
            try start(
                "apt-node",
                [
                    "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                    "--energy-budget", "10", "--shard", "\(i)/2", "--train-limit", "640",
                ], log: "\(dir)/node-\(i).log")
        }
        defer { for n in nodes { stop(n) } }
        #expect(wait(first, seconds: 60))
        #expect(first.terminationReason == .uncaughtSignal && first.terminationStatus == SIGKILL, "\(firstLog())")
        #expect(firstLog().contains("crash point \(stage.rawValue):2 reached"))
        // What the ledger holds after the kill: round 1, and round 2 only once its transaction committed.
        let kept = stage == .committed ? [1, 2] : [1]
        let before = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        #expect(try before.rounds().filter { $0.status == "completed" }.map(\.number) == kept)
        #expect(try before.latestCheckpoint()?.round == kept.last)
        before.database.close()
        // Started again on the same endpoint and ledger: the nodes come back and the run finishes.
        let second = try start(
            "apt-coord", ["serve", "--bind", endpoint, "--ledger", dir + "/ledger.sqlite"] + rounds,
            log: dir + "/serve-again.log")
        let secondLog = { (try? String(contentsOfFile: dir + "/serve-again.log", encoding: .utf8)) ?? "" }
        #expect(wait(second, seconds: 90) && second.terminationStatus == 0, "\(secondLog())")
        #expect(secondLog().contains("resuming after round \(kept.last ?? 0)"), "\(secondLog())")
        for n in nodes { #expect(wait(n, seconds: 15) && n.terminationStatus == 0) }
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        #expect(try ledger.rounds().filter { $0.status == "completed" }.map(\.number) == [1, 2, 3])
        // Each node answered each completed round once, and its running energy total is the sum of what the ledger
        // holds for it (nothing counted twice).
        let rows = try ledger.database.rows(
            """
            SELECT n.name, p.round, COUNT(*) AS answers FROM participations p JOIN nodes n ON n.id = p.node_id
            JOIN rounds r ON r.number = p.round AND r.attempt = p.attempt AND r.status = 'completed'
            WHERE p.status IN ('ok', 'partial') GROUP BY n.name, p.round
            """)
        #expect(rows.count == 6 && rows.allSatisfy { $0["answers"].int == 1 }, "\(rows)")
        #expect(try ledger.latestCheckpoint()?.round == 3)
    }

    @Test(
        "a ledger that cannot grow (its file-size limit reached) stops the coordinator cleanly; the ledger stays whole and resumes"
    )
    func ledgerFull() throws {
        let dir = NSTemporaryDirectory() + "apt-full-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let rounds = ["--rounds", "4", "--min-nodes", "2", "--wait-for", "2", "--steps", "3", "--round-timeout", "20"]
        // A 2.5 MB file-size limit (ulimit -f counts 512-byte blocks): each round's checkpoint adds about 1 MB to the
        // ledger's write-ahead log, so a write fails with EFBIG in round 3, as it would on a full disk.
        let coord = productsDirectory.appendingPathComponent("apt-coord").path
        let first = Process()
        first.executableURL = URL(fileURLWithPath: "/bin/sh")
        first.arguments =
            [
                "-c", "ulimit -f 4883; exec \"$0\" \"$@\"", coord, "serve", "--bind", "tcp://127.0.0.1:*", "--ledger",
                dir + "/ledger.sqlite",
            ] + rounds
        _ = FileManager.default.createFile(atPath: dir + "/serve.log", contents: nil)
        first.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: dir + "/serve.log"))
        first.standardOutput = FileHandle.nullDevice
        try first.run()
        defer { stop(first) }
        let firstLog = { (try? String(contentsOfFile: dir + "/serve.log", encoding: .utf8)) ?? "" }
        var endpoint = ""
        let by = Date().addingTimeInterval(20)
        while endpoint.isEmpty && Date() < by {
            if let line = firstLog().split(separator: "\n").first(where: { $0.hasPrefix("serving ") }) {
                endpoint = String(line.split(separator: " ").last ?? "")
            }
            usleep(20_000)
        }
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(firstLog())")
        let nodes = try (0..<2).map { i in
            try start(
                "apt-node",
                [
                    "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                    "--energy-budget", "10", "--shard", "\(i)/2", "--train-limit", "640",
                ], log: "\(dir)/node-\(i).log")
        }
        defer { for n in nodes { stop(n) } }
        #expect(wait(first, seconds: 60) && first.terminationStatus == 1, "\(firstLog())")
        #expect(firstLog().contains("stopped on an error") && firstLog().contains("I/O error"), "\(firstLog())")
        // Whole and consistent: every completed round with its checkpoint, nothing of the round that failed.
        let before = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        #expect(try before.database.rows("PRAGMA integrity_check").first?["integrity_check"].string == "ok")
        let kept = try before.rounds().map(\.number)
        #expect(!kept.isEmpty && kept.count < 4 && kept == Array(1...kept.count), "\(kept)")
        #expect(try before.latestCheckpoint()?.round == kept.last)
        before.database.close()
        // The nodes were told the coordinator is going down: they wait for it. Without the limit it resumes.
        for i in 0..<2 {
            let text = (try? String(contentsOfFile: "\(dir)/node-\(i).log", encoding: .utf8)) ?? ""
            #expect(text.contains("coordinator shutting down"), "\(text)")
        }
        let second = try start(
            "apt-coord", ["serve", "--bind", endpoint, "--ledger", dir + "/ledger.sqlite"] + rounds,
            log: dir + "/serve-again.log")
        let secondLog = { (try? String(contentsOfFile: dir + "/serve-again.log", encoding: .utf8)) ?? "" }
        #expect(wait(second, seconds: 90) && second.terminationStatus == 0, "\(secondLog())")
        for n in nodes { #expect(wait(n, seconds: 15) && n.terminationStatus == 0) }
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        #expect(try ledger.rounds().filter { $0.status == "completed" }.map(\.number) == [1, 2, 3, 4])
    }

    @Test("a simulated fleet that churns, corrupts frames and lies: the run completes and the ledger accounts for each")
    func misbehavingSimulation() throws {
        let dir = NSTemporaryDirectory() + "apt-soak-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, endpoint, log) = try serve(
            dir,
            ["--rounds", "6", "--min-nodes", "2", "--wait-for", "8", "--round-timeout", "10", "--log-format", "json"])
        defer { stop(server) }
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(log())")
        let simulator = try start(
            "apt-node",
            [
                "simulate", "--coordinator", endpoint, "--count", "8", "--churn", "0.3", "--liars", "0.25",
                "--corrupt", "0.5", "--delay-ms", "50", "--seed", "4", "--log-format", "json",
            ], log: dir + "/simulate.log")
        defer { stop(simulator) }
        #expect(wait(server, seconds: 90) && server.terminationStatus == 0, "\(log())")
        #expect(wait(simulator, seconds: 20) && simulator.terminationStatus == 0)
        let lines = ((try? String(contentsOfFile: dir + "/simulate.log", encoding: .utf8)) ?? "").split(separator: "\n")
        let events = lines.compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let done = try #require(events.last { $0["event"] as? String == "done" })
        let liars = Set(events.filter { $0["event"] as? String == "liar" }.compactMap { $0["node"] as? String })
        let corrupted = try #require(done["corrupted"] as? Int)
        let lies = try #require(done["lies"] as? Int)
        #expect(corrupted > 0 && lies > 0 && (done["left"] as? Int ?? 0) > 0, "\(done)")
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        #expect(try ledger.rounds().filter { $0.status == "completed" }.count == 6)
        // Every corrupted frame was refused and recorded; the nodes distrusted are liars, and no honest node is.
        let malformed = try ledger.database.rows("SELECT COUNT(*) AS n FROM events WHERE kind = 'malformed'")
        #expect(malformed.first?["n"].int == corrupted)
        let distrusted = Set(
            try ledger.fleet().filter { $0["state"].string == "distrusted" }.compactMap { $0["name"].string })
        #expect(!distrusted.isEmpty && distrusted.isSubset(of: liars), "distrusted \(distrusted), liars \(liars)")
    }

    @Test("a node killed between writing its round's allowance and sending its UPDATE resumes, never spending it twice")
    func nodeKilledBeforeUpdate() throws {
        let dir = NSTemporaryDirectory() + "apt-node-crash-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (server, endpoint, log) = try serve(
            dir, ["--rounds", "3", "--min-nodes", "1", "--wait-for", "2", "--steps", "3", "--round-timeout", "4"])
        defer { stop(server) }
        try #require(endpoint.hasPrefix("tcp://127.0.0.1:"), "no endpoint announced: \(log())")
        func node(_ i: Int, log suffix: String = "", environment: [String: String] = [:]) throws -> Process {
            try start(
                "apt-node",
                [
                    "run", "--coordinator", endpoint, "--name", "pi-\(i)", "--state-dir", "\(dir)/state-\(i)",
                    "--energy-budget", "10", "--shard", "\(i)/2", "--train-limit", "640",
                ], log: "\(dir)/node-\(i)\(suffix).log", environment: environment)
        }
        let steady = try node(0)
        defer { stop(steady) }
        let crashing = try node(1, environment: ["APT_NODE_CRASH_AT": "before-update:2"])
        #expect(wait(crashing, seconds: 60))
        #expect(crashing.terminationReason == .uncaughtSignal && crashing.terminationStatus == SIGKILL)
        let atKill = try nodeState(dir + "/state-1")
        let committed = try #require(atKill["committedJ"] as? Double)
        let spentBefore = try #require(atKill["spentJ"] as? Double)
        #expect(committed > 0 && atKill["committedRound"] as? Int == 2, "\(atKill)")
        // Started again on its state dir, it takes part in round 3.
        let again = try node(1, log: "-again")
        defer { stop(again) }
        #expect(wait(server, seconds: 60) && server.terminationStatus == 0, "\(log())")
        #expect(wait(steady, seconds: 10) && wait(again, seconds: 10) && again.terminationStatus == 0)
        let end = try nodeState(dir + "/state-1")
        // The allowance of the round whose UPDATE never left stays charged: spent, not refunded, not re-spent.
        #expect(end["committedJ"] as? Double == 0)
        let spent = try #require(end["spentJ"] as? Double)
        #expect(spent >= spentBefore + committed - 1e-12, "\(end)")
        let ledger = try LedgerStore(path: dir + "/ledger.sqlite", readOnly: true)
        let rows = try ledger.participations(node: "pi-1")
        #expect(rows.map { $0["status"].string } == ["ok", "dropped", "ok"], "\(rows)")
        // The ledger counts only what arrived: rounds 1 and 3, within what the node charged itself.
        let reported = rows.compactMap { $0["energy_j"].double }.reduce(0, +)
        #expect(reported > 0 && reported <= spent + 1e-12, "ledger \(reported) J, node \(spent) J")
    }
}
