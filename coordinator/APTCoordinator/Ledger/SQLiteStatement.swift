import CSQLite

/// A compiled statement, owned once: finalised in `deinit`. Keeps its database open while it lives.
public final class SQLiteStatement {
    private let handle: OpaquePointer
    private let database: SQLiteDatabase
    /// The SQL it was compiled from.
    public let sql: String

    init(database: SQLiteDatabase, sql: String) throws(SQLiteError) {
        let db = try database.live()
        var stmt: OpaquePointer? = nil
        let rc = sqlite3_prepare_v2(db, sql, -1, &stmt, nil)
        guard rc == SQLITE_OK, let stmt else {
            sqlite3_finalize(stmt)
            throw SQLiteError(code: rc, db: db, sql: sql)
        }
        self.handle = stmt
        self.database = database
        self.sql = sql
    }

    deinit { sqlite3_finalize(handle) }

    /// Binds `values` to the parameters in order (1-based in SQLite).
    func bind(_ values: [SQLiteValue]) throws(SQLiteError) {
        let expected = Int(sqlite3_bind_parameter_count(handle))
        guard values.count == expected else {
            throw SQLiteError(
                code: SQLITE_RANGE, message: "\(values.count) values for \(expected) parameters", sql: sql)
        }
        for (i, v) in values.enumerated() {
            let index = Int32(i + 1)
            let rc: Int32
            switch v {
            case .null: rc = sqlite3_bind_null(handle, index)
            case .integer(let x): rc = sqlite3_bind_int64(handle, index, x)
            case .real(let x): rc = sqlite3_bind_double(handle, index, x)
            case .text(let s): rc = sqlite3_bind_text(handle, index, s, -1, sqliteTransient)
            case .blob(let b):
                rc = b.withUnsafeBytes { p in
                    sqlite3_bind_blob64(handle, index, p.baseAddress, sqlite3_uint64(p.count), sqliteTransient)
                }
            }
            guard rc == SQLITE_OK else { throw SQLiteError(code: rc, db: try database.live(), sql: sql) }
        }
    }

    /// Advances: true when a row is ready, false when done.
    public func step() throws(SQLiteError) -> Bool {
        let rc = sqlite3_step(handle)
        switch rc {
        case SQLITE_ROW: return true
        case SQLITE_DONE: return false
        default: throw SQLiteError(code: rc, db: try database.live(), sql: sql)
        }
    }

    /// The current row.
    public func row() -> SQLiteRow {
        let n = sqlite3_column_count(handle)
        var columns: [String] = []
        var values: [SQLiteValue] = []
        for c in 0..<n {
            columns.append(String(cString: sqlite3_column_name(handle, c)))
            switch sqlite3_column_type(handle, c) {
            case SQLITE_INTEGER: values.append(.integer(sqlite3_column_int64(handle, c)))
            case SQLITE_FLOAT: values.append(.real(sqlite3_column_double(handle, c)))
            case SQLITE_TEXT: values.append(.text(String(cString: sqlite3_column_text(handle, c))))
            case SQLITE_BLOB:
                let count = Int(sqlite3_column_bytes(handle, c))
                if let p = sqlite3_column_blob(handle, c), count > 0 {
                    values.append(.blob(Array(UnsafeRawBufferPointer(start: p, count: count))))
                } else {
                    values.append(.blob([]))
                }
            default: values.append(.null)
            }
        }
        return SQLiteRow(columns: columns, values: values)
    }
}
