import Foundation
import Testing

@testable import ConnectorHost

extension HostProcessTests {
    /// The SQLite store under several processes and redelivery.
    @Suite struct StoreTests {
        static let incremental: JSONValue = [["type": "entity_ingestion_incremental", "every": "1h"]]

        /// Several processes opening a state file that does not exist yet: each must see one schema
        /// and one app id, and none may fail (the migration is applied once, under the write lock).
        @Test func processesOpeningAFreshStateTogetherAllSucceed() throws {
            for _ in 0..<3 {
                let host = HostFixture()
                let h = HostFixture(connections: ["c": (.object(["log": .string(host.log)]), Self.incremental)])
                let triggers = (0..<6).map { _ in h.start(["trigger", "c"]) }
                let results = triggers.map { $0.wait() }
                #expect(results.allSatisfy { $0.status == 0 || $0.status == 75 }, "\(results.map { "\($0.status): \($0.stderr)" })")
                #expect(results.filter { $0.status == 0 }.count == 1, "one root task queued; the others see its open scan")
                let store = try h.store()
                #expect(try store.queueDepth() == 1)
                let ids = try Set((0..<3).map { _ in try SQLStore(path: h.state).appId })
                #expect(ids.count == 1)
            }
        }

        /// Migration 5 rebuilds the counters table keyed by labels first: a state written by the
        /// previous schema keeps every counter, and counting goes on from where it was.
        @Test func countersSurviveTheMoveToALabelsFirstKey() throws {
            let directory = TemporaryDirectory()
            let path = directory.path + "/v4.sqlite"
            let total = "connector_host_task_executions_total"
            let labels = "connection=\"c\",type=\"t\",status=\"success\""
            do {
                let old = try SQLiteDatabase(path: path)
                for migration in Schema.sqlite.prefix(4) { try old.execute(migration) }
                try old.execute("PRAGMA user_version = 4")
                try old.execute("INSERT INTO metric_counters (name, labels, value) VALUES ('\(total)', '\(labels)', 41), ('other', 'x=\"1\"', 7)")
            }
            let store = try SQLStore(path: path)
            try store.transaction { (db) throws(StoreError) in try SQLStore.add(db, [(name: total, labels: labels, amount: 1)]) }
            let samples = try store.metricSamples()
            #expect(samples.map(\.name) == ["connector_host_task_executions_total", "other"])
            #expect(samples.map(\.value) == [42, 7])
            let version = try SQLiteDatabase(path: path).firstRow("PRAGMA user_version", []) { $0.int(0) }
            #expect(version == Schema.sqlite.count)
        }

        /// Metric increments wait in memory (`CounterBuffer`) but are exact whenever read: every
        /// committed execution counts once, one whose transaction rolled back not at all, and a
        /// store released writes what it held, so another process sees the same totals.
        @Test func bufferedCountersAreExactWhenReadAndWrittenWhenTheStoreGoes() throws {
            let directory = TemporaryDirectory()
            let path = directory.path + "/state.sqlite"
            let total = "connector_host_task_executions_total"
            func record(_ id: String) -> TaskRecord {
                TaskRecord(
                    taskId: "t", taskExecutionId: id, scanId: "s", parentTaskId: nil, connectionId: "c", handler: "h", type: "t", trigger: .manual, status: .success,
                    failureReason: nil, exitCode: 0, signal: nil, timedOut: false, startedAt: Date(), durationMs: 5, attempt: 1, result: nil, error: nil, stderrTail: "")
            }
            func executions(_ samples: [MetricSample]) -> Double { samples.filter { $0.name == total }.reduce(0) { $0 + $1.value } }
            do {
                let store = try SQLStore(path: path)
                for i in 0..<3 { try store.recordExecution(record("e\(i)")) }
                // The same execution id again: the insert fails and its transaction rolls back.
                #expect(throws: StoreError.self) { try store.recordExecution(record("e0")) }
                let reader = try SQLStore(path: path)
                #expect(executions(try reader.metricSamples()) == 0, "not written yet: held for up to \(CounterBuffer.maxDelaySeconds) s")
                #expect(executions(try store.metricSamples()) == 3)
                try store.recordExecution(record("e3"))
            }
            #expect(executions(try SQLStore(path: path).metricSamples()) == 4, "the released store wrote the increment it held")
        }

        /// An execution adds one row to the duration histogram, the bucket it falls in; the textfile
        /// adds them up into Prometheus's cumulative buckets, on top of the cumulative rows that
        /// hosts before 2026-11 stored (one per bound and `+Inf`), which are kept as they are.
        @Test func histogramRowsAreOnePerExecutionAndRenderCumulativeOverEarlierRows() throws {
            let directory = TemporaryDirectory()
            let store = try SQLStore(path: directory.path + "/state.sqlite")
            let series = "connection=\"c\",type=\"t\""
            let bucket = "connector_host_task_duration_seconds_bucket"
            // Left by an earlier host: 2 executions of 0.3 s (under 0.5 and every bound above).
            try store.transaction { (db) throws(StoreError) in
                var earlier: [CounterBuffer.Count] = [("connector_host_task_duration_seconds_count", series, 2), ("connector_host_task_duration_seconds_sum", series, 0.6)]
                for bound in MetricsTextfile.durationBuckets where bound >= 0.5 { earlier.append((bucket, series + ",le=\"\(MetricLabels.number(bound))\"", 2)) }
                earlier.append((bucket, series + ",le=\"+Inf\"", 2))
                try SQLStore.add(db, earlier)
            }
            func record(_ id: String, ms: Int) -> TaskRecord {
                TaskRecord(
                    taskId: "t", taskExecutionId: id, scanId: "s", parentTaskId: nil, connectionId: "c", handler: "h", type: "t", trigger: .manual, status: .success,
                    failureReason: nil, exitCode: 0, signal: nil, timedOut: false, startedAt: Date(), durationMs: ms, attempt: 1, result: nil, error: nil, stderrTail: "")
            }
            #expect(SQLStore.countsOf(record("x", ms: 5), records: 3).count == 6, "executions, one bucket, sum, count, records, last success")
            // The per-task labels are spelled by hand; they must be the series `MetricLabels.format` names.
            var odd = record("x", ms: 5)
            odd.connectionId = "c\"1\\"
            odd.type = "t\nx"
            odd.status = .failure
            odd.failureReason = .rateLimited
            let labels = Set(SQLStore.countsOf(odd, records: nil).map(\.labels))
            let series2 = MetricLabels.format(["connection": odd.connectionId, "type": odd.type])
            #expect(labels.contains(series2))
            #expect(labels.contains(MetricLabels.format(["connection": odd.connectionId, "type": odd.type, "status": "failure", "reason": "RATE_LIMITED"])))
            #expect(labels.allSatisfy { $0.hasPrefix(series2.components(separatedBy: ",type=")[0]) })
            try store.recordExecution(record("fast", ms: 50))
            try store.recordExecution(record("slow", ms: 7_000))
            try store.recordExecution(record("past every bound", ms: 4_000_000))
            let text = MetricsTextfile.render(try store.metricSamples(), gauges: .init(queueDepth: 0, runningAgents: 0, openAlerts: 0))
            var rendered: [String: Double] = [:]
            for line in text.split(separator: "\n") where line.hasPrefix(bucket) {
                let space = line.lastIndex(of: " ")!
                rendered[String(line[..<space])] = Double(line[line.index(after: space)...])
            }
            func at(_ bound: String) -> Double? { rendered["\(bucket){\(series),le=\"\(bound)\"}"] }
            #expect(at("0.1") == 1)  // fast
            #expect(at("0.5") == 3)  // + the earlier 2
            #expect(at("5") == 3)
            #expect(at("10") == 4)  // + slow
            #expect(at("3600") == 4)
            #expect(at("+Inf") == 5)  // + the one past every bound
            #expect(rendered.count == MetricsTextfile.durationBuckets.count + 1, "one line per bound and +Inf for the one series")
        }

        /// Commits only note the WAL's size; the checkpointer thread copies it into the database
        /// file while the store stays open (SQLite's own automatic checkpoint is off, so without
        /// it the file would not grow until the last connection closed).
        @Test func theWALIsCheckpointedInTheBackgroundWhileTheStoreIsOpen() throws {
            let directory = TemporaryDirectory()
            let path = directory.path + "/state.sqlite"
            let store = try SQLStore(path: path)
            func size(_ file: String) -> Int { (try? FileManager.default.attributesOfItem(atPath: file)[.size] as? Int) ?? 0 }
            let before = size(path)
            // Pages of 4 KiB past the checkpointer's threshold, in small commits like tasks'.
            let threshold = Int(WALCheckpointer.frames)
            try store.transaction { (db) throws(StoreError) in try db.perform("CREATE TABLE filler (data BLOB)", []) }
            for _ in 0..<(threshold + 200) / 20 {
                try store.transaction { (db) throws(StoreError) in
                    for _ in 0..<20 { try db.perform("INSERT INTO filler (data) VALUES (zeroblob(4000))", []) }
                }
            }
            #expect(size(path + "-wal") > threshold * 4096)
            let deadline = Date().addingTimeInterval(10)
            while size(path) < before + threshold * 4096 && Date() < deadline { usleep(10_000) }
            #expect(size(path) >= before + threshold * 4096, "the database file took the WAL's pages: \(before) -> \(size(path)) bytes")
            let rows = try store.transaction { (db) throws(StoreError) in try db.firstRow("SELECT COUNT(*) FROM filler", []) { $0.int(0) } }
            #expect(rows == (threshold + 200) / 20 * 20)
        }

        /// At-least-once: when a parent is delivered again and asks for a child that already
        /// completed, the child is recorded as skipped, not run again (the `completed` short-circuit).
        @Test func redeliveredChildThatCompletedIsSkippedNotRun() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (.object(["log": .string(host.log), "children": ["root": ["x"]]]), Self.incremental)])
            #expect(h.run(["run"]).status == 0)
            #expect(host.executions().map { $0["key"] } == ["root", "x"])
            let store = try h.store()
            let scan = try #require(store.scans(connectionId: "c", limit: 1).first)
            let root = try #require(store.executions(scanId: scan.id).first { $0.parentTaskId == nil })
            let child = try #require(store.executions(scanId: scan.id).first { $0.parentTaskId != nil })

            // The root runs a second time (as after a host crashed between its agent's end and the
            // commit: the next start re-queues it and claims it again) and asks for the same child.
            var again = root
            again.taskExecutionId = DeterministicID.random()
            try store.transaction { (db) throws(StoreError) in try db.run("UPDATE tasks SET state = 'running' WHERE id = ?", .text(root.taskId)) }
            try store.requeueInterrupted(taskId: root.taskId, note: "host crashed", now: Date())
            let owner = TaskOwner(hostPid: getpid(), hostStartTicks: HostIdentity.current.startTicks, hostId: "test/again", machine: HostIdentity.current.machine)
            #expect(try store.claim(taskId: root.taskId, executionId: again.taskExecutionId, owner: owner, now: Date()) != nil)
            var completion = TaskCompletion(record: again, transition: .succeeded)
            completion.children = [NewChild(id: child.taskId, key: "x", taskType: child.type, metadata: ["key": "x"])]
            let result = try store.complete(completion, now: Date())
            #expect(result.childrenAdded == 0)
            #expect(result.duplicatesSkipped == 1)
            let skipped = try store.executions(scanId: scan.id).filter { $0.status == .skipped }
            #expect(skipped.map(\.taskId) == [child.taskId])
            #expect(skipped.first?.error == "already completed (duplicate delivery)")
            #expect(h.run(["run"]).status == 0)
            #expect(host.executions().count == 2, "the completed child did not run again")
        }
    }
}
