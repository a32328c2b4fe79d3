#if canImport(Glibc)
import Glibc
#endif
import Foundation
import Testing

@testable import ConnectorHost

extension HostProcessTests {
    /// Several `daemon` processes sharing one PostgreSQL state, as on several machines.
    @Suite struct SharedStateTests {
        static let children = 2000

        /// "<key> <host pid>" lines the agents appended.
        func lines(_ h: HostFixture, log: String) -> [(key: String, host: Int32)] {
            ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { line in
                let parts = line.split(separator: " ")
                guard parts.count == 2, let pid = Int32(parts[1]) else { return nil }
                return (String(parts[0]), pid)
            }
        }

        func scanClosed(_ h: HostFixture) -> ScanSummary? {
            guard let scan = try? h.store().scans(connectionId: "fan", limit: 1).first, scan.status != .running else { return nil }
            return scan
        }

        @Test func threeDaemonsShareAFanOutAndRunEachTaskOnce() throws {
            let probe = HostFixture()
            let h = try fixtureWithLog(probe.log, sleep: 0)
            let daemons = (0..<3).map { _ in h.start(["daemon"]) }
            defer { for d in daemons { kill(d.process.processIdentifier, SIGKILL) } }
            #expect(h.eventually(180) { scanClosed(h) != nil }, "the scan closes")
            let scan = try #require(scanClosed(h))
            #expect(scan.status == .success)
            #expect(scan.tasks == Self.children + 1)
            let ran = lines(h, log: probe.log)
            let keys = ran.map(\.key)
            #expect(keys.count == Self.children + 1, "each task once: \(keys.count) executions")
            #expect(Set(keys).count == Self.children + 1)
            let pids = Set(daemons.map { $0.process.processIdentifier })
            var perHost: [Int32: Int] = [:]
            for line in ran { perHost[line.host, default: 0] += 1 }
            #expect(Set(perHost.keys) == pids, "work spread over all three: \(perHost)")
            #expect(perHost.values.allSatisfy { $0 >= Self.children / 20 }, "each took a real share: \(perHost)")
            let store = try h.store()
            #expect(try store.hosts(since: Date().addingTimeInterval(-600)).filter { pids.contains(Int32($0.pid)) }.count == 3)
        }

        @Test func aKilledDaemonsTasksFinishOnTheOthersAfterItsLeaseExpires() throws {
            let probe = HostFixture()
            let h = try fixtureWithLog(probe.log, sleep: 0.05, leaseSeconds: 2)
            let daemons = (0..<3).map { _ in h.start(["daemon"]) }
            defer { for d in daemons { kill(d.process.processIdentifier, SIGKILL) } }
            let victim = daemons[0].process.processIdentifier
            // Kill the first daemon once it has run some children and holds running ones.
            #expect(h.eventually(120) { lines(h, log: probe.log).filter { $0.host == victim }.count >= 20 })
            let store = try h.store()
            #expect(h.eventually(30) { ((try? store.runningTasks()) ?? []).contains { $0.owner?.hostPid == victim } })
            let held = try store.runningTasks().filter { $0.owner?.hostPid == victim }.map(\.id)
            kill(victim, SIGKILL)
            _ = daemons[0].wait()
            #expect(!held.isEmpty)
            #expect(h.eventually(240) { scanClosed(h) != nil }, "the scan closes without the killed daemon")
            let scan = try #require(scanClosed(h))
            #expect(scan.status == .success, "nothing lost")
            #expect(scan.tasks == Self.children + 1)
            #expect(scan.failed == 0)
            for id in held {
                let task = try #require(try store.task(id: id))
                #expect(task.state == .succeeded, "\(id), held by the killed daemon, finished elsewhere")
            }
            let ran = lines(h, log: probe.log)
            #expect(Set(ran.map(\.key)).count == Self.children + 1, "every key ran")
            let recovered = try store.executions(ExecutionFilter(limit: 100_000, connectionId: "fan")).filter { $0.status == .success }
            #expect(Set(recovered.map(\.taskId)).count == Self.children + 1)
            #expect(try store.hosts(since: Date().addingTimeInterval(-600)).contains { $0.pid == Int(victim) && $0.runningTasks == 0 })
        }

        /// Three daemons' installation: a fan-out of `children` children, each sleeping `sleep` seconds.
        func fixtureWithLog(_ log: String, sleep: Double, leaseSeconds: Double = 30) throws -> HostFixture {
            let database = try PostgresServer.database().raw
            let fields: JSONValue = ["log": .string(log), "children": .int(Self.children), "sleep": .number(String(sleep))]
            return HostFixture(
                connections: ["fan": (fields, [["type": "entity_ingestion_full", "every": "1h"]])],
                extra: ["concurrency": 4, "leaseSeconds": .number(String(leaseSeconds)), "limits": ["maxChildrenPerTask": 100_000]],
                handler: ["command": [.string(Fixtures.agent("shared-fanout.sh"))]], database: database)
        }
    }
}
