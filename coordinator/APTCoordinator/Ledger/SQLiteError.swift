import CSQLite

/// A SQLite failure: the result code, SQLite's message and, when a statement failed, its SQL —
/// "SQLite error 19: NOT NULL constraint failed: nodes.key while executing `INSERT INTO nodes …`".
public struct SQLiteError: Error, Equatable, CustomStringConvertible, Sendable {
    /// The (extended) result code.
    public var code: Int32
    /// SQLite's message.
    public var message: String
    /// The statement, when one was being prepared or run.
    public var sql: String?

    /// Creates an error.
    public init(code: Int32, message: String, sql: String? = nil) {
        self.code = code
        self.message = message
        self.sql = sql
    }

    /// The error of connection `db` after a call returned `code`.
    init(code: Int32, db: OpaquePointer?, sql: String? = nil) {
        self.code = code
        self.message = db.map { String(cString: sqlite3_errmsg($0)) } ?? String(cString: sqlite3_errstr(code))
        self.sql = sql
    }

    public var description: String {
        "SQLite error \(code): \(message)" + (sql.map { " while executing `\($0.prefix(200))`" } ?? "")
    }

    /// The primary result code (the low byte of an extended code).
    public var primaryCode: Int32 { code & 0xFF }
}
