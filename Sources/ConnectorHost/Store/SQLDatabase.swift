import CPostgreSQL
import CSQLite
import Foundation

/// The two SQL engines the store runs on. The store's SQL is written once, in the subset both
/// understand (`?` placeholders, `ON CONFLICT`, `CASE`); these name the few places they differ.
enum SQLDialect: Sendable {
    case sqlite, postgres

    /// A column that orders rows by insertion (SQLite's implicit rowid; a sequence on PostgreSQL).
    var insertionOrder: String { self == .sqlite ? "rowid" : "seq" }
    /// Locks the rows of `table` (its name or alias) a SELECT returns until the transaction ends
    /// (PostgreSQL's row locks; a SQLite transaction's write lock already covers the whole file).
    func lockingSelectedRows(of table: String) -> String { self == .sqlite ? "" : " FOR UPDATE OF \(table)" }
    /// The larger of two values (SQLite's two-argument MAX).
    func greatest(_ a: String, _ b: String) -> String { self == .sqlite ? "MAX(\(a), \(b))" : "GREATEST(\(a), \(b))" }
    /// An aggregate joining the text values of `column` with the unit separator (U+001F), which
    /// agent-chosen text is not expected to hold; NULL when there are none.
    func joinedWithUnitSeparator(_ column: String) -> String { self == .sqlite ? "group_concat(\(column), char(31))" : "string_agg(\(column), chr(31))" }
    /// The scalar subquery `value`, which on SQLite is evaluated only when `exists` finds a row:
    /// SQLite builds a temporary b-tree or sorter for a DISTINCT or an ORDER BY at every
    /// execution, even for no rows. PostgreSQL sorts the few rows in memory; a probe more would
    /// cost its server more than it saves.
    func onlyWhenAny(_ exists: String, _ value: String) -> String {
        self == .sqlite ? "CASE WHEN EXISTS (\(exists)) THEN (\(value)) END" : "(\(value))"
    }

    /// The bindings of `onlyWhenAny(exists, value)`, in the order its text uses them.
    func onlyWhenAny(_ exists: [SQLValue], _ value: [SQLValue]) -> [SQLValue] { self == .sqlite ? exists + value : value }
}

/// One connection to the state database, used by one thread at a time (the store holds a lock).
protocol SQLDatabase: AnyObject {
    /// The file path or (password-masked) URL, for messages.
    var location: String { get }
    var dialect: SQLDialect { get }
    /// Runs one or more statements without parameters or results (schema).
    func execute(_ sql: String) throws(StoreError)
    /// Runs `sql` with `bindings` (`?` placeholders), calling `row` for each result row.
    func query(_ sql: String, _ bindings: [SQLValue], row: (Row) throws(StoreError) -> Void) throws(StoreError)
    /// Runs `sql` whose rows, if any, nobody reads. On PostgreSQL, inside a transaction, it may
    /// be sent later, with the next statement that is read; its failure then surfaces there.
    func perform(_ sql: String, _ bindings: [SQLValue]) throws(StoreError)
    /// Runs `sql` whose rows and changed-row count (of an INSERT, UPDATE or DELETE) are read
    /// after it is sent (`Later`): at once on SQLite; on PostgreSQL, inside a transaction, they
    /// come back with the transaction's next read or with its COMMIT, in the same round trip. A
    /// failure surfaces there too.
    func later<T>(_ sql: String, _ bindings: [SQLValue], _ map: @escaping (Row) -> T) throws(StoreError) -> Later<T>
    /// Rows changed by the last statement.
    var changes: Int { get }
    /// Runs `body` in one transaction that takes the write lock up front where the engine has one,
    /// and on PostgreSQL the advisory locks of `keys` (see `lockForTransaction`) with its BEGIN.
    func transaction<T>(locking keys: [String], _ body: () throws(StoreError) -> T) throws(StoreError) -> T
    /// Wakes hosts sleeping on LISTEN when the transaction commits (new or re-queued work).
    func notifyWork() throws(StoreError)
}

extension SQLDatabase {
    func run(_ sql: String, _ bindings: SQLValue...) throws(StoreError) { try perform(sql, bindings) }

    func rows<T>(_ sql: String, _ bindings: [SQLValue] = [], _ map: (Row) -> T) throws(StoreError) -> [T] {
        var result: [T] = []
        try query(sql, bindings) { r in result.append(map(r)) }
        return result
    }

    func firstRow<T>(_ sql: String, _ bindings: [SQLValue] = [], _ map: (Row) -> T) throws(StoreError) -> T? {
        try rows(sql, bindings, map).first
    }

    /// Serialises writers of one key across hosts until the transaction ends. SQLite needs none:
    /// `BEGIN IMMEDIATE` already admits one writer at a time.
    func lockForTransaction(_ key: String) throws(StoreError) {
        try lockForTransaction([key])
    }

    /// The locks of `keys`, taken in their order, several per statement (a batch of due ticks
    /// takes one per tick).
    func lockForTransaction(_ keys: [String]) throws(StoreError) {
        guard dialect == .postgres else { return }
        try MultiRow.chunks(keys) { (chunk) throws(StoreError) in
            try perform("SELECT " + MultiRow.values("pg_advisory_xact_lock(hashtext(?))", chunk.count), chunk.map(SQLValue.text))
        }
    }

    func transaction<T>(_ body: () throws(StoreError) -> T) throws(StoreError) -> T {
        try transaction(locking: [], body)
    }
}

/// One statement for many rows (a batch of due ticks opens its scans this way): on PostgreSQL
/// each statement costs the server its planning and executor start whatever its rows, so four
/// per tick were most of a batch's cost there.
enum MultiRow {
    /// Runs `body` over `items` in chunks of 32, 16, 8, 4, 2 and 1: a statement written for its
    /// chunk's size is one of a few prepared statements whatever the count, and no row is sent
    /// twice (padding a chunk would, and an INSERT ... ON CONFLICT DO UPDATE refuses that).
    static func chunks<T>(_ items: [T], _ body: (ArraySlice<T>) throws(StoreError) -> Void) throws(StoreError) {
        var start = items.startIndex
        var size = 32
        while start < items.endIndex {
            while size > items.endIndex - start { size /= 2 }
            try body(items[start..<start + size])
            start += size
        }
    }

    /// `row` `count` times, comma-separated: the VALUES of a multi-row statement.
    static func values(_ row: String, _ count: Int) -> String { Array(repeating: row, count: count).joined(separator: ", ") }
}

/// The result of a statement sent with `SQLDatabase.later`, filled when it arrives. Read it once
/// the transaction that sent it has committed (or after the read that followed it): a result
/// read before it arrived is a bug in the caller, and stops the host.
final class Later<Element> {
    private let map: (Row) -> Element
    private var received: [Element] = []
    private var changed = 0
    private var arrived = false

    init(_ map: @escaping (Row) -> Element) { self.map = map }

    /// A result already in hand.
    convenience init(arrived rows: [Element]) {
        self.init { _ in fatalError("an arrived result receives no rows") }
        received = rows
        arrived = true
    }

    var rows: [Element] {
        precondition(arrived, "a statement's result was read before it arrived")
        return received
    }

    var changes: Int {
        precondition(arrived, "a statement's result was read before it arrived")
        return changed
    }

    func receive(_ row: Row) { received.append(map(row)) }

    func arrive(changes: Int) {
        changed = changes
        arrived = true
    }
}

enum SQLValue: Sendable {
    case null
    case integer(Int64)
    case real(Double)
    case text(String)

    static func int(_ v: Int) -> SQLValue { .integer(Int64(v)) }
    static func optional(_ s: String?) -> SQLValue { s.map(SQLValue.text) ?? .null }
    static func optional(_ i: Int?) -> SQLValue { i.map { .integer(Int64($0)) } ?? .null }
    static func optional(_ d: Double?) -> SQLValue { d.map(SQLValue.real) ?? .null }
    static func json(_ v: JSONValue?) -> SQLValue { v.map { .text($0.serialized()) } ?? .null }
    static func date(_ d: Date) -> SQLValue { .real(d.timeIntervalSince1970) }
    static func date(_ d: Date?) -> SQLValue { d.map { .real($0.timeIntervalSince1970) } ?? .null }
    static func bool(_ b: Bool) -> SQLValue { .integer(b ? 1 : 0) }
}

/// One result row, read in place (SQLite's statement, or a row of a libpq result).
struct Row {
    enum Source {
        case sqlite(OpaquePointer)
        case postgres(OpaquePointer, row: Int32)
    }

    let source: Source
    init(_ source: Source) { self.source = source }

    func isNull(_ i: Int32) -> Bool {
        switch source {
        case .sqlite(let s): sqlite3_column_type(s, i) == SQLITE_NULL
        case .postgres(let r, let row): PQgetisnull(r, row, i) == 1
        }
    }

    func text(_ i: Int32) -> String {
        switch source {
        case .sqlite(let s): sqlite3_column_text(s, i).map { String(cString: $0) } ?? ""
        case .postgres(let r, let row): PQgetvalue(r, row, i).map { String(cString: $0) } ?? ""
        }
    }

    func int(_ i: Int32) -> Int {
        switch source {
        case .sqlite(let s): return Int(sqlite3_column_int64(s, i))
        case .postgres:
            // SUM() of integers is numeric on PostgreSQL, printed without a fraction.
            let t = text(i)
            return Int(t) ?? Double(t).map { Int($0) } ?? 0
        }
    }

    func double(_ i: Int32) -> Double {
        switch source {
        case .sqlite(let s): sqlite3_column_double(s, i)
        case .postgres: Double(text(i)) ?? 0
        }
    }

    func bool(_ i: Int32) -> Bool {
        switch source {
        case .sqlite(let s): sqlite3_column_int64(s, i) != 0
        case .postgres: ["1", "t", "true"].contains(text(i))
        }
    }

    func optionalInt(_ i: Int32) -> Int? { isNull(i) ? nil : int(i) }
    func optionalText(_ i: Int32) -> String? { isNull(i) ? nil : text(i) }
    func date(_ i: Int32) -> Date { Date(timeIntervalSince1970: double(i)) }
    func optionalDate(_ i: Int32) -> Date? { isNull(i) ? nil : date(i) }
    func json(_ i: Int32) -> JSONValue? { optionalText(i).flatMap { try? JSONParser.parse($0) } }
}
