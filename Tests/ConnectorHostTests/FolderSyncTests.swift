import Foundation
import Testing

@testable import ConnectorHost

extension HostProcessTests {
    /// The folder-sync agent (Swift, on AgentKit) end to end through `run`: a tree three levels deep, folders
    /// larger than a page (each page schedules the next), then incremental runs from the checkpoint.
    @Suite struct FolderSyncTests {
        /// root/           top.txt
        /// root/a/         5 files (3 pages of 2)
        /// root/a/b/       1 file
        /// root/a/b/c/     3 files (2 pages)
        /// root/d/         empty
        func makeTree(_ dir: TemporaryDirectory) -> String {
            _ = dir.write("tree/top.txt", "top")
            for i in 1...5 { _ = dir.write("tree/a/file\(i).txt", "a\(i)") }
            _ = dir.write("tree/a/b/only.txt", "b")
            for i in 1...3 { _ = dir.write("tree/a/b/c/deep\(i).txt", "c\(i)") }
            try! FileManager.default.createDirectory(atPath: "\(dir.path)/tree/d", withIntermediateDirectories: true)
            return "\(dir.path)/tree"
        }

        func installation(tree: String, output: String) -> HostFixture {
            let h = HostFixture()
            let root: JSONValue = [
                "version": 1, "state": .string(h.state), "concurrency": 2,
                "handlers": [
                    "folder-sync": [
                        "command": [.string(HostFixture.built("folder-sync"))],
                        "taskTypes": ["entity_ingestion_full", "entity_ingestion_incremental"],
                    ]
                ],
                "connections": [
                    "tree": [
                        "handler": "folder-sync", "fields": ["root": .string(tree), "output": .string(output), "pageSize": 2],
                        "tasks": [["type": "entity_ingestion_incremental", "every": "1h"]],
                    ]
                ],
            ]
            h.writeConfig(root)
            return h
        }

        /// Every document written, by relative path.
        func documents(_ output: String) -> [String: JSONValue] {
            var all: [String: JSONValue] = [:]
            for name in (try? FileManager.default.contentsOfDirectory(atPath: output)) ?? [] where name.hasSuffix(".jsonl") {
                let text = (try? String(contentsOfFile: "\(output)/\(name)", encoding: .utf8)) ?? ""
                for line in text.split(separator: "\n") {
                    let document = try! JSONParser.parse(String(line))
                    all[document["path"]!.stringValue!] = document
                }
            }
            return all
        }

        @Test func walksThreeLevelsWithPaginationThenSyncsOnlyChanges() throws {
            let dir = TemporaryDirectory()
            let tree = makeTree(dir)
            let output = "\(dir.path)/out"
            let h = installation(tree: tree, output: output)

            let full = h.run(["run"])
            #expect(full.status == 0, "\(full.stderr)")
            let docs = documents(output)
            #expect(
                Set(docs.keys)
                    == ["top.txt", "a/file1.txt", "a/file2.txt", "a/file3.txt", "a/file4.txt", "a/file5.txt", "a/b/only.txt", "a/b/c/deep1.txt", "a/b/c/deep2.txt", "a/b/c/deep3.txt"])
            #expect(docs["a/b/c/deep2.txt"]?["size"] == 2)
            #expect(docs["a/b/c/deep2.txt"]?["sha256"]?.stringValue?.count == 64)
            let store = try h.store()
            let scan = try #require(store.scans(connectionId: "tree", limit: 1).first)
            // root; "." (1 page); a (3 pages); a/b (1); a/b/c (2 pages); d (1)
            #expect(scan.tasks == 1 + 1 + 3 + 1 + 2 + 1, "\(scan)")
            #expect(scan.status == .success)
            #expect(scan.records == 10)
            #expect(scan.checkpointCommitted)
            let checkpoint = try #require(try store.checkpoint(connectionId: "tree", taskType: "entity_ingestion_incremental"))
            #expect(checkpoint["since"]?.doubleValue != nil)

            // Nothing changed: the incremental scan walks the tree and indexes nothing.
            #expect(h.run(["trigger", "tree"]).status == 0)
            #expect(h.run(["run"]).status == 0)
            let unchanged = try #require(store.scans(connectionId: "tree", limit: 1).first)
            #expect(unchanged.id != scan.id)
            #expect(unchanged.status == .success)
            #expect(unchanged.records == 0)

            // One file changed (mtime after the checkpoint), one added in a deep folder.
            usleep(20_000)
            _ = dir.write("tree/a/file3.txt", "changed")
            _ = dir.write("tree/a/b/c/deep4.txt", "new")
            #expect(h.run(["trigger", "tree"]).status == 0)
            #expect(h.run(["run"]).status == 0)
            let changed = try #require(store.scans(connectionId: "tree", limit: 1).first)
            #expect(changed.records == 2, "only the changed and the new file are indexed again")
            #expect(documents(output)["a/file3.txt"]?["size"] == 7)
            #expect(documents(output)["a/b/c/deep4.txt"] != nil)
        }

        @Test func missingRootIsEntityNotFound() throws {
            let dir = TemporaryDirectory()
            let h = installation(tree: "\(dir.path)/nowhere", output: "\(dir.path)/out")
            let result = h.run(["exec", "tree", "--json"])
            #expect(result.status == 1)
            let record = try JSONParser.parse(result.stdout)
            #expect(record["failureReason"] == "ENTITY_NOT_FOUND")
            #expect(record["error"]?.stringValue?.contains("does not exist") == true)
        }
    }
}

extension HostProcessTests.FolderSyncTests {
    /// The agent binary alone, on payloads a test writes: the cases a scan cannot stage on cue.
    func runAgentDirectly(_ payload: JSONValue, in dir: TemporaryDirectory) -> (status: Int32, result: JSONValue?) {
        let path = dir.write("payload-\(UUID().uuidString.prefix(6)).json", payload.serialized())
        let process = Process()
        process.executableURL = URL(fileURLWithPath: HostFixture.built("folder-sync"))
        process.arguments = ["--payload", path]
        let out = Pipe()
        process.standardOutput = out
        process.standardError = FileHandle.nullDevice
        try! process.run()
        let data = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n")
        let result = lines.compactMap { try? JSONParser.parse(String($0)) }.last { $0["type"] == "result" }
        return (process.terminationStatus, result)
    }

    func childPayload(root: String, output: String, folder: String) -> JSONValue {
        [
            "payloadVersion": 1, "taskId": "t", "taskExecutionId": "e", "scanId": "s", "parentTaskId": "p", "connectionId": "tree", "appId": "a",
            "extensionKey": "folder-sync", "environmentId": "default", "attempt": 1,
            "connectorFormFields": ["root": .string(root), "output": .string(output), "pageSize": 10],
            "taskDescription": ["taskType": "entity_ingestion_full", "isRootTask": false, "trigger": "child"],
            "taskMetadata": ["folder": .string(folder), "page": 0, "since": 0, "subfolders": true], "persistentTaskMetadata": nil,
        ]
    }

    @Test func checksumsMatchSha256sum() throws {
        let dir = TemporaryDirectory()
        _ = dir.write("tree/a/empty.txt", "")
        _ = dir.write("tree/a/block.bin", String(repeating: "0123456789abcdef", count: 4100) + "tail")  // several 64-byte blocks and a 64 KiB read boundary
        _ = dir.write("tree/a/55.txt", String(repeating: "x", count: 55))  // the padding edge cases
        _ = dir.write("tree/a/56.txt", String(repeating: "x", count: 56))
        let (status, result) = runAgentDirectly(childPayload(root: "\(dir.path)/tree", output: "\(dir.path)/out", folder: "a"), in: dir)
        #expect(status == 0)
        #expect(result?["status"] == "success")
        let docs = documents("\(dir.path)/out")
        #expect(docs.count == 4)
        for (path, document) in docs {
            let sum = Process()
            sum.executableURL = URL(fileURLWithPath: "/usr/bin/sha256sum")
            sum.arguments = ["\(dir.path)/tree/\(path)"]
            let pipe = Pipe()
            sum.standardOutput = pipe
            try sum.run()
            let expected = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).prefix(64)
            sum.waitUntilExit()
            #expect(document["sha256"]?.stringValue == String(expected), "\(path)")
        }
    }

    @Test func vanishedFolderIsEntityNotFound() {
        let dir = TemporaryDirectory()
        _ = dir.write("tree/top.txt", "x")
        let (status, result) = runAgentDirectly(childPayload(root: "\(dir.path)/tree", output: "\(dir.path)/out", folder: "gone"), in: dir)
        #expect(status == 78)
        #expect(result?["failureReason"] == "ENTITY_NOT_FOUND")
        #expect(result?["message"]?.stringValue?.contains("gone vanished") == true)
    }

    /// Root reads everything, so this runs only as another user (CI's containers run as root).
    @Test(.enabled(if: geteuid() != 0, "root can read any file")) func unreadableFileFailsTheFolderNonRetryable() {
        let dir = TemporaryDirectory()
        let secret = dir.write("tree/a/secret.txt", "x")
        chmod(secret, 0)
        let (_, result) = runAgentDirectly(childPayload(root: "\(dir.path)/tree", output: "\(dir.path)/out", folder: "a"), in: dir)
        #expect(result?["failureReason"] == "NON_RETRYABLE_ERROR")
        #expect(result?["message"]?.stringValue?.contains("a/secret.txt is not readable") == true)
    }

    @Test func badFieldsNameTheField() {
        let dir = TemporaryDirectory()
        var payload = childPayload(root: "\(dir.path)/tree", output: "\(dir.path)/out", folder: "a").objectValue!
        payload["connectorFormFields"] = ["root": .string(dir.path), "pageSize": "ten"]
        let (status, result) = runAgentDirectly(.object(payload), in: dir)
        #expect(status == 78)
        #expect(result?["failureReason"] == "NON_RETRYABLE_ERROR")
        #expect(result?["message"]?.stringValue?.contains("pageSize") == true, "\(String(describing: result))")
    }
}
