/// The fleet ledger's schema, as named migrations (docs/ledger.md will document the tables with queries).
enum LedgerSchema {
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.register("v1-fleet-ledger", sql: v1)
        m.register("v2-event-energy", sql: v2)
        return m
    }

    /// Energy a node reported in an update that was not a participation (a replay of a round the ledger never
    /// recorded, an update for a round it was not selected for): still energy it spent.
    static let v2 = """
        ALTER TABLE events ADD COLUMN energy_j REAL NOT NULL DEFAULT 0 CHECK (energy_j >= 0);
        """

    static let v1 = """
        CREATE TABLE nodes (
            id INTEGER PRIMARY KEY,
            identity TEXT NOT NULL UNIQUE,          -- CURVE public key (Z85), or the name in plain mode
            name TEXT NOT NULL,
            profile TEXT NOT NULL,                  -- device profile, JSON
            energy_budget_j REAL NOT NULL CHECK (energy_budget_j >= 0),
            memory_budget_bytes INTEGER NOT NULL CHECK (memory_budget_bytes >= 0),
            local_samples INTEGER NOT NULL CHECK (local_samples >= 0),
            first_seen TEXT NOT NULL,
            last_seen TEXT NOT NULL,
            state TEXT NOT NULL CHECK (state IN ('connected', 'idle', 'retired', 'dropped', 'distrusted'))
        );
        CREATE TABLE rounds (
            number INTEGER NOT NULL CHECK (number >= 1),
            attempt INTEGER NOT NULL CHECK (attempt >= 0),
            started_at TEXT NOT NULL,
            ended_at TEXT NOT NULL,
            status TEXT NOT NULL CHECK (status IN ('completed', 'failed')),
            participants INTEGER NOT NULL,
            accuracy REAL,
            loss REAL,
            energy_j REAL NOT NULL CHECK (energy_j >= 0),
            bytes_down INTEGER NOT NULL,
            bytes_up INTEGER NOT NULL,
            PRIMARY KEY (number, attempt)
        );
        CREATE TABLE participations (
            round INTEGER NOT NULL,
            attempt INTEGER NOT NULL,
            node_id INTEGER NOT NULL REFERENCES nodes (id),
            status TEXT NOT NULL CHECK (status IN ('ok', 'late', 'partial', 'rejected', 'dropped')),
            reason TEXT,
            energy_j REAL NOT NULL CHECK (energy_j >= 0),
            cumulative_energy_j REAL NOT NULL CHECK (cumulative_energy_j >= 0),
            peak_memory_bytes INTEGER NOT NULL,
            parameter_bytes INTEGER NOT NULL,
            bits TEXT NOT NULL,                     -- final weight bits per weighted layer, JSON array
            samples INTEGER NOT NULL,
            steps_done INTEGER NOT NULL,
            steps_asked INTEGER NOT NULL,
            loss REAL,
            accuracy REAL,
            bytes_up INTEGER NOT NULL,
            bytes_down INTEGER NOT NULL,
            duration_s REAL NOT NULL,
            PRIMARY KEY (round, attempt, node_id),
            FOREIGN KEY (round, attempt) REFERENCES rounds (number, attempt)
        );
        CREATE TABLE policies (
            id INTEGER PRIMARY KEY,
            node_id INTEGER NOT NULL REFERENCES nodes (id),
            round INTEGER NOT NULL,
            policy TEXT NOT NULL,                   -- JSON
            reason TEXT NOT NULL
        );
        CREATE TABLE events (
            id INTEGER PRIMARY KEY,
            at TEXT NOT NULL,
            round INTEGER,
            node_id INTEGER REFERENCES nodes (id),
            kind TEXT NOT NULL,
            detail TEXT NOT NULL
        );
        CREATE TABLE checkpoints (
            round INTEGER PRIMARY KEY,
            created_at TEXT NOT NULL,
            model BLOB NOT NULL                     -- the global model, float32 little-endian, tensors in wire order
        );
        CREATE INDEX participations_by_node ON participations (node_id, round);
        CREATE INDEX events_by_round ON events (round);
        """
}
