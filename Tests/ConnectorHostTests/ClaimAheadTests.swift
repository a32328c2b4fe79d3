import Foundation
import Testing

@testable import ConnectorHost

extension HostProcessTests {
    /// A lane claims its reserved task while its agent runs (`TaskExecutor.runLane`). These drive
    /// one lane over a real SQLite state with agents that wait for a gate file, so each test
    /// decides when the running agent ends.
    @Suite struct ClaimAheadTests {
        /// Two connections (and `extra` more), each with one queued root; `gate` is the file the
        /// agents wait for.
        struct Setup {
            let scratch = TemporaryDirectory()
            let host: HostFixture
            let store: SQLStore
            let registry: Registry
            let executor: TaskExecutor
            let gate: String
            let first: StoredTask
            let second: StoredTask
            /// The roots of the `extra` connections, in order.
            let others: [StoredTask]

            init(noticeDelay: Double, extra: [String] = []) throws {
                let gate = "\(scratch.path)/gate"
                let agent = scratch.write(
                    "gated.sh",
                    """
                    #!/bin/sh
                    # Waits for the gate file, then succeeds.
                    while [ ! -e "$CONNECTOR_HOST_FIELD_GATE" ]; do sleep 0.01; done
                    echo '{"type":"result","status":"success"}'
                    """, executable: true)
                let tasks: JSONValue = [["type": "entity_ingestion_incremental", "every": "1h"]]
                let names = ["a", "b"] + extra
                host = HostFixture(
                    connections: Dictionary(uniqueKeysWithValues: names.map { ($0, (["gate": JSONValue.string(gate)], tasks)) }), handler: ["command": [.string(agent)]])
                for name in names { #expect(host.run(["trigger", name]).status == 0) }
                registry = try RegistryLoader.load(file: host.config)
                store = try host.store()
                var runner = AgentRunner(appId: store.appId, stateDirectory: registry.localDirectory, logger: .silent)
                runner.spawnNoticeDelay = noticeDelay
                executor = TaskExecutor(store: StoreAccess(store), runner: runner, logger: .silent)
                self.gate = gate
                let appId = store.appId
                first = try #require(try store.task(id: DeterministicID.rootTaskId(appId: appId, connectionId: "a", taskType: "entity_ingestion_incremental")))
                second = try #require(try store.task(id: DeterministicID.rootTaskId(appId: appId, connectionId: "b", taskType: "entity_ingestion_incremental")))
                var others: [StoredTask] = []
                for name in extra {
                    others.append(try #require(try store.task(id: DeterministicID.rootTaskId(appId: appId, connectionId: name, taskType: "entity_ingestion_incremental"))))
                }
                self.others = others
            }

            func job(_ task: StoredTask) -> Lane.Job {
                Lane.Job(candidate: task, claim: ClaimRequest(taskId: task.id, executionId: DeterministicID.random(), owner: .current, options: ClaimOptions()), registry: registry)
            }

            func openGate() { _ = FileManager.default.createFile(atPath: gate, contents: Data()) }

            func state(_ task: StoredTask) -> TaskState? { try? store.task(id: task.id)?.state }

            /// Executions recorded for `task`'s connection.
            func executions(_ task: StoredTask) -> Int { ((try? store.executions(ExecutionFilter(connectionId: task.connectionId))) ?? []).count }
        }

        static func reports(_ lane: Lane) async -> [String] {
            var reports: [String] = []
            while true {
                let (report, last) = await lane.next()
                let text: String
                switch report {
                case .finished(let finished, let slot, _): text = "finished \(slot.prefix(8)) \(finished.record.status.rawValue)"
                case .notClaimed(let slot, _, let stillQueued): text = "notClaimed \(slot.prefix(8))" + (stillQueued ? " queued" : "")
                case .failedToRecord(let error, let slot, _): text = "failedToRecord \(slot.prefix(8)) \(error)"
                }
                reports.append(text + (last ? " (last)" : ""))
                if last { return reports }
            }
        }

        /// The reserved task is claimed while the first agent runs, and starts once it ends.
        @Test func theReservedTaskIsClaimedWhileTheAgentRunsThenRuns() async throws {
            let s = try Setup(noticeDelay: 30)
            let lane = Lane(id: 1)
            #expect(lane.offer(s.job(s.second)))
            s.executor.startLane(lane, with: s.job(s.first))
            #expect(s.host.eventually { s.state(s.second) == .running }, "the reservation was not claimed while the first agent ran")
            #expect(s.state(s.first) == .running)
            #expect(try s.store.task(id: s.second.id)?.owner?.agent == nil, "claimed ahead, not started")
            s.openGate()
            let a = s.first.id.prefix(8)
            let b = s.second.id.prefix(8)
            #expect(await Self.reports(lane) == ["finished \(a) success", "finished \(b) success (last)"])
            #expect(s.state(s.first) == .succeeded && s.state(s.second) == .succeeded)
        }

        /// A host that starts draining while a task is claimed ahead does not start it: it goes
        /// back to the queue with no execution recorded.
        @Test func aClosedLaneGivesBackTheTaskItClaimedAhead() async throws {
            let s = try Setup(noticeDelay: 30)
            let lane = Lane(id: 1)
            #expect(lane.offer(s.job(s.second)))
            s.executor.startLane(lane, with: s.job(s.first))
            #expect(s.host.eventually { s.state(s.second) == .running })
            #expect(lane.close().isEmpty, "the reservation was claimed ahead, so the lane no longer holds it")
            s.openGate()
            let a = s.first.id.prefix(8)
            let b = s.second.id.prefix(8)
            #expect(await Self.reports(lane) == ["notClaimed \(b) queued", "finished \(a) success (last)"])
            #expect(s.state(s.first) == .succeeded)
            #expect(s.state(s.second) == .queued)
            #expect(s.executions(s.second) == 0)
        }

        /// An agent still running when the host notices it (0.1 s) is not a short one: the task
        /// claimed ahead is given back instead of being held from other lanes and hosts.
        @Test func aLongAgentGivesBackTheTaskClaimedAhead() async throws {
            let s = try Setup(noticeDelay: AgentRunner.spawnNoticeDelaySeconds)
            let lane = Lane(id: 1)
            #expect(lane.offer(s.job(s.second)))
            s.executor.startLane(lane, with: s.job(s.first))
            #expect(s.host.eventually { (try? s.store.task(id: s.first.id)?.owner?.agent) != nil }, "the first agent was never noticed")
            #expect(s.host.eventually { s.state(s.second) == .queued }, "the task claimed ahead was held while the first agent ran on")
            s.openGate()
            let a = s.first.id.prefix(8)
            let b = s.second.id.prefix(8)
            #expect(await Self.reports(lane) == ["notClaimed \(b) queued", "finished \(a) success (last)"])
            #expect(s.state(s.second) == .queued)
            #expect(s.executions(s.second) == 0)
        }

        /// A long agent's lane holds one reservation, not two: the newer one goes back to the
        /// queue unrun (reported unclaimed) together with the task claimed ahead, and the one
        /// kept runs once the long agent ends.
        @Test func aLongAgentsLaneKeepsOneReservation() async throws {
            let notice = 2.0
            let s = try Setup(noticeDelay: notice, extra: ["c", "d"])
            let (c, d) = (s.others[0], s.others[1])
            let lane = Lane(id: 1)
            #expect(lane.offer(s.job(s.second)))
            #expect(lane.offer(s.job(c)))
            s.executor.startLane(lane, with: s.job(s.first))
            #expect(s.host.eventually(notice / 2) { s.state(s.second) == .running }, "b was not claimed ahead")
            // As the scheduler does after the claim: the lane is topped up to two reservations.
            #expect(lane.offer(s.job(d)))
            #expect(!lane.wantsWork)
            #expect(s.host.eventually { s.state(s.second) == .queued }, "the task claimed ahead was held while the first agent ran on")
            #expect(!lane.offer(s.job(d)), "one reservation while the agent is long")
            s.openGate()
            let (ia, ib, ic, id) = (s.first.id.prefix(8), s.second.id.prefix(8), c.id.prefix(8), d.id.prefix(8))
            #expect(await Self.reports(lane) == ["notClaimed \(id) queued", "notClaimed \(ib) queued", "finished \(ia) success", "finished \(ic) success (last)"])
            #expect(s.state(c) == .succeeded)
            #expect(s.state(d) == .queued && s.executions(d) == 0)
            #expect(s.state(s.second) == .queued && s.executions(s.second) == 0)
        }

        /// A reservation that another claim took first (another host's, on a shared state) is
        /// reported as not queued, so the scheduler keeps trying the candidates it has instead of
        /// reading the whole list again after every lost race.
        @Test func aReservationTakenElsewhereIsReportedAsNotQueued() async throws {
            let s = try Setup(noticeDelay: 30)
            let elsewhere = try s.store.claim(taskId: s.second.id, executionId: DeterministicID.random(), owner: .current, options: ClaimOptions(), now: Date())
            #expect(elsewhere != nil)
            let lane = Lane(id: 1)
            #expect(lane.offer(s.job(s.second)))
            s.executor.startLane(lane, with: s.job(s.first))
            s.openGate()
            let a = s.first.id.prefix(8)
            let b = s.second.id.prefix(8)
            #expect(await Self.reports(lane) == ["notClaimed \(b)", "finished \(a) success (last)"])
            #expect(s.state(s.second) == .running, "still the other claim's")
        }
    }
}
