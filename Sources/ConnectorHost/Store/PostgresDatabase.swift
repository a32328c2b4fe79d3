#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPostgreSQL
import Foundation

/// A libpq connection with the same small API as `SQLiteDatabase`: `?` placeholders are numbered
/// for PostgreSQL, each distinct statement is prepared once, and parameters travel as text so
/// the server infers their types from the columns they meet.
final class PostgresDatabase: SQLDatabase {
    /// The channel `NOTIFY` wakes idle hosts on.
    static let workChannel = "connector_host_work"

    let url: PostgresURL
    var location: String { url.description }
    let dialect = SQLDialect.postgres
    private(set) var connection: OpaquePointer
    private var prepared: [String: String] = [:]
    private var lastChanges = 0
    /// Inside a transaction: libpq is in pipeline mode (see `transaction`).
    private var pipelined = false
    /// Sent but not yet read, in order.
    private var queued: [Queued] = []
    /// A failure found when `changes` sent the queue; thrown by the next statement.
    private var deferredError: StoreError?
    private var statementCount = 0
    /// A NOTIFY asked for in the transaction: sent with its COMMIT, in the same round trip.
    private var notifyAtCommit = false
    /// Exchanges with the server since the connection opened (a statement outside a
    /// transaction, a pipeline's sync). For tests: what a task costs in waits for the server.
    private(set) var roundTrips = 0
    /// Statements run since the connection opened, each costing the server its executor's
    /// start and end however many rows it serves. For tests.
    private(set) var statementsRun = 0

    init(url: PostgresURL) throws(StoreError) {
        self.url = url
        connection = try Self.connect(url)
    }

    deinit { PQfinish(connection) }

    static func connect(_ url: PostgresURL) throws(StoreError) -> OpaquePointer {
        try LibPQ.require(for: url.description)
        let (conninfo, password) = try url.connectionParameters()
        // The URL goes in as dbname (expanded by libpq); keywords after it override it.
        var keywords = ["dbname", "application_name", "connect_timeout"]
        var values = [conninfo, "connector-host", "10"]
        if let password {
            keywords.append("password")
            values.append(password)
        }
        let connection = withCStrings(keywords + [nil]) { k in withCStrings(values + [nil]) { v in PQconnectdbParams(k, v, 1) } }
        guard let connection, PQstatus(connection) == CONNECTION_OK else {
            let message = connection.map { String(cString: PQerrorMessage($0)) } ?? "out of memory"
            PQfinish(connection)
            throw StoreError(kind: .cannotOpen, message: message.trimmingCharacters(in: .whitespacesAndNewlines), path: url.description)
        }
        // NOTICEs ("relation already exists, skipping") would go to our stderr.
        PQclear(PQexec(connection, "SET client_min_messages = warning"))
        return connection
    }

    /// `?` → `$1, $2, …`, outside quoted literals.
    static func numbered(_ sql: String) -> String {
        var out = ""
        var n = 0
        var quoted = false
        for character in sql {
            if character == "'" { quoted.toggle() }
            if character == "?" && !quoted {
                n += 1
                out += "$\(n)"
            } else {
                out.append(character)
            }
        }
        return out
    }

    func error(_ result: OpaquePointer?, _ context: String) -> StoreError {
        let state = result.flatMap { PQresultErrorField($0, Int32(UInt8(ascii: "C"))) }.map { String(cString: $0) } ?? ""
        var text = result.map { String(cString: PQresultErrorMessage($0)) } ?? ""
        if text.isEmpty { text = String(cString: PQerrorMessage(connection)) }
        let kind: StoreError.Kind
        if state.hasPrefix("08") || state.hasPrefix("57P") || (state.isEmpty && PQstatus(connection) != CONNECTION_OK) {
            kind = .cannotOpen
        } else if state.hasPrefix("53") {
            kind = .full
        } else if state == "25006" || state == "42501" {
            kind = .readOnly
        } else if state.hasPrefix("40") || state == "55P03" {
            kind = .busy
        } else if state == "XX001" || state == "XX002" {
            kind = .corrupt
        } else {
            kind = .other
        }
        var e = StoreError(kind: kind, message: "\(context): \(text.trimmingCharacters(in: .whitespacesAndNewlines))", path: location)
        e.sqlState = state
        return e
    }

    /// A dropped connection (a server restart, a failover) is re-opened between transactions;
    /// statements prepared on the old one are gone with it.
    private func reconnectIfNeeded() throws(StoreError) {
        guard !pipelined, PQstatus(connection) != CONNECTION_OK else { return }
        PQreset(connection)
        prepared = [:]
        guard PQstatus(connection) == CONNECTION_OK else {
            throw StoreError(kind: .cannotOpen, message: String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines), path: location)
        }
        PQclear(PQexec(connection, "SET client_min_messages = warning"))
    }

    /// A simple query (schema DDL). Inside a transaction it leaves pipeline mode for the moment:
    /// libpq sends simple queries only outside it.
    func execute(_ sql: String) throws(StoreError) {
        let resume = pipelined
        if resume {
            try flush()
            PQexitPipelineMode(connection)
            pipelined = false
        }
        defer {
            if resume {
                pipelined = PQenterPipelineMode(connection) == 1
            }
        }
        try reconnectIfNeeded()
        roundTrips += 1
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw error(result, "running \(sql.prefix(60))") }
    }

    func query(_ sql: String, _ bindings: [SQLValue], row: (Row) throws(StoreError) -> Void) throws(StoreError) {
        if pipelined {
            try send(sql, bindings)
            try flush(row)
            return
        }
        try reconnectIfNeeded()
        let name = try prepare(sql)
        roundTrips += 1
        statementsRun += 1
        let result = withCStrings(Self.texts(bindings)) { parameters in
            PQexecPrepared(connection, name, Int32(parameters.count), parameters, nil, nil, 0)
        }
        defer { PQclear(result) }
        switch PQresultStatus(result) {
        case PGRES_COMMAND_OK:
            lastChanges = Int(String(cString: PQcmdTuples(result))) ?? 0
        case PGRES_TUPLES_OK:
            lastChanges = Int(String(cString: PQcmdTuples(result))) ?? 0
            guard let result else { return }
            for i in 0..<PQntuples(result) { try row(Row(.postgres(result, row: i))) }
        default:
            throw error(result, "running \(Self.context(sql))")
        }
    }

    /// In a transaction, a statement whose rows nobody reads is only queued: it travels with the
    /// next one that is read, or with COMMIT. With `later`, a task's completion and its
    /// next claim are about a dozen statements in two round trips.
    func perform(_ sql: String, _ bindings: [SQLValue]) throws(StoreError) {
        guard pipelined else { return try query(sql, bindings) { _ in } }
        try send(sql, bindings)
        // Bounded, so that neither side's socket buffer fills while the other is not reading.
        if queued.count >= 256 { try flush() }
    }

    /// In a transaction, queued like `perform`; its result is handed over when the flush that
    /// sends it reads the results.
    func later<T>(_ sql: String, _ bindings: [SQLValue], _ map: @escaping (Row) -> T) throws(StoreError) -> Later<T> {
        let result = Later(map)
        guard pipelined else {
            try query(sql, bindings) { result.receive($0) }
            result.arrive(changes: lastChanges)
            return result
        }
        try send(sql, bindings, result: LaterResult(receive: result.receive, arrive: result.arrive))
        if queued.count >= 256 { try flush() }
        return result
    }

    /// Reading it sends what is queued. A failure found then is thrown by the transaction's next
    /// statement or its COMMIT, so the transaction still rolls back whole.
    var changes: Int {
        if pipelined && !queued.isEmpty {
            do { try flush() } catch { deferredError = deferredError ?? error }
        }
        return lastChanges
    }

    /// READ COMMITTED, with the keys that must not race taken by advisory locks. The transaction
    /// runs in libpq's pipeline mode: BEGIN, the locks and the writes go out together. A deadlock
    /// the server broke is retried: the body is only database work, rolled back whole.
    func transaction<T>(locking keys: [String], _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        var attempt = 0
        while true {
            attempt += 1
            try reconnectIfNeeded()
            guard PQenterPipelineMode(connection) == 1 else { throw connectionError("starting a transaction") }
            pipelined = true
            notifyAtCommit = false
            do {
                try send("BEGIN", [])
                try lockForTransaction(keys)
                let value = try body()
                if notifyAtCommit { try send(Self.notifyStatement, [.text(HostIdentity.current.id)]) }
                try send("COMMIT", [])
                try flush()
                leavePipeline()
                return value
            } catch {
                if !queued.isEmpty { try? flush() }
                leavePipeline()
                if PQstatus(connection) == CONNECTION_OK { PQclear(PQexec(connection, "ROLLBACK")) }
                if (error.sqlState == "40P01" || error.sqlState == "40001") && attempt < 5 { continue }
                throw error
            }
        }
    }

    private func leavePipeline() {
        PQexitPipelineMode(connection)
        pipelined = false
        queued = []
        deferredError = nil
    }

    /// Signed with the host's id: a host's own notifications do not wake it.
    static let notifyStatement = "SELECT pg_notify('\(workChannel)', ?)"

    func notifyWork() throws(StoreError) {
        if pipelined {
            notifyAtCommit = true
        } else {
            try query(Self.notifyStatement, [.text(HostIdentity.current.id)]) { _ in }
        }
    }

    // MARK: Pipeline

    private enum Queued {
        case prepare(String)
        case statement(String, LaterResult?)
    }

    /// Where a `later` statement's rows and count go, without its element type.
    private struct LaterResult {
        let receive: (Row) -> Void
        let arrive: (Int) -> Void
    }

    private func send(_ sql: String, _ bindings: [SQLValue], result: LaterResult? = nil) throws(StoreError) {
        if let deferredError { throw deferredError }
        let name: String
        if let known = prepared[sql] {
            name = known
        } else {
            statementCount += 1
            name = "s\(statementCount)"
            guard PQsendPrepare(connection, name, Self.numbered(sql), 0, nil) == 1 else { throw connectionError("preparing \(Self.context(sql))") }
            prepared[sql] = name
            queued.append(.prepare(sql))
        }
        let sent = withCStrings(Self.texts(bindings)) { parameters in
            PQsendQueryPrepared(connection, name, Int32(parameters.count), parameters, nil, nil, 0)
        }
        guard sent == 1 else { throw connectionError("running \(Self.context(sql))") }
        statementsRun += 1
        queued.append(.statement(sql, result))
    }

    /// Sends what is queued with a sync point and reads every result; `row` gets the rows of the
    /// last statement, a `later` statement's own receiver its rows. The first failure is thrown
    /// (the statements after it did not run).
    private func flush(_ row: (Row) throws(StoreError) -> Void = { _ in }) throws(StoreError) {
        let items = queued
        queued = []
        guard PQpipelineSync(connection) == 1 else { throw connectionError("sending") }
        roundTrips += 1
        var failure: StoreError?
        for (index, item) in items.enumerated() {
            guard let result = PQgetResult(connection) else {
                failure = failure ?? connectionError("reading a result")
                break
            }
            let status = PQresultStatus(result)
            switch status {
            case PGRES_COMMAND_OK, PGRES_TUPLES_OK:
                guard case .statement(_, let later) = item else { break }
                lastChanges = Int(String(cString: PQcmdTuples(result))) ?? 0
                if let later {
                    if status == PGRES_TUPLES_OK {
                        for i in 0..<PQntuples(result) { later.receive(Row(.postgres(result, row: i))) }
                    }
                    later.arrive(lastChanges)
                } else if status == PGRES_TUPLES_OK, index == items.count - 1, failure == nil {
                    for i in 0..<PQntuples(result) {
                        do throws(StoreError) { try row(Row(.postgres(result, row: i))) } catch { failure = error; break }
                    }
                }
            case PGRES_PIPELINE_ABORTED:
                break  // skipped after an earlier failure
            default:
                switch item {
                case .prepare(let sql):
                    prepared[sql] = nil
                    failure = failure ?? error(result, "preparing \(Self.context(sql))")
                case .statement(let sql, _):
                    failure = failure ?? error(result, "running \(Self.context(sql))")
                }
            }
            PQclear(result)
            // Each statement's results end with a null.
            while let extra = PQgetResult(connection) { PQclear(extra) }
        }
        // The sync point's own result.
        if let sync = PQgetResult(connection) { PQclear(sync) }
        if let failure { throw failure }
    }

    private func connectionError(_ context: String) -> StoreError {
        let message = String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines)
        let kind: StoreError.Kind = PQstatus(connection) == CONNECTION_OK ? .other : .cannotOpen
        return StoreError(kind: kind, message: "\(context): \(message)", path: location)
    }

    private static func context(_ sql: String) -> Substring { sql.trimmingCharacters(in: .whitespacesAndNewlines).prefix(60) }

    /// Parameters travel as text; the server casts them to the columns' types.
    private static func texts(_ bindings: [SQLValue]) -> [String?] {
        bindings.map { value in
            switch value {
            case .null: nil
            case .integer(let v): String(v)
            case .real(let v): "\(v)"
            case .text(let v): v
            }
        }
    }

    private func prepare(_ sql: String) throws(StoreError) -> String {
        if let name = prepared[sql] { return name }
        statementCount += 1
        let name = "s\(statementCount)"
        roundTrips += 1
        let result = PQprepare(connection, name, Self.numbered(sql), 0, nil)
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK else { throw error(result, "preparing \(sql.trimmingCharacters(in: .whitespacesAndNewlines).prefix(80))") }
        prepared[sql] = name
        return name
    }
}

/// Runs `body` with C copies of `strings` (nil stays a null pointer), freed afterwards.
func withCStrings<R>(_ strings: [String?], _ body: ([UnsafePointer<CChar>?]) -> R) -> R {
    let copies: [UnsafeMutablePointer<CChar>?] = strings.map { $0.flatMap { strdup($0) } }
    defer { for copy in copies { free(copy) } }
    return body(copies.map { $0.map { UnsafePointer($0) } })
}
