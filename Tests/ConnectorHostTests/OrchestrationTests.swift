import Foundation
import Testing

@testable import ConnectorHost

extension HostProcessTests {
    /// The scheduler through the real CLI: real processes, a real SQLite file, scripted agents.
    @Suite struct OrchestrationTests {
        func fields(_ host: HostFixture, _ extra: JSONObject = JSONObject()) -> JSONValue {
            var o: JSONObject = ["log": .string(host.log)]
            for m in extra.members { o[m.key] = m.value }
            return .object(o)
        }

        static let incremental: JSONValue = [["type": "entity_ingestion_incremental", "every": "1h"]]

        @Test func secondRunRunsNothingThatIsNotDue() throws {
            let c = HostFixture()
            let log = HostFixture(connections: ["a": (fields(c), Self.incremental)])
            let first = log.run(["run"])
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stdout.contains("1 execution(s): 1 succeeded"))
            let second = log.run(["run"])
            #expect(second.status == 0)
            #expect(second.stdout.hasPrefix("nothing was due"))
            #expect(c.executions().count == 1)
        }

        /// More due ticks than one batch (`Scheduler.dueBatchSize`): agents start after the first
        /// batch, the loop opens the rest between its other events, and the pass runs each once.
        @Test func aPassOpensEveryDueTickBeyondTheFirstBatch() throws {
            let count = Scheduler.dueBatchSize + 44
            let scripts = TemporaryDirectory()
            let agent = scripts.path + "/noop.sh"
            try "#!/bin/sh\necho '{\"status\":\"success\"}'\n".write(toFile: agent, atomically: true, encoding: .utf8)
            chmod(agent, 0o755)
            var connections: [String: (fields: JSONValue, tasks: JSONValue)] = [:]
            for i in 0..<count { connections["c\(1000 + i)"] = (.object(JSONObject()), Self.incremental) }
            let h = HostFixture(connections: connections, handler: ["command": [.string(agent)]])
            let first = h.run(["run"])
            #expect(first.status == 0, "\(first.stderr)")
            #expect(first.stdout.contains("\(count) execution(s): \(count) succeeded"), "\(first.stdout.suffix(300))")
            #expect(first.stdout.contains("0 task(s) left queued"))
            #expect(h.run(["run"]).stdout.hasPrefix("nothing was due"))
        }

        /// The scheduler hands a candidate to a lane, whose thread claims it there: a task that
        /// cannot be claimed runs nothing and ends the lane; one that can runs and is committed.
        @Test func aLaneRunsOnlyWhatItClaims() async throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (fields(host), Self.incremental)])
            #expect(h.run(["trigger", "c"]).status == 0)
            let registry = try RegistryLoader.load(file: h.config)
            let store = try h.store()
            let executor = TaskExecutor(
                store: StoreAccess(store), runner: AgentRunner(appId: store.appId, stateDirectory: registry.localDirectory, logger: .silent), logger: .silent)
            let root = try #require(try store.task(id: DeterministicID.rootTaskId(appId: store.appId, connectionId: "c", taskType: "entity_ingestion_incremental")))
            func run(_ task: StoredTask, cancelled: Bool = false) async -> [(Lane.Report, last: Bool)] {
                let lane = Lane(id: 1)
                if cancelled { lane.cancellation.fire() }
                let claim = ClaimRequest(taskId: task.id, executionId: DeterministicID.random(), owner: .current, options: ClaimOptions())
                executor.startLane(lane, with: Lane.Job(candidate: task, claim: claim, registry: registry))
                var reports: [(Lane.Report, last: Bool)] = []
                repeat { reports.append(await lane.next()) } while reports.last?.last == false
                return reports
            }
            func isNotClaimed(_ reports: [(Lane.Report, last: Bool)]) -> Bool {
                guard reports.count == 1, case .notClaimed = reports[0].0 else { return false }
                return true
            }
            var missing = root
            missing.id = "no-such-task"
            #expect(isNotClaimed(await run(missing)))
            // A host that is stopping does not claim what it has not started.
            #expect(isNotClaimed(await run(root, cancelled: true)))
            #expect(try store.task(id: root.id)?.state == .queued)
            #expect(host.executions().isEmpty)
            let reports = await run(root)
            guard reports.count == 1, case .finished(let finished, _, _) = reports[0].0 else {
                Issue.record("expected one finished report, got \(reports.count)")
                return
            }
            #expect(finished.record.status == .success)
            #expect(finished.completion.closedScan?.status == .success)
            #expect(try store.task(id: root.id)?.state == .succeeded)
            #expect(isNotClaimed(await run(root)), "a finished task is not claimed again")
            #expect(host.executions().count == 1)
        }

        @Test func fanOutWithChildrenCheckpointAndDedupe() throws {
            let host = HostFixture()
            let f: JSONObject = [
                "children": ["root": ["a", "b", "a"], "a": ["a1", "a2"], "b": ["a1"]],
                "checkpoint": ["root": ["cursor": 1]],
            ]
            let h = HostFixture(connections: ["c": (fields(host, f), Self.incremental)])
            let result = h.run(["run"])
            #expect(result.status == 0, "\(result.stderr)")
            // root, a, b, a1 (from a), a2, a1 (from b: a different parent, so a different task)
            let keys = host.executions().map { $0["key"]?.stringValue ?? "" }.sorted()
            #expect(keys == ["a", "a1", "a1", "a2", "b", "root"])
            let store = try h.store()
            let scan = try #require(store.scans(connectionId: "c", limit: 1).first)
            #expect(scan.status == .success)
            #expect(scan.tasks == 6)
            #expect(scan.records == 6)
            #expect(scan.checkpointCommitted)
            #expect(try store.checkpoint(connectionId: "c", taskType: "entity_ingestion_incremental") == ["cursor": 1])
            // Children got their parent's id and metadata; all joined the root's scan.
            let executions = host.executions()
            #expect(Set(executions.map { $0["scanId"]?.stringValue ?? "" }).count == 1)
            #expect(executions.first { $0["key"] == "a2" }?["metadata"] == ["key": "a2"])
            // The next scan gets the checkpoint as persistentTaskMetadata.
            #expect(h.run(["trigger", "c"]).status == 0)
            #expect(h.run(["run"]).status == 0)
            let roots = host.executions().filter { $0["key"] == "root" }
            #expect(roots.last?["persistent"] == ["cursor": 1])
            #expect(roots.first?["persistent"] == .null)
        }

        @Test func failedParentSchedulesNoChildrenAndItsRetryEmitsTheSameIds() throws {
            let host = HostFixture()
            let f: JSONObject = ["children": ["root": ["x", "y"]], "outcomes": ["root": ["RETRYABLE_ERROR", "success"]]]
            let h = HostFixture(connections: ["c": (fields(host, f), Self.incremental)])
            let result = h.run(["run"])
            #expect(result.status == 1, "an execution failed (then succeeded on retry)")
            let keys = host.executions().map { $0["key"]?.stringValue ?? "" }
            #expect(keys == ["root", "root", "x", "y"] || keys == ["root", "root", "y", "x"])
            let store = try h.store()
            let scan = try #require(store.scans(connectionId: "c", limit: 1).first)
            #expect(scan.tasks == 3, "the failed attempt's children were dropped, the retry's counted once")
            #expect(scan.status == .success)
        }

        @Test func invalidChildFailsTheParentAndSchedulesNone() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (fields(host, ["children": ["root": ["ok", ""]]]), Self.incremental)])
            let result = h.run(["run", "--max-wait", "0"])
            #expect(result.status == 1)
            let store = try h.store()
            let record = try #require(store.recentExecutions(limit: 1).first)
            #expect(record.failureReason == .nonRetryableError)
            #expect(record.error?.contains("key is required and must be a non-empty string") == true, "\(record.error ?? "")")
            #expect(host.executions().map { $0["key"] } == ["root"])
        }

        @Test func rootCheckpointIsKeptAfterAFailedScanAndAdvancedAfterSuccess() throws {
            let host = HostFixture()
            func config(cursor: Int, childOutcome: String) -> JSONValue {
                fields(host, ["children": ["root": ["x"]], "checkpoint": ["root": ["cursor": .int(cursor)]], "outcomes": ["x": [.string(childOutcome)]]])
            }
            let h = HostFixture(connections: ["c": (config(cursor: 1, childOutcome: "success"), Self.incremental)])
            #expect(h.run(["run"]).status == 0)
            let store = try h.store()
            #expect(try store.checkpoint(connectionId: "c", taskType: "entity_ingestion_incremental") == ["cursor": 1])

            let failing = HostFixture(connections: ["c": (config(cursor: 2, childOutcome: "NON_RETRYABLE_ERROR"), Self.incremental)])
            h.adoptConfig(of: failing)
            #expect(h.run(["trigger", "c"]).status == 0)
            #expect(h.run(["run"]).status == 1)
            #expect(try store.checkpoint(connectionId: "c", taskType: "entity_ingestion_incremental") == ["cursor": 1], "a failed scan keeps the old checkpoint")
            #expect(try store.scans(connectionId: "c", limit: 1).first?.status == .failure)

            let fixed = HostFixture(connections: ["c": (config(cursor: 3, childOutcome: "success"), Self.incremental)])
            h.adoptConfig(of: fixed)
            #expect(h.run(["trigger", "c"]).status == 0)
            #expect(h.run(["run"]).status == 0)
            #expect(try store.checkpoint(connectionId: "c", taskType: "entity_ingestion_incremental") == ["cursor": 3])
            let roots = host.executions().filter { $0["key"] == "root" }
            #expect(roots.map { $0["persistent"] ?? .null } == [.null, ["cursor": 1], ["cursor": 1]], "the run after a failed scan covers the gap from the old checkpoint")
            #expect(h.run(["checkpoint", "reset", "c"]).stdout.contains("checkpoint reset"))
            #expect(try store.checkpoint(connectionId: "c", taskType: "entity_ingestion_incremental") == nil)
        }

        @Test func backOffIntervalsGrowAndAttemptsRunOut() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (fields(host, ["outcomes": ["root": ["RETRYABLE_ERROR"]]]), Self.incremental)])
            let result = h.run(["run"])
            #expect(result.status == 1)
            let runs = host.executions()
            #expect(runs.map { $0["attempt"]?.intValue ?? 0 } == [1, 2, 3, 4, 5], "maxAttempts 5 counts the first")
            let starts = runs.compactMap { $0["start"]?.doubleValue }
            let gaps = zip(starts.dropFirst(), starts).map { $0 - $1 }
            for (gap, expected) in zip(gaps, [0.2, 0.4, 0.8, 1.6]) {
                #expect(gap >= expected, "gap \(gap) shorter than the back-off \(expected)")
                #expect(gap < expected + 2, "gap \(gap) far longer than the back-off \(expected)")
            }
            let task = try #require(try h.store().runningTasks().isEmpty ? try h.store().task(id: DeterministicID.rootTaskId(appId: h.store().appId, connectionId: "c", taskType: "entity_ingestion_incremental")) : nil)
            #expect(task.state == .failed)
            #expect(result.stdout.contains("failed RETRY_LIMIT_EXCEEDED"), "\(result.stdout)")
        }

        @Test func rateLimitSnoozesWithoutUsingAttempts() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (fields(host, ["outcomes": ["root": ["rate:0.3", "rate:0.3", "success"]]]), Self.incremental)])
            // The pass waits for snoozes due within 1 s of its start (about 0.4 s apart), then leaves
            // the task snoozed for the next pass.
            let result = h.run(["run", "--max-wait", "1"])
            #expect(result.status == 1)
            let runs = host.executions()
            #expect(runs.count >= 2 && runs.count <= 4, "\(runs.count) executions")
            #expect(try h.store().queueDepth() == 1, "the snoozed task stays queued")
            // The payload's attempt stays 1: the scripted outcome list is indexed by attempt, so
            // "success" (the third) is never reached while rate limits keep the attempt at 1.
            #expect(runs.allSatisfy { $0["attempt"]?.intValue == 1 })
            let starts = runs.compactMap { $0["start"]?.doubleValue }
            #expect(starts.count >= 2 && starts[1] - starts[0] >= 0.3)
            let capped = HostFixture(connections: ["c": (fields(host, ["outcomes": ["root": ["rate:1"]]]), Self.incremental)], extra: ["retry": ["maxRateLimitedSeconds": 1]])
            #expect(capped.run(["run"]).stdout.contains("RETRY_LIMIT_EXCEEDED"))
        }

        @Test func authFailurePausesTheConnectionUntilResume() throws {
            let host = HostFixture()
            let every1s: JSONValue = [["type": "entity_ingestion_incremental", "every": "1s"]]
            let h = HostFixture(connections: ["c": (fields(host, ["outcomes": ["root": ["UNAUTHORIZED"]]]), every1s)])
            #expect(h.run(["run"]).status == 1)
            #expect(host.executions().count == 1, "auth failures are not retried")
            let store = try h.store()
            #expect(try store.connections(includeDeleted: false).first?.state == .needsReauth)
            usleep(1_200_000)
            let paused = h.run(["run"])
            #expect(paused.stdout.hasPrefix("nothing was due"), "a paused connection's schedule does not fire")
            let resumed = h.run(["resume", "c"])
            #expect(resumed.stdout.contains("resumed"))
            #expect(h.run(["run"]).status == 1)
            #expect(host.executions().count == 2)
        }

        @Test func overlappingTickIsSkipped() throws {
            let host = HostFixture()
            // The child is rate limited far into the future, so the scan stays open.
            let h = HostFixture(connections: ["c": (fields(host, ["children": ["root": ["slow"]], "outcomes": ["slow": ["rate:600"]]]), [["type": "entity_ingestion_incremental", "every": "1s"]])])
            _ = h.run(["run", "--max-wait", "0"])
            usleep(1_100_000)
            let second = h.run(["run", "--max-wait", "0"])
            #expect(second.stdout.contains("1 tick(s) skipped (previous scan still running)"), "\(second.stdout)")
            let skipped = try h.store().recentExecutions(limit: 10).filter { $0.status == .skipped }
            #expect(skipped.count == 1)
            #expect(skipped.first?.error?.hasPrefix("previous scan still running") == true)
            #expect(h.run(["trigger", "c"]).status == 75)
        }

        @Test func concurrencyLimitsHold() throws {
            let host = HostFixture()
            let many: JSONObject = ["children": ["root": ["1", "2", "3", "4", "5", "6"]], "sleep": .number("0.3")]
            let h = HostFixture(
                connections: ["a": (fields(host, many), Self.incremental), "b": (fields(host, many), Self.incremental)],
                extra: ["concurrency": 3])
            // Per-connection limit on "a" only.
            var config = try JSONParser.parse(String(contentsOfFile: h.config, encoding: .utf8)).objectValue!
            var connections = config["connections"]!.objectValue!
            var a = connections["a"]!.objectValue!
            a["maxConcurrency"] = 1
            connections["a"] = .object(a)
            config["connections"] = .object(connections)
            h.writeConfig(.object(config))
            #expect(h.run(["run"]).status == 0)
            let runs = host.executions()
            #expect(runs.count == 14)
            func maxOverlap(_ items: [JSONValue]) -> Int {
                var events: [(time: Double, delta: Int)] = []
                for item in items {
                    events.append((item["start"]?.doubleValue ?? 0, 1))
                    events.append((item["end"]?.doubleValue ?? 0, -1))
                }
                events.sort { a, b in a.time == b.time ? a.delta < b.delta : a.time < b.time }
                var current = 0
                var best = 0
                for e in events {
                    current += e.delta
                    best = max(best, current)
                }
                return best
            }
            #expect(maxOverlap(runs) <= 3, "global concurrency 3")
            #expect(maxOverlap(runs.filter { $0["connection"] == "a" }) == 1, "connection a's maxConcurrency 1")
            #expect(maxOverlap(runs.filter { $0["connection"] == "b" }) >= 2, "b used the remaining slots")
            // Fairness: a's tasks were not all left to the end.
            let order = runs.sorted { $0["start"]!.doubleValue! < $1["start"]!.doubleValue! }.map { $0["connection"]!.stringValue! }
            #expect(order.prefix(7).contains("a"))
        }

        @Test func aTaskReservedBehindALongAgentStartsWhenAnotherSlotFrees() throws {
            // Concurrency 2, three one-task connections. The long agent's lane holds the third
            // task as its next one; when the quick agent's lane stops for want of work, the
            // third is taken back and started there, not left waiting for the long agent.
            let host = HostFixture()
            let h = HostFixture(
                connections: [
                    "a-long": (fields(host, ["sleep": .number("2")]), Self.incremental), "b-quick": (fields(host), Self.incremental),
                    "c-quick": (fields(host), Self.incremental),
                ], extra: ["concurrency": 2])
            #expect(h.run(["run"]).status == 0)
            let runs = Dictionary(uniqueKeysWithValues: host.executions().map { ($0["connection"]!.stringValue!, $0) })
            #expect(runs.count == 3)
            let longEnd = try #require(runs["a-long"]?["end"]?.doubleValue)
            let third = try #require(runs["c-quick"]?["start"]?.doubleValue)
            #expect(third < longEnd, "c-quick started \(third - longEnd)s after the long agent ended")
        }

        @Test func secondInstanceGetsExit75AndWaitLockWaits() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (fields(host, ["sleep": 2]), Self.incremental)])
            let first = h.start(["run"])
            #expect(h.eventually { host.executions().isEmpty && (try? h.store().runningTasks().count) == 1 })
            let second = h.run(["run"])
            #expect(second.status == 75)
            #expect(second.stderr.contains("another connector-host (pid \(first.pid)) holds the state lock"), "\(second.stderr)")
            let waiting = h.run(["run", "--wait-lock", "30"])
            #expect(waiting.status == 0)
            #expect(first.wait().status == 0)
            #expect(host.executions().count == 1, "the waiting pass found nothing due")
        }

        @Test func daemonDrainsOnSIGTERM() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (fields(host, ["sleep": .number("1.5")]), Self.incremental)])
            let daemon = h.start(["daemon"])
            #expect(h.eventually { (try? h.store().runningTasks().count) == 1 })
            kill(daemon.pid, SIGTERM)
            let result = daemon.wait()
            #expect(result.status == 0, "\(result.stderr)")
            #expect(host.executions().count == 1, "the running agent was allowed to finish")
            #expect(try h.store().recentExecutions(limit: 1).first?.status == .success)
        }

        @Test func daemonStopsAgentsAfterGraceAndRequeues() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (fields(host, ["outcomes": ["root": ["hang", "success"]]]), Self.incremental)], extra: ["shutdownGraceSeconds": .number("0.5")])
            let daemon = h.start(["daemon"])
            #expect(h.eventually { (try? h.store().runningTasks().count) == 1 })
            usleep(200_000)
            kill(daemon.pid, SIGTERM)
            let result = daemon.wait()
            #expect(result.status == 0)
            let store = try h.store()
            let task = try #require(try store.task(id: DeterministicID.rootTaskId(appId: store.appId, connectionId: "c", taskType: "entity_ingestion_incremental")))
            #expect(task.state == .queued, "interrupted, not failed")
            #expect(task.attempt == 1)
            #expect(processesOfMarker().isEmpty)
        }

        @Test func hostKilledMidRunIsRecoveredAndTheTaskRunsAgain() throws {
            let host = HostFixture()
            // First attempt hangs (the host dies under it); the re-run succeeds.
            let h = HostFixture(connections: ["c": (fields(host, ["outcomes": ["root": ["hang"]]]), Self.incremental)])
            let first = h.start(["run"])
            #expect(h.eventually { (try? h.store().runningTasks().first?.owner?.agent) != nil })
            let agent = try #require(try h.store().runningTasks().first?.owner?.agent)
            kill(first.pid, SIGKILL)
            _ = first.wait()
            #expect(ProcFS.isSameProcess(agent.pid, startTicks: agent.startTicks), "the orphaned agent is still running before recovery")
            // A per-execution directory as hosts before the flat layout left them, and a stray file:
            // both leftovers, removed at the next start too.
            let payloads = "\(h.directory.path)/state/payloads"
            try FileManager.default.createDirectory(atPath: "\(payloads)/00000000-old-layout", withIntermediateDirectories: true)
            #expect(FileManager.default.createFile(atPath: "\(payloads)/00000000-old-layout/payload.json", contents: Data("{}".utf8)))
            #expect(FileManager.default.createFile(atPath: "\(payloads)/stray.json", contents: Data("{}".utf8)))
            // Same config, but the agent now succeeds.
            let fixed = HostFixture(connections: ["c": (fields(host), Self.incremental)])
            h.adoptConfig(of: fixed)
            let second = h.run(["run"])
            #expect(second.status == 0, "\(second.stderr)")
            #expect(second.stdout.contains("1 task(s) recovered from a stopped host"))
            #expect(h.eventually(5) { !ProcFS.isSameProcess(agent.pid, startTicks: agent.startTicks) }, "recovery killed the orphaned agent")
            let store = try h.store()
            #expect(try store.runningTasks().isEmpty)
            #expect(try store.recentExecutions(limit: 1).first?.status == .success)
            #expect(try store.scans(connectionId: "c", limit: 1).first?.status == .success)
            let leftovers = (try? FileManager.default.contentsOfDirectory(atPath: "\(h.directory.path)/state/payloads")) ?? []
            #expect(leftovers.isEmpty, "the killed host's payload directory is removed at the next start")
        }

        @Test func lifecycleEventsReachALifecycleHandler() throws {
            let host = HostFixture()
            let h = HostFixture(connections: ["c": (fields(host), Self.incremental)], handler: ["lifecycle": true])
            #expect(h.run(["run"]).status == 0)
            var config = try JSONParser.parse(String(contentsOfFile: h.config, encoding: .utf8)).objectValue!
            var connections = config["connections"]!.objectValue!
            var c = connections["c"]!.objectValue!
            c["fields"] = fields(host, ["changed": true])
            connections["c"] = .object(c)
            config["connections"] = .object(connections)
            h.writeConfig(.object(config))
            #expect(h.run(["run"]).status == 0)
            connections["c"] = nil
            config["connections"] = .object(connections)
            h.writeConfig(.object(config))
            #expect(h.run(["run"]).status == 0)
            let triggers = host.executions().map { $0["trigger"]?.stringValue ?? "" }
            #expect(triggers.filter { $0 == "connection_change" }.count == 3, "\(triggers)")
            let events = try h.store().recentExecutions(limit: 20).filter { $0.trigger == .connectionChange }
            #expect(events.count == 3)
            #expect(try h.store().connections(includeDeleted: false).isEmpty)
        }

        func processesOfMarker() -> [Int32] {
            ProcFS.allProcesses().filter { pid in
                guard let s = ProcFS.stat(pid), !s.isZombie else { return false }
                return (ProcFS.readSmallFileBytes("/proc/\(pid)/cmdline", limit: 4096).map { String(decoding: $0, as: UTF8.self) } ?? "").contains("scripted.py")
            }
        }
    }
}
