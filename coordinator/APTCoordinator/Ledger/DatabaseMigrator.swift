/// Named schema migrations, each applied once and recorded in `schema_migrations`, in the order registered
/// (GRDB's `DatabaseMigrator` is the model). Each runs in its own transaction with its record, so a crash
/// leaves it either applied and recorded or neither.
public struct DatabaseMigrator: Sendable {
    /// One migration.
    public struct Migration: Sendable {
        /// Its name: never reused, never renamed.
        public var name: String
        /// The SQL it runs.
        public var sql: String
    }

    /// The migrations, in order.
    public private(set) var migrations: [Migration] = []

    /// An empty migrator.
    public init() {}

    /// Adds a migration; names must be unique.
    public mutating func register(_ name: String, sql: String) {
        precondition(!migrations.contains { $0.name == name }, "migration '\(name)' registered twice")
        migrations.append(Migration(name: name, sql: sql))
    }

    /// The names already applied to `db`, in order.
    public func applied(in db: SQLiteDatabase) throws(SQLiteError) -> [String] {
        try db.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)")
        return try db.rows("SELECT name FROM schema_migrations ORDER BY rowid").compactMap { $0["name"].string }
    }

    /// Applies the migrations `db` has not had yet; returns their names. Refuses a database that has
    /// migrations this build does not know (made by a newer version).
    @discardableResult
    public func migrate(_ db: SQLiteDatabase) throws -> [String] {
        let done = try applied(in: db)
        let known = Set(migrations.map(\.name))
        if let unknown = done.first(where: { !known.contains($0) }) {
            throw SQLiteError(
                code: 1, message: "\(db.path) has migration '\(unknown)', unknown to this version of apt-coord")
        }
        var ran: [String] = []
        for m in migrations where !done.contains(m.name) {
            try db.transaction {
                try db.execute(m.sql)
                try db.run(
                    "INSERT INTO schema_migrations (name, applied_at) VALUES (?, strftime('%Y-%m-%dT%H:%M:%fZ','now'))",
                    [.text(m.name)])
            }
            ran.append(m.name)
        }
        return ran
    }
}
