import Foundation
import Testing

@testable import ConnectorHost

/// The state's VFS (`Sources/CSQLiteVFS/coalescing_vfs.c`) writes a commit's WAL frames with one
/// write. These hold it to that, and to what must not change: another process reading the state
/// with SQLite's own VFS sees each commit whole or not at all, and a transaction larger than the
/// page cache (its pages written to the WAL before the commit, read back, rewritten) commits or
/// rolls back as it would without it.
@Suite struct CoalescingVFSTests {
    /// A table whose rows come in pairs (+k, -k) with some padding, and an index on the value.
    static func ledger(at path: String) throws -> SQLiteDatabase {
        let db = try SQLiteDatabase(path: path)
        try db.execute("PRAGMA journal_mode = WAL")
        try db.execute("PRAGMA synchronous = NORMAL")
        try db.execute("CREATE TABLE IF NOT EXISTS ledger (id INTEGER PRIMARY KEY, v INTEGER NOT NULL, pad BLOB); CREATE INDEX IF NOT EXISTS ledger_v ON ledger(v)")
        return db
    }

    static func addPair(_ db: SQLiteDatabase, _ k: Int, padding: Int = 300) throws(StoreError) {
        try db.perform("INSERT INTO ledger (v, pad) VALUES (?, zeroblob(?)), (?, zeroblob(?))", [.int(k), .int(padding), .int(-k), .int(padding)])
    }

    static func totals(_ db: SQLiteDatabase) throws -> (count: Int, sum: Int) {
        try #require(try db.firstRow("SELECT COUNT(*), COALESCE(SUM(v), 0) FROM ledger", []) { ($0.int(0), $0.int(1)) })
    }

    /// Starts the fixture that reads the ledger from another process until `stop` exists.
    static func startReader(_ path: String, stop: String) throws -> (Process, Pipe) {
        let reader = Process()
        reader.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        reader.arguments = ["python3", Fixtures.directory + "/store/ledger-reader.py", path, stop]
        let output = Pipe()
        reader.standardOutput = output
        try reader.run()
        return (reader, output)
    }

    /// The reader's summary; records an issue unless it exited 0 (every read consistent, integrity ok).
    static func finish(_ reader: (Process, Pipe)) throws -> [String: Any] {
        let output = reader.1.fileHandleForReading.readDataToEndOfFile()
        reader.0.waitUntilExit()
        #expect(reader.0.terminationStatus == 0, "reader: \(String(decoding: output, as: UTF8.self))")
        return try #require(try JSONSerialization.jsonObject(with: output) as? [String: Any])
    }

    @Test func aCommitReachesTheWALInOneWrite() throws {
        let directory = TemporaryDirectory()
        let db = try Self.ledger(at: directory.path + "/state.sqlite")
        for k in 1...40 { try db.transaction(locking: []) { () throws(StoreError) in try Self.addPair(db, k) } }
        let before = try #require(db.walWrites(), "the state is opened on the coalescing VFS")
        // Rows at both ends of the table and of the index: several pages change.
        try db.transaction(locking: []) { () throws(StoreError) in
            for k in [5, 500, 50_000] { try Self.addPair(db, k) }
            try db.perform("UPDATE ledger SET pad = zeroblob(301) WHERE id IN (1, 41, 81)", [])
        }
        let after = try #require(db.walWrites())
        let requested = after.requested - before.requested
        #expect(requested >= 6, "three pages or more are six writes or more from SQLite, got \(requested)")
        #expect(after.issued - before.issued == 1, "\(requested) writes asked, \(after.issued - before.issued) made")
        #expect(try Self.totals(db) == (86, 0))
    }

    @Test func anotherProcessSeesEachCommitWholeWhileTheyAreMade() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/state.sqlite"
        let stop = directory.path + "/stop"
        let db = try Self.ledger(at: path)
        try db.transaction(locking: []) { () throws(StoreError) in try Self.addPair(db, 1) }
        let reader = try Self.startReader(path, stop: stop)
        // Commits of one to a few pages, some rewriting older rows, until the reader has seen
        // some of them; SQLite's own checkpoints restart the WAL along the way (header writes).
        var k = 1
        var totalsSeenByReader = 0
        while k < 20_000 && (k < 600 || totalsSeenByReader < 3) {
            k += 1
            try db.transaction(locking: []) { () throws(StoreError) in
                try Self.addPair(db, k, padding: (k % 7) * 150)
                if k % 10 == 0 { try db.perform("UPDATE ledger SET pad = zeroblob(?) WHERE id % 97 = ?", [.int(k % 500), .int(k % 97)]) }
            }
            if k % 200 == 0, let progress = try? String(contentsOfFile: stop + ".reads", encoding: .utf8) { totalsSeenByReader = Int(progress) ?? 0 }
        }
        _ = FileManager.default.createFile(atPath: stop, contents: nil)
        let summary = try Self.finish(reader)
        #expect(summary["finalCount"] as? Int == 2 * k)
        #expect((summary["distinctCounts"] as? Int ?? 0) > 1, "the reader read while commits were made: \(summary)")
        let writes = try #require(db.walWrites())
        #expect(writes.issued * 2 <= writes.requested, "\(writes)")
    }

    @Test func aTransactionLargerThanTheCacheCommitsWholeAndOneRolledBackLeavesNothing() throws {
        let directory = TemporaryDirectory()
        let path = directory.path + "/state.sqlite"
        let db = try Self.ledger(at: path)
        // Eight pages of cache: the transactions below write pages to the WAL before they
        // commit, read them back, and rewrite frames already written.
        try db.execute("PRAGMA cache_size = 8")
        try db.transaction(locking: []) { () throws(StoreError) in
            for k in 1...600 { try Self.addPair(db, k, padding: 400) }
            try db.perform("UPDATE ledger SET pad = zeroblob(401) WHERE id % 7 = 0", [])
        }
        #expect(throws: StoreError.self) {
            try db.transaction(locking: []) { () throws(StoreError) in
                for k in 1000...1600 { try Self.addPair(db, k, padding: 400) }
                throw StoreError(kind: .other, message: "rolled back on purpose", path: path)
            }
        }
        try db.transaction(locking: []) { () throws(StoreError) in try Self.addPair(db, 5000) }
        #expect(try Self.totals(db) == (1202, 0))
        #expect(try db.firstRow("PRAGMA integrity_check", []) { $0.text(0) } == "ok")
        _ = FileManager.default.createFile(atPath: directory.path + "/stop", contents: nil)
        let summary = try Self.finish(try Self.startReader(path, stop: directory.path + "/stop"))
        #expect(summary["finalCount"] as? Int == 1202)
    }
}
