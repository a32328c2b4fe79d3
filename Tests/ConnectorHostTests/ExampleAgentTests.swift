import Foundation
import Testing

@testable import ConnectorHost

/// The example agents in agents/ end to end through the host, each on data the test makes:
/// a full run, an incremental run with nothing changed, then one after a change.
extension HostProcessTests {
    @Suite struct ExampleAgentTests {
        static let incrementalAndFull: JSONValue = ["entity_ingestion_full", "entity_ingestion_incremental"]

        /// Runs a command to completion; the tests use it to prepare data with sqlite3 and git.
        @discardableResult
        static func shell(_ script: String, in directory: String) -> Int32 {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/bin/sh")
            process.arguments = ["-c", script]
            process.currentDirectoryURL = URL(fileURLWithPath: directory)
            process.environment = ProcessInfo.processInfo.environment.merging(
                ["GIT_AUTHOR_NAME": "Test", "GIT_AUTHOR_EMAIL": "t@example.com", "GIT_COMMITTER_NAME": "Test", "GIT_COMMITTER_EMAIL": "t@example.com"],
                uniquingKeysWith: { $1 })
            try! process.run()
            process.waitUntilExit()
            return process.terminationStatus
        }

        static func lines(_ path: String) -> [JSONValue] {
            ((try? String(contentsOfFile: path, encoding: .utf8)) ?? "").split(separator: "\n").map { try! JSONParser.parse(String($0)) }
        }

        static func execJSON(_ h: HostFixture, type: String) throws -> JSONValue {
            let result = h.run(["exec", "example", "--type", type, "--json"])
            return try JSONParser.parse(result.stdout)
        }

        // MARK: sqlite-table-sync

        static func makeShop(_ dir: TemporaryDirectory) -> String {
            let database = "\(dir.path)/shop.sqlite"
            let script = """
                import sqlite3
                db = sqlite3.connect("\(database)")
                db.execute("CREATE TABLE orders (id INTEGER PRIMARY KEY, customer TEXT, updated_at TEXT)")
                db.executemany("INSERT INTO orders VALUES (?, ?, ?)", [(i, "c%d" % i, "2026-01-%02d" % (i % 3 + 1)) for i in range(1, 11)])
                db.commit()
                """
            #expect(shell("python3 -c '\(script)'", in: dir.path) == 0)
            return database
        }

        static func sqliteInstallation(_ database: String, output: String, table: String = "orders", busyTimeout: JSONValue = 2) -> HostFixture {
            HostFixture.single(
                handler: [
                    "command": [.string("\(Fixtures.packageRoot)/agents/sqlite-table-sync/sqlite-table-sync.py")], "taskTypes": incrementalAndFull,
                ],
                fields: [
                    "database": .string(database), "table": .string(table), "output": .string(output), "batchSize": 3, "busyTimeoutSeconds": busyTimeout,
                ])
        }

        @Test func sqliteTableSyncFullThenIncremental() throws {
            let dir = TemporaryDirectory()
            let database = Self.makeShop(dir)
            let output = "\(dir.path)/out"
            let h = Self.sqliteInstallation(database, output: output)

            let full = try Self.execJSON(h, type: "entity_ingestion_full")
            #expect(full["status"] == "success", "\(full)")
            #expect(full["records"] == 10)
            #expect(Self.lines("\(output)/orders.full.jsonl").count == 10)

            let first = try Self.execJSON(h, type: "entity_ingestion_incremental")
            #expect(first["records"] == 10, "no checkpoint yet: every row")
            let store = try h.store()
            let cursor = try #require(try store.checkpoint(connectionId: "example", taskType: "entity_ingestion_incremental"))
            #expect(cursor["cursor"] == "2026-01-03")
            #expect(cursor["key"] == 8)

            let unchanged = try Self.execJSON(h, type: "entity_ingestion_incremental")
            #expect(unchanged["status"] == "success")
            #expect(unchanged["records"] == 0)

            // Two rows change; one is new.
            let update = "UPDATE orders SET customer = \"moved\", updated_at = \"2026-02-01\" WHERE id IN (2, 5); INSERT INTO orders VALUES (11, \"new\", \"2026-02-02\");"
            #expect(Self.shell("python3 -c 'import sqlite3; db = sqlite3.connect(\"\(database)\"); db.executescript(\"\"\"\(update)\"\"\"); db.commit()'", in: dir.path) == 0)
            let changed = try Self.execJSON(h, type: "entity_ingestion_incremental")
            #expect(changed["records"] == 3, "\(changed)")
            let file = try #require(changed["result"]?["file"]?.stringValue)
            #expect(Self.lines("\(output)/\(file)").map { $0["id"] } == [2, 5, 11])
            let next = try #require(try store.checkpoint(connectionId: "example", taskType: "entity_ingestion_incremental"))
            #expect(next["cursor"] == "2026-02-02")
        }

        @Test func sqliteTableSyncMissingTableIsEntityNotFound() throws {
            let dir = TemporaryDirectory()
            let database = Self.makeShop(dir)
            let h = Self.sqliteInstallation(database, output: "\(dir.path)/out", table: "invoices")
            let record = try Self.execJSON(h, type: "entity_ingestion_full")
            #expect(record["failureReason"] == "ENTITY_NOT_FOUND")
            #expect(record["error"]?.stringValue?.contains("table invoices does not exist") == true, "\(record)")
        }

        @Test func sqliteTableSyncLockedDatabaseIsRetryable() throws {
            let dir = TemporaryDirectory()
            let database = Self.makeShop(dir)
            let h = Self.sqliteInstallation(database, output: "\(dir.path)/out", busyTimeout: .number("0.2"))
            // A writer holds an exclusive lock (rollback journal: readers wait, then give up).
            let ready = "\(dir.path)/locked"
            let holder = Process()
            holder.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            holder.arguments = [
                "python3", "-c",
                "import sqlite3, time; db = sqlite3.connect('\(database)', isolation_level=None); db.execute('BEGIN EXCLUSIVE'); open('\(ready)', 'w').close(); time.sleep(30)",
            ]
            try holder.run()
            defer {
                // SIGKILL: Foundation.Process leaves the test runner's signal mask on the child, where SIGTERM can be blocked.
                kill(holder.processIdentifier, SIGKILL)
                holder.waitUntilExit()
            }
            #expect(h.eventually(10) { FileManager.default.fileExists(atPath: ready) })
            let record = try Self.execJSON(h, type: "entity_ingestion_full")
            #expect(record["failureReason"] == "RETRYABLE_ERROR", "\(record)")
            #expect(record["error"]?.stringValue?.contains("locked") == true)
        }

        // MARK: git-commits

        static func gitInstallation(_ repository: String, output: String) -> HostFixture {
            HostFixture.single(
                handler: ["command": [.string("\(Fixtures.packageRoot)/agents/git-commits/git-commits.sh")], "taskTypes": incrementalAndFull],
                fields: ["repository": .string(repository), "output": .string(output)])
        }

        @Test func gitCommitsFullThenIncremental() throws {
            let dir = TemporaryDirectory()
            let repository = "\(dir.path)/repo"
            let output = "\(dir.path)/out"
            let commit = "git commit -q --allow-empty -m"
            #expect(
                Self.shell("git init -q repo && cd repo && \(commit) 'first' && \(commit) 'second \"quoted\" \\ back' && \(commit) 'third'", in: dir.path) == 0)
            let h = Self.gitInstallation(repository, output: output)

            let full = try Self.execJSON(h, type: "entity_ingestion_full")
            #expect(full["status"] == "success", "\(full)")
            #expect(full["records"] == 3)
            let commits = Self.lines("\(output)/commits.full.jsonl")
            #expect(commits.map { $0["subject"]?.stringValue } == ["first", "second \"quoted\" \\ back", "third"])
            #expect(commits[1]["parents"]?.arrayValue == [commits[0]["sha"]!])

            #expect(try Self.execJSON(h, type: "entity_ingestion_incremental")["records"] == 3)
            let unchanged = try Self.execJSON(h, type: "entity_ingestion_incremental")
            #expect(unchanged["status"] == "success")
            #expect(unchanged["records"] == 0)

            #expect(Self.shell("cd repo && \(commit) 'fourth' && \(commit) 'fifth'", in: dir.path) == 0)
            let changed = try Self.execJSON(h, type: "entity_ingestion_incremental")
            #expect(changed["records"] == 2, "\(changed)")
            let file = try #require(changed["result"]?["file"]?.stringValue)
            #expect(Self.lines("\(output)/\(file)").map { $0["subject"]?.stringValue } == ["fourth", "fifth"])
            let checkpoint = try #require(try h.store().checkpoint(connectionId: "example", taskType: "entity_ingestion_incremental"))
            #expect(checkpoint["commit"] == changed["result"]?["head"])
        }

        @Test func gitCommitsMissingRepositoryIsEntityNotFound() throws {
            let dir = TemporaryDirectory()
            let h = Self.gitInstallation("\(dir.path)/nowhere", output: "\(dir.path)/out")
            let record = try Self.execJSON(h, type: "entity_ingestion_full")
            #expect(record["failureReason"] == "ENTITY_NOT_FOUND")
            #expect(record["error"]?.stringValue?.contains("does not exist") == true)
        }

        // MARK: output-freshness (nagios)

        @Test func outputFreshnessReportsNagiosStates() throws {
            let dir = TemporaryDirectory()
            let watched = "\(dir.path)/watched"
            let h = HostFixture.single(
                handler: [
                    "command": [.string("\(Fixtures.packageRoot)/agents/output-freshness/output-freshness.sh")], "taskTypes": ["health_check"],
                    "output": "nagios",
                ],
                fields: ["path": .string(watched), "warningMinutes": 60, "criticalMinutes": 120], tasks: [["type": "health_check", "every": "10m"]])

            let missing = try Self.execJSON(h, type: "health_check")
            #expect(missing["status"] == "success")
            #expect(missing["result"]?["state"] == "WARNING")

            _ = dir.write("watched/doc.jsonl", "{}")
            let fresh = try Self.execJSON(h, type: "health_check")
            #expect(fresh["result"]?["state"] == "OK", "\(fresh)")
            #expect(fresh["result"]?["perfdata"]?["files"]?["value"] == 1)

            #expect(Self.shell("touch -d '3 hours ago' watched/doc.jsonl", in: dir.path) == 0)
            let stale = try Self.execJSON(h, type: "health_check")
            #expect(stale["status"] == "failure")
            #expect(stale["failureReason"] == "RETRYABLE_ERROR")
            #expect(stale["result"]?["state"] == "CRITICAL")
            #expect(stale["result"]?["perfdata"]?["age"]?["crit"] == 7200)
        }
    }
}
