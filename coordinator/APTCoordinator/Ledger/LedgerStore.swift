import Foundation

/// A node as the ledger knows it.
public struct NodeRecord: Hashable, Sendable {
    /// Its identity: CURVE public key, or the name in plain mode.
    public var identity: String
    /// Its label.
    public var name: String
    /// Its device profile, JSON.
    public var profileJSON: String
    /// Total energy it may spend, J.
    public var energyBudgetJ: Double
    /// Memory it may use for training, bytes.
    public var memoryBudgetBytes: Int
    /// Local training samples.
    public var localSamples: Int
    /// `connected`, `idle`, `retired`, `dropped` or `distrusted`.
    public var state: String

    /// Creates a record.
    public init(
        identity: String, name: String, profileJSON: String, energyBudgetJ: Double, memoryBudgetBytes: Int,
        localSamples: Int, state: String
    ) {
        self.identity = identity
        self.name = name
        self.profileJSON = profileJSON
        self.energyBudgetJ = energyBudgetJ
        self.memoryBudgetBytes = memoryBudgetBytes
        self.localSamples = localSamples
        self.state = state
    }
}

/// One node's part in one round attempt.
public struct ParticipationRecord: Hashable, Sendable {
    /// The node's identity.
    public var identity: String
    /// `ok`, `late`, `partial`, `rejected` or `dropped`.
    public var status: String
    /// Why, for anything but `ok`.
    public var reason: String?
    /// Energy the node reported for the round, J.
    public var energyJ: Double
    /// Its energy spent so far in all, J.
    public var cumulativeEnergyJ: Double
    /// Its peak training memory in the round, bytes.
    public var peakMemoryBytes: Int
    /// Its parameter bytes at the round's precision.
    public var parameterBytes: Int
    /// Final weight bits per weighted layer.
    public var bits: [Int]
    /// Samples trained.
    public var samples: Int
    /// Steps trained and asked for.
    public var stepsDone: Int
    /// Steps the policy asked for.
    public var stepsAsked: Int
    /// Local loss and accuracy.
    public var loss: Double?
    /// Local accuracy.
    public var accuracy: Double?
    /// Bytes sent and received for the round.
    public var bytesUp: Int
    /// Bytes the node was sent.
    public var bytesDown: Int
    /// Seconds the node took.
    public var durationS: Double

    /// Creates a record.
    public init(
        identity: String, status: String, reason: String? = nil, energyJ: Double, cumulativeEnergyJ: Double,
        peakMemoryBytes: Int, parameterBytes: Int, bits: [Int], samples: Int, stepsDone: Int, stepsAsked: Int,
        loss: Double? = nil, accuracy: Double? = nil, bytesUp: Int, bytesDown: Int, durationS: Double
    ) {
        self.identity = identity
        self.status = status
        self.reason = reason
        self.energyJ = energyJ
        self.cumulativeEnergyJ = cumulativeEnergyJ
        self.peakMemoryBytes = peakMemoryBytes
        self.parameterBytes = parameterBytes
        self.bits = bits
        self.samples = samples
        self.stepsDone = stepsDone
        self.stepsAsked = stepsAsked
        self.loss = loss
        self.accuracy = accuracy
        self.bytesUp = bytesUp
        self.bytesDown = bytesDown
        self.durationS = durationS
    }
}

/// One round attempt's outcome.
public struct RoundRecord: Hashable, Sendable {
    /// Round number (from 1).
    public var number: Int
    /// Attempt (from 0).
    public var attempt: Int
    /// `completed` or `failed`.
    public var status: String
    /// ISO-8601 start and end.
    public var startedAt: String
    /// ISO-8601 end.
    public var endedAt: String
    /// Global test accuracy and loss after the round, when evaluated.
    public var accuracy: Double?
    /// Global test loss.
    public var loss: Double?

    /// Creates a record.
    public init(
        number: Int, attempt: Int, status: String, startedAt: String, endedAt: String, accuracy: Double? = nil,
        loss: Double? = nil
    ) {
        self.number = number
        self.attempt = attempt
        self.status = status
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.accuracy = accuracy
        self.loss = loss
    }
}

/// The fleet ledger in one SQLite file: the only place the coordinator's SQL lives (a PostgreSQL store can
/// stand in later behind the same calls). One writer; readers open their own read-only store.
public final class LedgerStore {
    /// The connection.
    public let database: SQLiteDatabase

    /// Opens `path` for writing (creating it and applying any migration it lacks) or read-only. Before it
    /// writes anything, `preflight` checks an existing file read-only, so a file that is not a ledger, or a
    /// ledger of a newer version, is refused exactly as it was.
    public init(path: String, readOnly: Bool = false) throws {
        if !readOnly { try Self.preflight(path: path) }
        database = try SQLiteDatabase(path: path, readOnly: readOnly)
        if !readOnly { try LedgerSchema.migrator.migrate(database) }
    }

    /// Checks, without writing, that `path` is missing (a new ledger), an empty SQLite database, or a ledger
    /// whose migrations this version knows. Refusals name the file and what is wrong with it. It reads the main
    /// file only (pages still in a `-wal` file are not seen); the migrator checks again once the file is open.
    public static func preflight(path: String) throws(LedgerError) {
        guard FileManager.default.fileExists(atPath: path) else { return }
        let db: SQLiteDatabase
        do {
            db = try SQLiteDatabase(path: path, untouched: true)
        } catch {
            throw LedgerError(path: path, reason: "cannot be opened (\(error.message))")
        }
        defer { db.close() }
        let tables: [String]
        do {
            tables = try db.rows("SELECT name FROM sqlite_master WHERE type = 'table'").compactMap { $0["name"].string }
        } catch {
            throw LedgerError(path: path, reason: "is not an SQLite database (\(error.message))")
        }
        if tables.isEmpty { return }
        guard tables.contains("schema_migrations") else {
            throw LedgerError(
                path: path,
                reason:
                    "is an SQLite database but not an APT Fleet ledger (tables: \(tables.sorted().joined(separator: ", ")))"
            )
        }
        let applied: [String]
        do {
            applied = try db.rows("SELECT name FROM schema_migrations ORDER BY rowid").compactMap { $0["name"].string }
        } catch {
            throw LedgerError(path: path, reason: "has an unreadable schema_migrations table (\(error.message))")
        }
        let known = Set(LedgerSchema.migrator.migrations.map(\.name))
        if let unknown = applied.first(where: { !known.contains($0) }) {
            throw LedgerError(
                path: path,
                reason: "was written by a newer apt-coord (it has migration '\(unknown)'); upgrade apt-coord to use it")
        }
    }

    static func now() -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        return f.string(from: Date())
    }

    /// Adds a node or refreshes what it says of itself; returns its row id.
    @discardableResult
    public func upsertNode(_ n: NodeRecord) throws -> Int64 {
        let now = Self.now()
        try database.run(
            """
            INSERT INTO nodes (identity, name, profile, energy_budget_j, memory_budget_bytes, local_samples,
                               first_seen, last_seen, state)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
            ON CONFLICT (identity) DO UPDATE SET name = excluded.name, profile = excluded.profile,
                energy_budget_j = excluded.energy_budget_j, memory_budget_bytes = excluded.memory_budget_bytes,
                local_samples = excluded.local_samples, last_seen = excluded.last_seen,
                state = CASE WHEN nodes.state = 'distrusted' THEN 'distrusted' ELSE excluded.state END
            """,
            [
                .text(n.identity), .text(n.name), .text(n.profileJSON), .real(n.energyBudgetJ),
                .integer(Int64(n.memoryBudgetBytes)), .integer(Int64(n.localSamples)), .text(now), .text(now),
                .text(n.state),
            ])
        return try nodeID(n.identity)
    }

    /// Sets a node's state (`retired` when its budget is spent, `dropped` when it went away).
    public func setState(identity: String, state: String) throws {
        try database.run(
            "UPDATE nodes SET state = ?, last_seen = ? WHERE identity = ?",
            [.text(state), .text(Self.now()), .text(identity)])
    }

    /// A node's state, or nil for a node the ledger does not know.
    public func state(identity: String) throws -> String? {
        try database.rows("SELECT state FROM nodes WHERE identity = ?", [.text(identity)]).first?["state"].string
    }

    func nodeID(_ identity: String) throws -> Int64 {
        guard let id = try database.rows("SELECT id FROM nodes WHERE identity = ?", [.text(identity)]).first?["id"].int
        else { throw SQLiteError(code: 12, message: "no node with identity \(identity) in the ledger") }
        return Int64(id)
    }

    /// Records a whole round attempt — the round, every participation, and the checkpoint of the global model
    /// after it — in **one transaction**: a crash or a refused value leaves none of it stored.
    public func recordRound(
        _ round: RoundRecord, participations: [ParticipationRecord], checkpoint: [UInt8]? = nil,
        beforeCommit: () -> Void = {}
    ) throws {
        try database.transaction {
            defer { beforeCommit() }
            let energy = participations.reduce(0) { $0 + $1.energyJ }
            try database.run(
                """
                INSERT INTO rounds (number, attempt, started_at, ended_at, status, participants, accuracy, loss,
                                    energy_j, bytes_down, bytes_up)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """,
                [
                    .integer(Int64(round.number)), .integer(Int64(round.attempt)), .text(round.startedAt),
                    .text(round.endedAt), .text(round.status), .integer(Int64(participations.count)),
                    round.accuracy.map { .real($0) } ?? .null, round.loss.map { .real($0) } ?? .null, .real(energy),
                    .integer(Int64(participations.reduce(0) { $0 + $1.bytesDown })),
                    .integer(Int64(participations.reduce(0) { $0 + $1.bytesUp })),
                ])
            for p in participations { try insertParticipation(round: round.number, attempt: round.attempt, p) }
            if let checkpoint, round.status == "completed" {
                try database.run(
                    "INSERT OR REPLACE INTO checkpoints (round, created_at, model) VALUES (?, ?, ?)",
                    [.integer(Int64(round.number)), .text(round.endedAt), .blob(checkpoint)])
            }
        }
    }

    func insertParticipation(round: Int, attempt: Int, _ p: ParticipationRecord) throws {
        try database.run(
            """
            INSERT INTO participations (round, attempt, node_id, status, reason, energy_j, cumulative_energy_j,
                peak_memory_bytes, parameter_bytes, bits, samples, steps_done, steps_asked, loss, accuracy,
                bytes_up, bytes_down, duration_s)
            VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
            """,
            [
                .integer(Int64(round)), .integer(Int64(attempt)), .integer(try nodeID(p.identity)), .text(p.status),
                p.reason.map { .text($0) } ?? .null, .real(p.energyJ), .real(p.cumulativeEnergyJ),
                .integer(Int64(p.peakMemoryBytes)), .integer(Int64(p.parameterBytes)),
                .text("[" + p.bits.map(String.init).joined(separator: ",") + "]"), .integer(Int64(p.samples)),
                .integer(Int64(p.stepsDone)), .integer(Int64(p.stepsAsked)), p.loss.map { .real($0) } ?? .null,
                p.accuracy.map { .real($0) } ?? .null, .integer(Int64(p.bytesUp)), .integer(Int64(p.bytesDown)),
                .real(p.durationS),
            ])
    }

    /// The last completed round and its checkpoint, if any: where a restarted coordinator resumes.
    public func latestCheckpoint() throws -> (round: Int, model: [UInt8])? {
        guard let row = try database.rows("SELECT round, model FROM checkpoints ORDER BY round DESC LIMIT 1").first,
            let round = row["round"].int, let model = row["model"].bytes
        else { return nil }
        return (round, model)
    }

    /// A node's energy spent over every recorded participation and every event that carried energy, J.
    public func energySpent(identity: String) throws -> Double {
        try database.rows(
            """
            SELECT (SELECT COALESCE(SUM(p.energy_j), 0) FROM participations p WHERE p.node_id = n.id)
                 + (SELECT COALESCE(SUM(e.energy_j), 0) FROM events e WHERE e.node_id = n.id) AS spent
            FROM nodes n WHERE n.identity = ?
            """, [.text(identity)]
        ).first?["spent"].double ?? 0
    }

    /// Records an event (a refusal, a fault, a distrusted node), with the energy it carried, if any.
    public func recordEvent(round: Int?, identity: String?, kind: String, detail: String, energyJ: Double = 0) throws {
        let node: SQLiteValue = try identity.map { .integer(try nodeID($0)) } ?? .null
        try database.run(
            "INSERT INTO events (at, round, node_id, kind, detail, energy_j) VALUES (?, ?, ?, ?, ?, ?)",
            [
                .text(Self.now()), round.map { .integer(Int64($0)) } ?? .null, node, .text(kind), .text(detail),
                .real(max(0, energyJ.isFinite ? energyJ : 0)),
            ])
    }

    /// Records an update that arrived after its round closed: the node's `dropped` row of that round (or none, if
    /// it was not selected) becomes `late` with the figures it reported (never averaged); a node that had answered
    /// that round gets an event (a replay: no energy counted twice); a round the ledger never recorded (its
    /// coordinator died before committing it) gets an event carrying the energy. One transaction.
    public func recordLate(round: Int, attempt: Int, _ p: ParticipationRecord) throws {
        try database.transaction {
            let node = try nodeID(p.identity)
            let key: [SQLiteValue] = [.integer(Int64(round)), .integer(Int64(attempt)), .integer(node)]
            let roundKnown = try !database.rows(
                "SELECT 1 FROM rounds WHERE number = ? AND attempt = ?", Array(key.prefix(2))
            ).isEmpty
            guard roundKnown else {
                try recordEvent(
                    round: round, identity: p.identity, kind: "late-update",
                    detail: "update for round \(round) attempt \(attempt), which this ledger never recorded: "
                        + "\(p.reason ?? "")", energyJ: p.energyJ)
                return
            }
            let existing = try database.rows(
                "SELECT status FROM participations WHERE round = ? AND attempt = ? AND node_id = ?", key
            ).first?["status"].string
            switch existing {
            case "dropped"?, nil:
                try database.run("DELETE FROM participations WHERE round = ? AND attempt = ? AND node_id = ?", key)
                try insertParticipation(round: round, attempt: attempt, p)
            default:
                // The node already answered that round: this is a replay, its energy counted once already.
                try recordEvent(
                    round: round, identity: p.identity, kind: "refused-update",
                    detail:
                        "a second update for round \(round) attempt \(attempt), which it answered (\(existing ?? ""))")
            }
        }
    }

    /// The round attempts recorded, in order.
    public func rounds() throws -> [RoundRecord] {
        try database.rows("SELECT * FROM rounds ORDER BY number, attempt").map { r in
            RoundRecord(
                number: r["number"].int ?? 0, attempt: r["attempt"].int ?? 0, status: r["status"].string ?? "",
                startedAt: r["started_at"].string ?? "", endedAt: r["ended_at"].string ?? "",
                accuracy: r["accuracy"].double, loss: r["loss"].double)
        }
    }

    /// The fleet, one row per node: identity, name, state, rounds taken, samples, energy used and budget, peak
    /// memory and budget, last seen.
    public func fleet() throws -> [SQLiteRow] {
        try database.rows(
            """
            SELECT n.name, n.identity, n.state,
                   COUNT(CASE WHEN p.status IN ('ok', 'partial') THEN 1 END) AS rounds,
                   COALESCE(SUM(p.samples), 0) AS samples,
                   COALESCE(SUM(p.energy_j), 0)
                     + (SELECT COALESCE(SUM(e.energy_j), 0) FROM events e WHERE e.node_id = n.id) AS energy_j,
                   n.energy_budget_j,
                   COALESCE(MAX(p.peak_memory_bytes), 0) AS peak_memory_bytes, n.memory_budget_bytes, n.last_seen
            FROM nodes n LEFT JOIN participations p ON p.node_id = n.id
            GROUP BY n.id ORDER BY n.name, n.identity
            """)
    }

    /// Round history, one row per attempt.
    public func roundHistory() throws -> [SQLiteRow] {
        try database.rows(
            """
            SELECT number AS round, attempt, status, participants, accuracy, loss, energy_j, bytes_up, bytes_down,
                   started_at, ended_at
            FROM rounds ORDER BY number, attempt
            """)
    }

    /// One node's rounds, by identity or name.
    public func participations(node: String) throws -> [SQLiteRow] {
        try database.rows(
            """
            SELECT p.round, p.attempt, p.status, p.reason, p.energy_j, p.cumulative_energy_j, p.peak_memory_bytes,
                   p.bits, p.samples, p.steps_done, p.steps_asked, p.loss, p.accuracy, p.bytes_up, p.bytes_down
            FROM participations p JOIN nodes n ON n.id = p.node_id
            WHERE n.identity = ? OR n.name = ? ORDER BY p.round, p.attempt
            """, [.text(node), .text(node)])
    }
}
