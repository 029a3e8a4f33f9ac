import CSQLite

/// `SQLITE_TRANSIENT`, which Swift cannot import: SQLite copies the bound bytes before the call returns.
let sqliteTransient = unsafeBitCast(-1, to: sqlite3_destructor_type.self)

/// One SQLite connection, owned once: opened by the throwing initialiser, closed by `close()` or `deinit`.
/// Confined to one thread (the coordinator's single writer; a reader makes its own connection).
///
/// A read-write connection runs in WAL mode with foreign keys on and a busy timeout, so a read-only
/// connection in another process (`apt-coord ledger`) reads while the writer writes.
public final class SQLiteDatabase {
    private var handle: OpaquePointer?
    /// The file.
    public let path: String
    /// Whether the connection was opened read-only.
    public let readOnly: Bool

    /// Opens (read-write: creating) `path`. `busyTimeoutMs` bounds how long a statement waits for a lock.
    /// `untouched` opens read-only as SQLite's `immutable` URI parameter does: no lock, no `-wal` or `-shm`
    /// file created, nothing on disk changed (for inspecting a file before deciding to use it).
    public init(path: String, readOnly: Bool = false, untouched: Bool = false, busyTimeoutMs: Int32 = 5000)
        throws(SQLiteError)
    {
        self.path = path
        self.readOnly = readOnly || untouched
        var db: OpaquePointer? = nil
        let flags =
            (self.readOnly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE) | SQLITE_OPEN_NOMUTEX
            | (untouched ? SQLITE_OPEN_URI : 0)
        let rc = sqlite3_open_v2(untouched ? Self.immutableURI(path) : path, &db, flags, nil)
        guard rc == SQLITE_OK else {
            let error = SQLiteError(code: rc, db: db, sql: nil)
            sqlite3_close(db)  // a failed open still allocates a handle
            throw SQLiteError(code: error.code, message: "cannot open \(path): \(error.message)")
        }
        handle = db
        sqlite3_extended_result_codes(db, 1)
        sqlite3_busy_timeout(db, busyTimeoutMs)
        if !self.readOnly {
            try execute("PRAGMA journal_mode = WAL")
            try execute("PRAGMA synchronous = NORMAL")
        }
        try execute("PRAGMA foreign_keys = ON")
    }

    deinit { close() }

    /// `file:PATH?immutable=1`, with the characters a URI path cannot hold percent-encoded.
    static func immutableURI(_ path: String) -> String {
        var out = "file:"
        for byte in path.utf8 {
            switch byte {
            case UInt8(ascii: "%"), UInt8(ascii: "?"), UInt8(ascii: "#"), 0x80...0xFF:
                out += "%" + String(byte, radix: 16, uppercase: true)
            default: out.unicodeScalars.append(Unicode.Scalar(byte))
            }
        }
        return out + "?immutable=1"
    }

    /// Closes the connection (idempotent). Statements still alive are finalised by their own `deinit`.
    public func close() {
        if let h = handle {
            sqlite3_close_v2(h)
            handle = nil
        }
    }

    func live() throws(SQLiteError) -> OpaquePointer {
        guard let h = handle else { throw SQLiteError(code: SQLITE_MISUSE, message: "the database \(path) is closed") }
        return h
    }

    /// Runs one or more statements that return no rows.
    public func execute(_ sql: String) throws(SQLiteError) {
        let db = try live()
        var message: UnsafeMutablePointer<CChar>? = nil
        let rc = sqlite3_exec(db, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? String(cString: sqlite3_errmsg(db))
            sqlite3_free(message)
            throw SQLiteError(code: rc, message: text, sql: sql)
        }
    }

    /// Compiles `sql`, binding `arguments` to its parameters in order.
    public func prepare(_ sql: String, _ arguments: [SQLiteValue] = []) throws(SQLiteError) -> SQLiteStatement {
        let statement = try SQLiteStatement(database: self, sql: sql)
        try statement.bind(arguments)
        return statement
    }

    /// Runs a statement that returns no rows; returns the rows it changed.
    @discardableResult
    public func run(_ sql: String, _ arguments: [SQLiteValue] = []) throws(SQLiteError) -> Int {
        let statement = try prepare(sql, arguments)
        while try statement.step() {}
        return Int(sqlite3_changes(try live()))
    }

    /// Every row of a query.
    public func rows(_ sql: String, _ arguments: [SQLiteValue] = []) throws(SQLiteError) -> [SQLiteRow] {
        let statement = try prepare(sql, arguments)
        var out: [SQLiteRow] = []
        while try statement.step() { out.append(statement.row()) }
        return out
    }

    /// The rowid of the last insert on this connection.
    public var lastInsertRowID: Int64 { handle.map { sqlite3_last_insert_rowid($0) } ?? 0 }

    /// Runs `body` in one transaction (`BEGIN IMMEDIATE`: the write lock is taken at once): committed when it
    /// returns, rolled back when it throws, so a failure or a crash never leaves part of it stored.
    public func transaction<R>(_ body: () throws -> R) throws -> R {
        try execute("BEGIN IMMEDIATE")
        do {
            let r = try body()
            try execute("COMMIT")
            return r
        } catch {
            try? execute("ROLLBACK")
            throw error
        }
    }
}

/// A value bound to or read from SQLite.
public enum SQLiteValue: Hashable, Sendable {
    /// NULL.
    case null
    /// A 64-bit integer.
    case integer(Int64)
    /// A binary64 real.
    case real(Double)
    /// UTF-8 text.
    case text(String)
    /// Bytes.
    case blob([UInt8])

    /// The value as a person reads it in a table: empty for NULL, reals to 6 significant digits, a blob by size.
    public var displayText: String {
        switch self {
        case .null: return ""
        case .integer(let i): return String(i)
        case .real(let d): return String(format: "%.6g", d)
        case .text(let s): return s
        case .blob(let b): return "<\(b.count) bytes>"
        }
    }

    /// The integer, or nil.
    public var int: Int? { if case .integer(let v) = self { return Int(v) } else { return nil } }
    /// The real (an integer converted), or nil.
    public var double: Double? {
        switch self {
        case .real(let v): return v
        case .integer(let v): return Double(v)
        default: return nil
        }
    }
    /// The text, or nil.
    public var string: String? { if case .text(let v) = self { return v } else { return nil } }
    /// The bytes, or nil.
    public var bytes: [UInt8]? { if case .blob(let v) = self { return v } else { return nil } }
}

/// One result row: values by column name.
public struct SQLiteRow: Sendable {
    /// Column names in order.
    public var columns: [String]
    /// Values in column order.
    public var values: [SQLiteValue]
    /// The value of column `name` (`.null` when there is no such column).
    public subscript(name: String) -> SQLiteValue {
        columns.firstIndex(of: name).map { values[$0] } ?? .null
    }
}
