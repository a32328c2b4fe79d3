import CSQLite
import CSQLiteVFS
import Foundation

/// A serialised SQLite connection with cached prepared statements. Not thread-safe by itself: the
/// store owning it holds a lock around every use.
final class SQLiteDatabase: SQLDatabase {
    let path: String
    var location: String { path }
    let dialect = SQLDialect.sqlite
    private var handle: OpaquePointer?
    private var statements: [String: OpaquePointer] = [:]
    private var checkpointer: WALCheckpointer?

    /// Process-wide settings, made before SQLite's first use (they cannot change after it), and
    /// the VFS the state is opened with (`coalescing_vfs.c`): nil if it could not be registered,
    /// and the default VFS is used instead.
    private static let vfs: String? = {
        _ = ch_sqlite3_disable_memory_statistics()
        return ch_coalescing_vfs_register() == SQLITE_OK ? CH_COALESCING_VFS_NAME : nil
    }()

    init(path: String) throws(StoreError) {
        self.path = path
        var db: OpaquePointer?
        let flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX
        let rc = sqlite3_open_v2(path, &db, flags, Self.vfs)
        handle = db
        guard rc == SQLITE_OK else {
            let message = db.map { String(cString: sqlite3_errmsg($0)) } ?? "error \(rc)"
            sqlite3_close(db)
            handle = nil
            throw StoreError(kind: rc == SQLITE_READONLY ? .readOnly : .cannotOpen, message: message, path: path)
        }
        sqlite3_extended_result_codes(db, 1)
    }

    /// Rows each cached statement stepped through in full scans (of a table or a whole index)
    /// since the last call, by SQL. For tests: a statement the host runs per task must find its
    /// rows through an index, however many tasks the state keeps.
    func takeFullScanSteps() -> [String: Int] {
        statements.mapValues { Int(sqlite3_stmt_status($0, SQLITE_STMTSTATUS_FULLSCAN_STEP, 1)) }
    }

    /// The writes SQLite asked of this connection's WAL file and those made to the file system
    /// (`coalescing_vfs.c`), since the connection opened; nil when it is not on that VFS. For tests.
    func walWrites() -> (requested: Int, issued: Int)? {
        var requested: sqlite3_int64 = 0
        var issued: sqlite3_int64 = 0
        guard ch_coalescing_vfs_wal_writes(handle, &requested, &issued) == SQLITE_OK else { return nil }
        return (Int(requested), Int(issued))
    }

    /// Moves WAL checkpoints off the committing thread (`WALCheckpointer`). For a file in WAL mode.
    func checkpointInBackground(synchronous: String) {
        guard checkpointer == nil else { return }
        let checkpointer = WALCheckpointer(path: path, synchronous: synchronous)
        checkpointer.install(on: handle)
        self.checkpointer = checkpointer
    }

    deinit {
        checkpointer?.uninstall(from: handle)
        for statement in statements.values { sqlite3_finalize(statement) }
        sqlite3_close(handle)
    }

    func error(_ rc: Int32, _ context: String) -> StoreError {
        let message = "\(context): \(String(cString: sqlite3_errmsg(handle)))"
        let kind: StoreError.Kind
        switch rc & 0xFF {
        case SQLITE_READONLY, SQLITE_PERM, SQLITE_CANTOPEN: kind = .readOnly
        case SQLITE_FULL: kind = .full
        case SQLITE_IOERR:
            // The OS error tells a full disk (or a file-size limit) from a failing one.
            let osError = sqlite3_system_errno(handle)
            kind = osError == ENOSPC || osError == EFBIG || osError == EDQUOT ? .full : (osError == EACCES || osError == EROFS ? .readOnly : .other)
        case SQLITE_CORRUPT, SQLITE_NOTADB: kind = .corrupt
        case SQLITE_BUSY, SQLITE_LOCKED: kind = .busy
        default: kind = .other
        }
        return StoreError(kind: kind, message: message, path: path)
    }

    /// Runs one or more statements without results (schema, pragmas).
    func execute(_ sql: String) throws(StoreError) {
        var message: UnsafeMutablePointer<CChar>?
        let rc = sqlite3_exec(handle, sql, nil, nil, &message)
        if rc != SQLITE_OK {
            let text = message.map { String(cString: $0) } ?? "error \(rc)"
            sqlite3_free(message)
            var e = error(rc, text)
            e.message = text
            throw e
        }
    }

    /// Runs `sql` with `bindings`, calling `row` for each result row.
    func query(_ sql: String, _ bindings: [SQLValue], row: (Row) throws(StoreError) -> Void) throws(StoreError) {
        let statement = try prepare(sql)
        defer {
            sqlite3_reset(statement)
            sqlite3_clear_bindings(statement)
        }
        for (index, value) in bindings.enumerated() {
            let i = Int32(index + 1)
            let rc: Int32
            switch value {
            case .null: rc = sqlite3_bind_null(statement, i)
            case .integer(let v): rc = sqlite3_bind_int64(statement, i, v)
            case .real(let v): rc = sqlite3_bind_double(statement, i, v)
            case .text(let v): rc = sqlite3_bind_text(statement, i, v, -1, SQLITE_TRANSIENT_PTR)
            }
            guard rc == SQLITE_OK else { throw error(rc, "binding parameter \(i)") }
        }
        while true {
            let rc = sqlite3_step(statement)
            if rc == SQLITE_DONE { return }
            guard rc == SQLITE_ROW else { throw error(rc, "running \(sql.prefix(60))") }
            try row(Row(.sqlite(statement!)))
        }
    }

    var changes: Int { Int(sqlite3_changes(handle)) }

    func later<T>(_ sql: String, _ bindings: [SQLValue], _ map: @escaping (Row) -> T) throws(StoreError) -> Later<T> {
        let result = Later(map)
        try query(sql, bindings) { result.receive($0) }
        result.arrive(changes: changes)
        return result
    }

    /// `BEGIN IMMEDIATE`: takes the write lock up front, so a transaction never fails halfway for
    /// a lock it could have waited for (busy_timeout applies to the BEGIN).
    /// No advisory locks: one writer at a time is what SQLite's write lock already means.
    /// The three statements are prepared once, like the rest: parsed per call they cost a task
    /// about as much as one of its queries.
    func transaction<T>(locking keys: [String], _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try perform("BEGIN IMMEDIATE", [])
        do {
            let value = try body()
            try perform("COMMIT", [])
            return value
        } catch {
            try? perform("ROLLBACK", [])
            throw error
        }
    }

    func perform(_ sql: String, _ bindings: [SQLValue]) throws(StoreError) { try query(sql, bindings) { _ in } }

    /// Only hosts sharing a server are woken; a state file has one host.
    func notifyWork() throws(StoreError) {}

    private func prepare(_ sql: String) throws(StoreError) -> OpaquePointer? {
        if let cached = statements[sql] { return cached }
        var statement: OpaquePointer?
        let rc = sqlite3_prepare_v3(handle, sql, -1, UInt32(SQLITE_PREPARE_PERSISTENT), &statement, nil)
        guard rc == SQLITE_OK else { throw error(rc, "preparing \(sql.prefix(80))") }
        statements[sql] = statement
        return statement
    }
}

/// SQLite's "copy this text now" destructor, which Swift cannot spell as a constant.
let SQLITE_TRANSIENT_PTR = unsafeBitCast(OpaquePointer(bitPattern: -1), to: sqlite3_destructor_type.self)
