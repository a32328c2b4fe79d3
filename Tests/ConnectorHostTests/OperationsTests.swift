import Foundation
import Testing

@testable import ConnectorHost

extension HostProcessTests {
    /// What operators see: history commands, alerts, notifications, retention, metrics and secrets,
    /// all on stores filled by real agent runs through the CLI.
    @Suite struct OperationsTests {
        /// Never due during a test: scans start only by `trigger`.
        static let manual: JSONValue = [["type": "entity_ingestion_incremental", "cron": "0 0 1 1 *"]]

        /// An installation whose one connection `c` runs the scripted agent with `fields`.
        func installation(_ host: HostFixture, _ fields: JSONObject = JSONObject(), extra: JSONObject = JSONObject()) -> HostFixture {
            HostFixture(connections: ["c": (self.fields(host, fields), Self.manual)], extra: extra)
        }

        func fields(_ host: HostFixture, _ extra: JSONObject) -> JSONValue {
            var o: JSONObject = ["log": .string(host.log)]
            for m in extra.members { o[m.key] = m.value }
            return .object(o)
        }

        /// Rewrites connection `c`'s fields in place (an UPDATED connection, same state).
        func setFields(_ h: HostFixture, _ host: HostFixture, _ extra: JSONObject) {
            var root = try! JSONParser.parse(String(contentsOfFile: h.config, encoding: .utf8)).objectValue!
            var connections = root["connections"]!.objectValue!
            var c = connections["c"]!.objectValue!
            c["fields"] = fields(host, extra)
            connections["c"] = .object(c)
            root["connections"] = .object(connections)
            h.writeConfig(.object(root))
        }

        /// One scan of `c` now.
        @discardableResult
        func scan(_ h: HostFixture, sourceLocation: SourceLocation = #_sourceLocation) -> HostFixture.Result {
            let queued = h.run(["trigger", "c"], sourceLocation: sourceLocation)
            #expect(queued.status == 0, "\(queued.stderr)", sourceLocation: sourceLocation)
            return h.run(["run", "--max-wait", "5"], sourceLocation: sourceLocation)
        }

        func openRules(_ h: HostFixture) throws -> Set<String> {
            Set(try h.store().alerts(includeResolved: false, limit: 100).map(\.rule.rawValue))
        }

        @Test func historyCommandsShowTablesAndJSON() throws {
            let host = HostFixture()
            let h = installation(host, ["children": ["root": ["ok", "bad"]], "outcomes": ["bad": ["NON_RETRYABLE_ERROR"]], "records": 3])
            #expect(scan(h).status == 1)

            let runs = try JSONParser.parse(h.run(["runs", "--json"]).stdout)
            #expect(runs.arrayValue?.count == 3)
            #expect(runs.arrayValue?.first?["records"] == 3)
            let failures = try JSONParser.parse(h.run(["runs", "--status", "failure", "--json"]).stdout).arrayValue ?? []
            #expect(failures.count == 1)
            #expect(failures.first?["failureReason"] == "NON_RETRYABLE_ERROR")
            #expect(try JSONParser.parse(h.run(["runs", "--connection", "nope", "--json"]).stdout) == [])
            #expect(try JSONParser.parse(h.run(["runs", "--limit", "1", "--since", "1h", "--json"]).stdout).arrayValue?.count == 1)
            let table = h.run(["runs"]).stdout
            #expect(table.hasPrefix("TIME"))
            #expect(table.contains("NON_RETRYABLE_ERROR"))
            #expect(h.run(["runs", "--status", "broken"]).status == 64)

            let id = try #require(failures.first?["taskExecutionId"]?.stringValue)
            let shown = h.run(["runs", "show", id])
            #expect(shown.status == 0)
            #expect(shown.stdout.contains("error       scripted NON_RETRYABLE_ERROR"), "\(shown.stdout)")
            #expect(try JSONParser.parse(h.run(["runs", "show", id, "--json"]).stdout)["taskExecutionId"] == .string(id))
            #expect(h.run(["runs", "show", "no-such-id"]).status == 1)

            let scans = try JSONParser.parse(h.run(["scans", "--json"]).stdout).arrayValue ?? []
            #expect(scans.count == 1)
            #expect(scans.first?["status"] == "failure")
            #expect(scans.first?["tasks"] == 3)
            let scanId = try #require(scans.first?["scanId"]?.stringValue)
            let tree = try JSONParser.parse(h.run(["scans", "show", scanId, "--json"]).stdout)
            #expect(tree["tasks"]?["succeeded"] == 2)
            #expect(tree["tasks"]?["failed"] == 1)
            #expect(tree["failures"]?.arrayValue?.count == 1)
            #expect(tree["slowest"]?.arrayValue?.count == 3)
            #expect(h.run(["scans", "show", scanId]).stdout.contains("failures:"))

            let status = try JSONParser.parse(h.run(["status", "--json"]).stdout)
            let c = try #require(status["connections"]?.arrayValue?.first)
            #expect(c["connectionId"] == "c")
            #expect(c["state"] == "active")
            #expect(c["lastScan"]?["status"] == "failure")
            #expect(c["successRate24h"]?.doubleValue.map { abs($0 - 2.0 / 3.0) < 0.01 } == true)
            #expect(c["openAlerts"]?.intValue ?? 0 >= 1)
            #expect(status["host"]?["queueDepth"] == 0)
            #expect(status["host"]?["stateFile"] == .string(h.state))
            #expect(h.run(["status"]).stdout.contains("CONNECTION"))
        }

        @Test func everyAlertRuleFiresAndResolves() throws {
            let host = HostFixture()
            let h = installation(host, ["records": 10, "schema": "v1"], extra: ["retry": ["maxAttempts": 1]])
            for _ in 0..<5 { scan(h) }
            #expect(try openRules(h).isEmpty, "a healthy history raises nothing")

            // Records: down more than 50 % against the median, then zero, then back.
            setFields(h, host, ["records": 2, "schema": "v1"])
            scan(h)
            #expect(try openRules(h) == ["records_dropped"])
            setFields(h, host, ["records": 0, "schema": "v1"])
            scan(h)
            #expect(try openRules(h) == ["records_dropped", "zero_records"])
            setFields(h, host, ["records": 10, "schema": "v1"])
            scan(h)
            #expect(try openRules(h).isEmpty)

            // Schema drift, resolved when the next scan keeps the new schema.
            setFields(h, host, ["records": 10, "schema": "v2"])
            scan(h)
            #expect(try openRules(h) == ["schema_drift"])
            scan(h)
            #expect(try openRules(h).isEmpty)

            // Slow: over 2× the p95 of the successful scans before it (and over a second).
            setFields(h, host, ["records": 10, "schema": "v2", "sleep": .number("1.5")])
            scan(h)
            #expect(try openRules(h) == ["slow_scan"])
            setFields(h, host, ["records": 10, "schema": "v2"])
            scan(h)
            #expect(try openRules(h).isEmpty)

            // A failed scan: scan_failed, error rate, and (maxAttempts 1) retries exhausted.
            setFields(h, host, ["records": 10, "schema": "v2", "outcomes": ["root": ["RETRYABLE_ERROR"]]])
            scan(h)
            #expect(try openRules(h) == ["scan_failed", "error_rate", "retry_limit_exceeded"])
            setFields(h, host, ["records": 10, "schema": "v2"])
            scan(h)
            #expect(try openRules(h).isEmpty)

            // Auth failure: needs re-auth until `resume`.
            setFields(h, host, ["records": 10, "schema": "v2", "outcomes": ["root": ["AUTH_TOKEN_REVOKED"]]])
            scan(h)
            #expect(try openRules(h).contains("needs_reauth"))
            #expect(h.run(["resume", "c"]).status == 0)
            #expect(!(try openRules(h).contains("needs_reauth")))

            let all = try JSONParser.parse(h.run(["alerts", "--all", "--json"]).stdout).arrayValue ?? []
            #expect(Set(all.compactMap { $0["rule"]?.stringValue }) == Set(AlertRule.allCases.map(\.rawValue)), "every rule fired once")
            #expect(all.filter { $0["rule"] == "needs_reauth" }.allSatisfy { $0["state"] == "resolved" })
            #expect(h.run(["alerts"]).stdout.contains("scan_failed"), "the failed scan's alert is open until a scan succeeds")
        }

        @Test func notifierGetsEachOpeningAndResolutionOnce() throws {
            let host = HostFixture()
            let sent = "\(host.directory.path)/sent.jsonl"
            let notify: JSONValue = ["command": [.string("\(Fixtures.packageRoot)/agents/notify/file-notifier.sh")], "env": ["NOTIFY_FILE": .string(sent)]]
            let h = installation(host, ["outcomes": ["root": ["NON_RETRYABLE_ERROR"]]], extra: ["notify": notify])
            scan(h)
            scan(h)
            setFields(h, host, [:])
            scan(h)
            let lines = try String(contentsOfFile: sent, encoding: .utf8).split(separator: "\n").map { try JSONParser.parse(String($0)) }
            let events = lines.map { "\($0["event"]?.stringValue ?? "")/\($0["alert"]?["rule"]?.stringValue ?? "")" }.sorted()
            #expect(events == ["opened/error_rate", "opened/scan_failed", "resolved/error_rate", "resolved/scan_failed"], "\(events)")
            #expect(lines.first?["text"]?.stringValue?.hasPrefix("[ALERT] ") == true)
            #expect(try h.store().pendingNotifications(maxAttempts: 5).isEmpty)
        }

        @Test func failingOrHangingNotifierNeverStopsTheHost() throws {
            let host = HostFixture()
            let failing = host.directory.write("fail.sh", "#!/bin/sh\ncat > /dev/null\necho 'webhook said 500' >&2\nexit 1\n", executable: true)
            let hanging = host.directory.write("hang.sh", "#!/bin/sh\nsleep 30\n", executable: true)
            let h = installation(host, ["outcomes": ["root": ["NON_RETRYABLE_ERROR"]]], extra: ["notify": ["command": [.string(failing)]]])
            let result = scan(h)
            #expect(result.status == 1, "the task's failure, not the notifier's")
            #expect(result.stderr.contains("notifier exited with code 1"), "\(result.stderr)")
            #expect(result.stderr.contains("webhook said 500"))
            #expect(try h.store().pendingNotifications(maxAttempts: 5).count == 2, "kept for the next try")

            var root = try JSONParser.parse(String(contentsOfFile: h.config, encoding: .utf8)).objectValue!
            root["notify"] = ["command": [.string(hanging)], "timeoutSeconds": .number("0.5")]
            h.writeConfig(.object(root))
            let started = Date()
            let hung = h.run(["run"])
            #expect(Date().timeIntervalSince(started) < 10)
            #expect(hung.stderr.contains("notifier timed out"), "\(hung.stderr)")

            // A working notifier later delivers what the others could not.
            let sent = "\(host.directory.path)/sent.jsonl"
            root["notify"] = ["command": [.string("\(Fixtures.packageRoot)/agents/notify/file-notifier.sh")], "env": ["NOTIFY_FILE": .string(sent)]]
            h.writeConfig(.object(root))
            #expect(h.run(["run"]).status == 0)
            #expect(try String(contentsOfFile: sent, encoding: .utf8).split(separator: "\n").count == 2)
        }

        @Test func retentionKeepsEachTasksLastExecutionAndOpenAlerts() throws {
            let host = HostFixture()
            let h = installation(host, ["children": ["root": ["a", "b"]], "outcomes": ["a": ["NON_RETRYABLE_ERROR"]]])
            scan(h)
            scan(h)
            #expect(try h.store().executions(ExecutionFilter(limit: 100)).count == 6)
            // Age everything but the newest scan by 40 days.
            let store = try h.store()
            let newest = try #require(store.scans(connectionId: "c", limit: 1).first)
            let old = 40 * 86400.0
            try store.locked { (db) throws(StoreError) in
                try db.run("UPDATE executions SET started_at = started_at - ? WHERE scan_id <> ?", .real(old), .text(newest.id))
                try db.run("UPDATE scans SET started_at = started_at - ?, ended_at = ended_at - ? WHERE id <> ?", .real(old), .real(old), .text(newest.id))
                try db.run("UPDATE alerts SET opened_at = opened_at - ?", .real(old))
            }
            #expect(h.run(["prune", "--older-than", "41d"]).stdout.contains("0 execution(s), 0 scan(s)"), "nothing is older than 41 days")
            let pruned = h.run(["prune"])
            #expect(pruned.stdout.contains("3 execution(s), 1 scan(s), 2 task(s)"), "\(pruned.stdout)")
            let left = try store.executions(ExecutionFilter(limit: 100))
            #expect(left.count == 3)
            #expect(Set(left.map(\.scanId)) == [newest.id])
            #expect(try store.alerts(includeResolved: false, limit: 10).count == 2, "open alerts stay")
            #expect(try store.scans(connectionId: "c", limit: 10).map(\.id) == [newest.id])
        }

        @Test func secretValuesNeverLeaveTheHost() throws {
            let secret = "s3cr3t-\(UUID().uuidString.prefix(8))"
            let host = HostFixture()
            let h = installation(host, ["leak": "API_TOKEN", "apiKey": "typed-into-fields-by-mistake"], extra: ["metrics": ["textfile": .string("\(host.directory.path)/metrics.prom")]])
            var root = try JSONParser.parse(String(contentsOfFile: h.config, encoding: .utf8)).objectValue!
            var connections = root["connections"]!.objectValue!
            var c = connections["c"]!.objectValue!
            c["secrets"] = ["API_TOKEN": ["env": "CH_TEST_SECRET"]]
            connections["c"] = .object(c)
            root["connections"] = .object(connections)
            h.writeConfig(.object(root))
            #expect(h.run(["trigger", "c"]).status == 0)
            let result = h.run(["run", "--log-level", "debug"], environment: ["CH_TEST_SECRET": secret])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("the secret is ***"), "the agent's stderr reaches the log, redacted")
            #expect(!result.stderr.contains(secret))
            // A changed connection's fields are logged at debug level, with secret-looking ones masked.
            setFields(h, host, ["leak": "API_TOKEN", "apiKey": "typed-into-fields-by-mistake", "password": ["db": "hunter22"]])
            let updated = h.run(["run", "--log-level", "debug"], environment: ["CH_TEST_SECRET": secret])
            #expect(updated.stderr.contains("c: connection UPDATED"), "\(updated.stderr)")
            #expect(updated.stderr.contains("\"apiKey\":\"***\""), "\(updated.stderr)")
            #expect(updated.stderr.contains("\"password\":\"***\""))
            #expect(!updated.stderr.contains("typed-into-fields-by-mistake"))
            #expect(!updated.stderr.contains("hunter22"))
            #expect(!result.stdout.contains(secret))
            let record = try #require(try h.store().recentExecutions(limit: 1).first)
            #expect(record.stderrTail.contains("***"))
            #expect(record.result?["token"] == "***")
            // The raw bytes of every file the host wrote: state (with its WAL), payloads, metrics.
            var files: [String] = []
            let enumerator = FileManager.default.enumerator(atPath: "\(h.directory.path)/state")
            while let entry = enumerator?.nextObject() as? String { files.append("\(h.directory.path)/state/\(entry)") }
            files.append("\(host.directory.path)/metrics.prom")
            // The host checkpoints the WAL into the main file when it closes; a WAL still there is read too.
            #expect(files.contains { $0.hasSuffix("state.sqlite") })
            for file in files {
                guard let data = FileManager.default.contents(atPath: file) else { continue }
                #expect(data.range(of: Data(secret.utf8)) == nil, "the secret is in \(file)")
            }
        }

        @Test func metricsTextfileParsesBack() throws {
            let host = HostFixture()
            let file = "\(host.directory.path)/m/connector_host.prom"
            let h = installation(host, ["children": ["root": ["a", "b"]], "outcomes": ["b": ["ENTITY_NOT_FOUND"]], "records": 4], extra: ["metrics": ["textfile": .string(file)]])
            scan(h)
            scan(h)
            var samples: [String: Double] = [:]
            var types: [String: String] = [:]
            for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
                if line.hasPrefix("# TYPE ") {
                    let parts = line.split(separator: " ")
                    types[String(parts[2])] = String(parts[3])
                    continue
                }
                if line.hasPrefix("#") { continue }
                let space = try #require(line.lastIndex(of: " "))
                samples[String(line[..<space])] = Double(line[line.index(after: space)...])
            }
            let series = "connection=\"c\",type=\"entity_ingestion_incremental\""
            #expect(samples["connector_host_task_executions_total{connection=\"c\",reason=\"\",status=\"success\",type=\"entity_ingestion_incremental\"}"] == 4)
            #expect(samples["connector_host_task_executions_total{connection=\"c\",reason=\"ENTITY_NOT_FOUND\",status=\"failure\",type=\"entity_ingestion_incremental\"}"] == 2)
            #expect(samples["connector_host_task_duration_seconds_count{\(series)}"] == 6)
            #expect(samples["connector_host_task_duration_seconds_bucket{\(series),le=\"+Inf\"}"] == 6)
            #expect(samples["connector_host_records_total{\(series)}"] == 24)
            #expect((samples["connector_host_last_success_timestamp_seconds{\(series)}"] ?? 0) > Date().timeIntervalSince1970 - 60)
            #expect(samples["connector_host_queue_depth"] == 0)
            #expect(samples["connector_host_open_alerts"] == 2)
            #expect(types["connector_host_task_duration_seconds"] == "histogram")
            #expect(types["connector_host_task_executions_total"] == "counter")
            // Buckets are cumulative.
            let buckets = MetricsTextfile.durationBuckets.map { samples["connector_host_task_duration_seconds_bucket{\(series),le=\"\(MetricLabels.number($0))\"}"] ?? -1 }
            #expect(zip(buckets, buckets.dropFirst()).allSatisfy { $0 <= $1 })
        }
    }
}
