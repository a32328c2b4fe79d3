import Foundation
import Testing

@testable import ConnectorHost

/// A lane's payload file, reused from agent to agent: each agent still finds its own payload, whole,
/// at its own name, and nothing is left once the lane ends or after a killed host's next start.
@Suite struct PayloadSlotTests {
    func entries(_ directory: String) -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).sorted()
    }

    /// The file's inode, link count and permission bits.
    func status(_ path: String) -> (inode: UInt64, links: Int, mode: UInt32)? {
        var info = stat()
        return stat(path, &info) == 0 ? (UInt64(info.st_ino), Int(info.st_nlink), UInt32(info.st_mode & 0o777)) : nil
    }

    func contents(_ path: String) throws -> JSONValue {
        try JSONParser.parse(String(contentsOfFile: path, encoding: .utf8))
    }

    @Test func oneFileServesALaneSAgentsEachUnderItsOwnName() throws {
        let directory = TemporaryDirectory()
        let payloads = PayloadFiles(root: directory.path + "/payloads")
        let slot = PayloadSlot(payloads: payloads)
        let long: JSONValue = ["fields": ["text": .string(String(repeating: "a", count: 3000))]]
        let first = try slot.write(long, executionId: "e1")
        #expect(first == directory.path + "/payloads/e1.json")
        #expect(try contents(first) == long)
        let written = try #require(status(first))
        #expect(written.mode == 0o600 && written.links == 2)
        payloads.remove(path: first)
        // Between agents only the lane's hidden spare is there.
        #expect(entries(payloads.root).count == 1 && entries(payloads.root)[0].hasPrefix(PayloadSlot.sparePrefix), "\(entries(payloads.root))")

        // A shorter payload in the same file: nothing of the longer one may trail it.
        let short: JSONValue = ["fields": ["text": "b"]]
        let second = try slot.write(short, executionId: "e2")
        #expect(second == directory.path + "/payloads/e2.json")
        #expect(status(second)?.inode == written.inode, "the lane's file is rewritten, not a new one made")
        #expect(try contents(second) == short)
        payloads.remove(path: second)
        slot.close()
        #expect(entries(payloads.root).isEmpty)
    }

    /// Someone removed the spare (a sweep, an operator): the agent still gets its payload, and the
    /// next one a new spare.
    @Test func aSpareRemovedUnderTheLaneIsReplaced() throws {
        let directory = TemporaryDirectory()
        let payloads = PayloadFiles(root: directory.path + "/payloads")
        let slot = PayloadSlot(payloads: payloads)
        payloads.remove(path: try slot.write(["n": 1], executionId: "e1"))
        for entry in entries(payloads.root) { unlink(payloads.root + "/" + entry) }
        let unlinked = try slot.write(["n": 2], executionId: "e2")
        #expect(try contents(unlinked) == ["n": 2])
        payloads.remove(path: unlinked)
        let third = try slot.write(["n": 3], executionId: "e3")
        #expect(status(third)?.links == 2, "a new spare serves the next agent")
        payloads.remove(path: third)
        slot.close()
        #expect(entries(payloads.root).isEmpty, "closing the slot removes the new spare too")
    }

    /// A killed host leaves its lanes' spares: the next start removes those of processes that are
    /// gone and keeps a live process's (another host's lane on the same directory), on a state
    /// file where every other leftover is swept too.
    @Test func recoveryRemovesSparesOfHostsThatAreGone() throws {
        let directory = TemporaryDirectory()
        let payloads = PayloadFiles(root: directory.path + "/payloads")
        try payloads.makePrivateDirectory(payloads.root)
        let exited = Process()
        exited.executableURL = URL(fileURLWithPath: "/bin/true")
        try exited.run()
        exited.waitUntilExit()
        let initTicks = try #require(ProcFS.stat(1)?.startTicks)
        let gone = "\(PayloadSlot.sparePrefix)\(exited.processIdentifier)-\(initTicks)-x"
        let live = "\(PayloadSlot.sparePrefix)1-\(initTicks)-y"
        let reused = "\(PayloadSlot.sparePrefix)1-\(initTicks + 1)-z"
        for name in [gone, live, reused] { #expect(FileManager.default.createFile(atPath: payloads.root + "/" + name, contents: Data())) }
        #expect(!PayloadSlot.isOrphanedSpare(live))
        #expect(PayloadSlot.isOrphanedSpare(gone))
        #expect(PayloadSlot.isOrphanedSpare(reused), "a pid now running something else does not keep a spare")
        let store = try SQLStore(path: directory.path + "/state.sqlite")
        _ = try Recovery.recover(store: store, payloads: payloads, now: Date())
        #expect(entries(payloads.root) == [live])
    }

    /// Through the CLI: every agent of a pass got a hard-linked payload (the lane's file), and the
    /// directory is empty once `run` has exited: a lane removes its spare before its last report.
    @Test func aPassLeavesNoSpareBehind() throws {
        let scripts = TemporaryDirectory()
        let seen = scripts.path + "/seen.txt"
        let agent = scripts.write(
            "agent.sh", "#!/bin/sh\nstat -c '%h %a' \"$2\" >> '\(seen)'\necho '{\"status\":\"success\"}'\n", executable: true)
        var connections: [String: (fields: JSONValue, tasks: JSONValue)] = [:]
        for i in 0..<6 { connections["c\(i)"] = (.object(JSONObject()), [["type": "entity_ingestion_incremental", "every": "1h"]]) }
        let payloadDirectory = scripts.path + "/payloads"
        let h = HostFixture(connections: connections, extra: ["payloadDirectory": .string(payloadDirectory)], handler: ["command": [.string(agent)]])
        for pass in 0..<3 {
            if pass > 0 { for i in 0..<6 { #expect(h.run(["trigger", "c\(i)"]).status == 0) } }
            let result = h.run(["run"])
            #expect(result.status == 0, "\(result.stderr)")
            #expect(entries(payloadDirectory).isEmpty, "left after run: \(entries(payloadDirectory))")
        }
        let lines = try String(contentsOfFile: seen, encoding: .utf8).split(separator: "\n")
        #expect(lines.count == 18)
        #expect(lines.allSatisfy { $0 == "2 600" }, "\(lines)")
    }
}
