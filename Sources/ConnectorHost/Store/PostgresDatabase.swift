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
    private var inTransaction = false
    /// A NOTIFY asked for in the transaction: sent with its COMMIT, in the same round trip.
    private var notifyAtCommit = false

    init(url: PostgresURL) throws(StoreError) {
        self.url = url
        connection = try Self.connect(url)
    }

    deinit { PQfinish(connection) }

    static func connect(_ url: PostgresURL) throws(StoreError) -> OpaquePointer {
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
        guard !inTransaction, PQstatus(connection) != CONNECTION_OK else { return }
        PQreset(connection)
        prepared = [:]
        guard PQstatus(connection) == CONNECTION_OK else {
            throw StoreError(kind: .cannotOpen, message: String(cString: PQerrorMessage(connection)).trimmingCharacters(in: .whitespacesAndNewlines), path: location)
        }
        PQclear(PQexec(connection, "SET client_min_messages = warning"))
    }

    func execute(_ sql: String) throws(StoreError) {
        try reconnectIfNeeded()
        let result = PQexec(connection, sql)
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK else { throw error(result, "running \(sql.prefix(60))") }
    }

    func query(_ sql: String, _ bindings: [SQLValue], row: (Row) throws(StoreError) -> Void) throws(StoreError) {
        try reconnectIfNeeded()
        let name = try prepare(sql)
        let texts: [String?] = bindings.map { value in
            switch value {
            case .null: nil
            case .integer(let v): String(v)
            case .real(let v): "\(v)"
            case .text(let v): v
            }
        }
        let result = withCStrings(texts) { parameters in
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
            throw error(result, "running \(sql.trimmingCharacters(in: .whitespacesAndNewlines).prefix(60))")
        }
    }

    var changes: Int { lastChanges }

    /// READ COMMITTED, with the keys that must not race taken by `lockForTransaction`. A deadlock
    /// the server broke is retried: the body is only database work, rolled back whole.
    /// The advisory locks go with BEGIN in one simple-query message: one round trip, not two.
    func transaction<T>(locking keys: [String], _ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        let begin = (["BEGIN"] + keys.map { "SELECT pg_advisory_xact_lock(hashtext(\(Self.literal($0))))" }).joined(separator: "; ")
        var attempt = 0
        while true {
            attempt += 1
            try execute(begin)
            inTransaction = true
            notifyAtCommit = false
            do {
                let value = try body()
                inTransaction = false
                try execute(notifyAtCommit ? "\(notifyStatement); COMMIT" : "COMMIT")
                return value
            } catch {
                inTransaction = false
                if PQstatus(connection) == CONNECTION_OK { PQclear(PQexec(connection, "ROLLBACK")) }
                if (error.sqlState == "40P01" || error.sqlState == "40001") && attempt < 5 { continue }
                throw error
            }
        }
    }

    /// Signed with the host's id: a host's own notifications do not wake it.
    private var notifyStatement: String { "SELECT pg_notify('\(Self.workChannel)', \(Self.literal(HostIdentity.current.id)))" }

    func notifyWork() throws(StoreError) {
        if inTransaction {
            notifyAtCommit = true
        } else {
            try execute(notifyStatement)
        }
    }

    /// A string literal for the few statements sent as simple queries (standard_conforming_strings
    /// is on in every supported server, so only the quote is special).
    static func literal(_ text: String) -> String { "'" + text.replacingOccurrences(of: "'", with: "''") + "'" }

    private func prepare(_ sql: String) throws(StoreError) -> String {
        if let name = prepared[sql] { return name }
        let name = "s\(prepared.count)"
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
