import Foundation
import Testing

@testable import APTCoordinator

/// The SQLite fleet ledger: schema and migrations, one-transaction rounds, readers beside the writer.
@Suite("Fleet ledger (SQLite)", .serialized)
struct LedgerStoreTests {
    func temporaryPath() -> String {
        NSTemporaryDirectory() + "apt-ledger-\(getpid())-\(UInt32.random(in: 0...UInt32.max)).sqlite"
    }

    func node(_ id: String) -> NodeRecord {
        NodeRecord(
            identity: id, name: "pi-\(id)", profileJSON: "{}", energyBudgetJ: 10, memoryBudgetBytes: 1 << 20,
            localSamples: 6000, state: "connected")
    }

    func participation(_ id: String, energy: Double = 0.5) -> ParticipationRecord {
        ParticipationRecord(
            identity: id, status: "ok", energyJ: energy, cumulativeEnergyJ: energy, peakMemoryBytes: 1000,
            parameterBytes: 500, bits: [14, 14, 12], samples: 640, stepsDone: 10, stepsAsked: 10, loss: 0.5,
            accuracy: 0.8, bytesUp: 100, bytesDown: 200, durationS: 1.5)
    }

    func round(_ n: Int, attempt: Int = 0, status: String = "completed") -> RoundRecord {
        RoundRecord(
            number: n, attempt: attempt, status: status, startedAt: "2026-11-30T00:00:00Z",
            endedAt: "2026-11-30T00:00:01Z", accuracy: 0.7, loss: 0.9)
    }

    @Test("migrations are named, recorded and run once; WAL and foreign keys are on")
    func migrations() throws {
        let path = temporaryPath()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let first = try LedgerStore(path: path)
        #expect(try LedgerSchema.migrator.applied(in: first.database) == ["v1-fleet-ledger", "v2-event-energy"])
        #expect(try first.database.rows("PRAGMA journal_mode").first?.values.first == .text("wal"))
        #expect(try first.database.rows("PRAGMA foreign_keys").first?.values.first == .integer(1))
        first.database.close()
        let again = try LedgerStore(path: path)
        #expect(try LedgerSchema.migrator.migrate(again.database).isEmpty, "a migration ran twice")
        // A ledger written by a newer version is refused, not silently used.
        try again.database.run(
            "INSERT INTO schema_migrations (name, applied_at) VALUES ('v9-from-the-future', 'now')")
        #expect(throws: SQLiteError.self) { try LedgerSchema.migrator.migrate(again.database) }
    }

    @Test("a round is recorded in one transaction: a refused participation leaves none of the round")
    func oneTransaction() throws {
        let path = temporaryPath()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let ledger = try LedgerStore(path: path)
        try ledger.upsertNode(node("a"))
        try ledger.upsertNode(node("b"))
        try ledger.recordRound(
            round(1), participations: [participation("a"), participation("b")], checkpoint: [1, 2, 3])
        #expect(try ledger.rounds().map(\.number) == [1])
        #expect(try ledger.latestCheckpoint()?.round == 1)
        // Round 2: the second participation carries a negative energy (a CHECK refuses it) — nothing of round 2
        // may remain, and round 1 is untouched.
        #expect(throws: (any Error).self) {
            try ledger.recordRound(
                round(2), participations: [participation("a"), participation("b", energy: -1)], checkpoint: [9])
        }
        #expect(try ledger.rounds().map(\.number) == [1])
        #expect(try ledger.database.rows("SELECT * FROM participations WHERE round = 2").isEmpty)
        #expect(try ledger.latestCheckpoint()?.model == [1, 2, 3])
        // A participation by a node the ledger does not know is refused the same way.
        #expect(throws: (any Error).self) {
            try ledger.recordRound(round(2), participations: [participation("stranger")])
        }
        #expect(try ledger.rounds().count == 1)
        #expect(try ledger.energySpent(identity: "a") == 0.5)
    }

    @Test("a v1 ledger with rounds in it is upgraded by v2 once, and keeps every row")
    func upgradeFromV1() throws {
        let path = temporaryPath()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        // The ledger as the first version wrote it.
        let old = try SQLiteDatabase(path: path)
        var v1 = DatabaseMigrator()
        v1.register("v1-fleet-ledger", sql: LedgerSchema.v1)
        try v1.migrate(old)
        try old.run(
            """
            INSERT INTO nodes (identity, name, profile, energy_budget_j, memory_budget_bytes, local_samples,
                               first_seen, last_seen, state)
            VALUES ('a', 'pi-a', '{}', 10, 1000, 60, 'then', 'then', 'connected')
            """)
        try old.run("INSERT INTO events (at, round, node_id, kind, detail) VALUES ('then', 1, 1, 'fault', 'x')")
        old.close()
        let ledger = try LedgerStore(path: path)
        #expect(try LedgerSchema.migrator.applied(in: ledger.database) == ["v1-fleet-ledger", "v2-event-energy"])
        #expect(try ledger.database.rows("SELECT energy_j FROM events").map { $0["energy_j"].double } == [0])
        #expect(try ledger.fleet().first?["name"].string == "pi-a")
    }

    @Test("a late update turns its dropped row into a late one; a round never recorded keeps its energy as an event")
    func lateUpdates() throws {
        let path = temporaryPath()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let ledger = try LedgerStore(path: path)
        try ledger.upsertNode(node("a"))
        try ledger.upsertNode(node("b"))
        var dropped = participation("b", energy: 0)
        dropped.status = "dropped"
        try ledger.recordRound(round(1), participations: [participation("a"), dropped])
        var late = participation("b", energy: 0.25)
        late.status = "late"
        late.reason = "arrived after the round closed"
        try ledger.recordLate(round: 1, attempt: 0, late)
        let rows = try ledger.participations(node: "b")
        #expect(rows.count == 1)
        #expect(rows.first?["status"].string == "late" && rows.first?["energy_j"].double == 0.25)
        #expect(try ledger.energySpent(identity: "b") == 0.25)
        // Round 7 was never committed (its coordinator died): the energy is kept as an event.
        try ledger.recordLate(round: 7, attempt: 0, late)
        #expect(try ledger.participations(node: "b").count == 1)
        #expect(try ledger.energySpent(identity: "b") == 0.5)
        #expect(try ledger.fleet().first { $0["name"].string == "pi-b" }?["energy_j"].double == 0.5)
        #expect(try ledger.database.rows("SELECT kind FROM events").map { $0["kind"].string } == ["late-update"])
    }

    @Test("a distrusted node stays distrusted when it says HELLO again")
    func distrustSticks() throws {
        let path = temporaryPath()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let ledger = try LedgerStore(path: path)
        try ledger.upsertNode(node("a"))
        try ledger.setState(identity: "a", state: "distrusted")
        try ledger.upsertNode(node("a"))
        #expect(try ledger.fleet().first?["state"].string == "distrusted")
        try ledger.setState(identity: "a", state: "retired")
        try ledger.upsertNode(node("a"))
        #expect(try ledger.fleet().first?["state"].string == "connected")
    }

    @Test("a writer that dies inside a transaction leaves no half round")
    func deadWriter() throws {
        let path = temporaryPath()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let setup = try LedgerStore(path: path)
        try setup.upsertNode(node("a"))
        setup.database.close()
        // A second connection starts writing a round and goes away without committing.
        let writer = try SQLiteDatabase(path: path)
        try writer.execute("BEGIN IMMEDIATE")
        try writer.run(
            "INSERT INTO rounds (number, attempt, started_at, ended_at, status, participants, energy_j, bytes_down, "
                + "bytes_up) VALUES (1, 0, 'x', 'x', 'completed', 1, 0, 0, 0)")
        writer.close()
        let after = try LedgerStore(path: path)
        #expect(try after.rounds().isEmpty)
    }

    @Test("a read-only connection reads the committed ledger while the writer holds a write transaction")
    func readerBesideWriter() throws {
        let path = temporaryPath()
        defer { for s in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: path + s) } }
        let writer = try LedgerStore(path: path)
        try writer.upsertNode(node("a"))
        try writer.recordRound(round(1), participations: [participation("a")])
        try writer.database.execute("BEGIN IMMEDIATE")
        try writer.database.run(
            "INSERT INTO rounds (number, attempt, started_at, ended_at, status, participants, energy_j, bytes_down, "
                + "bytes_up) VALUES (2, 0, 'x', 'x', 'completed', 0, 0, 0, 0)")
        let reader = try LedgerStore(path: path, readOnly: true)
        #expect(try reader.rounds().map(\.number) == [1], "the reader sees only what was committed")
        #expect(throws: SQLiteError.self) { try reader.database.run("DELETE FROM rounds") }
        try writer.database.execute("COMMIT")
        #expect(try reader.rounds().map(\.number) == [1, 2])
    }

    @Test("errors carry SQLite's message and the statement")
    func errors() throws {
        let db = try SQLiteDatabase(path: ":memory:")
        do {
            try db.run("INSERT INTO nowhere VALUES (1)")
            Issue.record("an insert into a missing table succeeded")
        } catch {
            #expect(error.description.contains("no such table: nowhere"))
            #expect(error.description.contains("INSERT INTO nowhere"))
        }
        #expect(throws: SQLiteError.self) { try SQLiteDatabase(path: "/nonexistent/dir/ledger.sqlite") }
        #expect(throws: SQLiteError.self) { try db.run("SELECT ?", []) }
    }

    @Test("a run's summary is read from its ledger: accuracy by round, energy, peak memory, bytes and wall time")
    func runSummary() throws {
        let path = temporaryPath()
        let ledger = try LedgerStore(path: path)
        for id in ["a", "b"] { _ = try ledger.upsertNode(node(id)) }
        var a = participation("a", energy: 0.5)
        var b = participation("b", energy: 0.25)
        b.peakMemoryBytes = 3000
        b.bytesUp = 300
        try ledger.recordRound(
            RoundRecord(
                number: 1, attempt: 0, status: "completed", startedAt: "2026-11-30T00:00:00.000Z",
                endedAt: "2026-11-30T00:00:02.000Z", accuracy: 0.6, loss: 1), participations: [a, b])
        a.status = "dropped"
        a.energyJ = 0
        a.bytesUp = 0
        try ledger.recordRound(
            RoundRecord(
                number: 2, attempt: 0, status: "completed", startedAt: "2026-11-30T00:00:02.500Z",
                endedAt: "2026-11-30T00:00:05.000Z", accuracy: 0.82, loss: 0.5), participations: [a, b])
        try ledger.recordEvent(round: 2, identity: "a", kind: "refused-update", detail: "late", energyJ: 0.125)
        let summary = try FleetRunSummary(ledger: ledger)
        #expect(summary.rounds == 2 && summary.accuracies == [0.6, 0.82])
        #expect(summary.finalAccuracy == 0.82 && summary.bestAccuracy == 0.82)
        #expect(abs(summary.meanAccuracy(lastRounds: 5) - 0.71) < 1e-12 && summary.meanAccuracy(lastRounds: 1) == 0.82)
        #expect(summary.roundsToReach(0.8) == 2 && summary.roundsToReach(0.5) == 1 && summary.roundsToReach(0.9) == nil)
        #expect(abs(summary.fleetEnergyJ - (0.5 + 0.25 + 0.25 + 0.125)) < 1e-12)
        #expect(summary.peakNodeMemoryBytes == 3000)
        // Uplink: the three updates that arrived (100, 300, 300); the dropped one sent nothing.
        #expect(abs(summary.bytesUpPerNodeRound - 700.0 / 3) < 1e-9)
        #expect(summary.bytesDownPerNodeRound == 200)
        #expect(abs(summary.wallPerRoundS - 2.5) < 1e-9)
        // Each round's own latency, and what the completed rounds folded in.
        #expect(summary.roundSeconds.count == 2 && abs(summary.roundSeconds[0] - 2) < 1e-9)
        #expect(abs(summary.roundSeconds[1] - 2.5) < 1e-9)
        #expect(summary.updates == 3 && summary.bytesUp == 700)
    }
}
