import Foundation
import Testing

@testable import ConnectorHost

/// Every suite that drives the real CLI nests here and runs one test at a time. Those tests are
/// synchronous and block a thread of the cooperative pool while a child process runs; on a
/// 2-core machine the pool has 2 threads, so several such suites at once would starve the async
/// runner tests running beside them (and their "stops promptly" checks).
@Suite(.serialized) struct HostProcessTests {}

/// A temporary installation: a plugins.json, its state, and the real `connector-host` binary.
final class HostFixture: @unchecked Sendable {
    let directory = TemporaryDirectory()
    /// A PostgreSQL URL to use as the state instead of a file.
    let database: String?
    var config: String { "\(directory.path)/plugins.json" }
    var state: String { database ?? "\(directory.path)/state/state.sqlite" }
    var log: String { "\(directory.path)/agent-log.jsonl" }

    static var binary: String { built("connector-host") }

    /// A product of this package's build (the host, the folder-sync agent).
    static func built(_ product: String) -> String {
        let candidates = [
            URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(product).path,
            "\(Fixtures.packageRoot)/.build/debug/\(product)",
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) } ?? candidates[1]
    }

    /// An installation with one handler and one connection of it, named `connection`.
    static func single(
        handler: JSONValue, connection: String = "example", fields: JSONValue, tasks: JSONValue = [["type": "entity_ingestion_incremental", "every": "1h"]]
    ) -> HostFixture {
        let h = HostFixture()
        h.writeConfig([
            "version": 1, "state": .string(h.state), "concurrency": 2,
            "handlers": ["example": handler],
            "connections": .object(JSONObject([(connection, ["handler": "example", "fields": fields, "tasks": tasks] as JSONValue)])),
        ])
        return h
    }

    /// A config with the `scripted` handler and the given connections (id → fields, tasks).
    init(
        connections: [String: (fields: JSONValue, tasks: JSONValue)] = [:], extra: JSONObject = JSONObject(), handler: JSONObject = JSONObject(), database: String? = nil
    ) {
        self.database = database
        let base: JSONValue = [
            "command": [.string(Fixtures.agent("scripted.py"))], "taskTypes": ["entity_ingestion_full", "entity_ingestion_incremental"],
            "timeoutSeconds": 30, "killGraceSeconds": 1,
        ]
        var handlerObject = base.objectValue!
        for member in handler.members { handlerObject[member.key] = member.value }
        var connectionsObject = JSONObject()
        for (id, c) in connections.sorted(by: { $0.key < $1.key }) {
            connectionsObject[id] = ["handler": "scripted", "fields": c.fields, "tasks": c.tasks]
        }
        let rootValue: JSONValue = [
            "version": 1, "state": .string(state), "concurrency": 2,
            "retry": ["initialIntervalSeconds": .number("0.2"), "jitter": 0, "maximumIntervalSeconds": 5],
        ]
        var root = rootValue.objectValue!
        root["handlers"] = ["scripted": .object(handlerObject)]
        root["connections"] = .object(connectionsObject)
        for member in extra.members { root[member.key] = member.value }
        writeConfig(.object(root))
    }

    func writeConfig(_ value: JSONValue) {
        try! value.serialized(pretty: true).write(toFile: config, atomically: true, encoding: .utf8)
    }

    /// Takes `other`'s handlers and connections while keeping this installation's state file, as
    /// an operator editing plugins.json in place would.
    func adoptConfig(of other: HostFixture) {
        var root = try! JSONParser.parse(String(contentsOfFile: other.config, encoding: .utf8)).objectValue!
        root["state"] = .string(state)
        writeConfig(.object(root))
    }

    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
    }

    /// Runs the CLI to completion. Output goes to files, never pipes a test could deadlock on.
    @discardableResult
    func run(_ arguments: [String], environment: [String: String] = [:], executable: String? = nil, sourceLocation: SourceLocation = #_sourceLocation) -> Result {
        start(arguments, environment: environment, executable: executable).wait(sourceLocation: sourceLocation)
    }

    final class Running: @unchecked Sendable {
        let process: Process
        let exited: DispatchSemaphore
        let arguments: [String]
        let stdoutPath: String
        let stderrPath: String
        init(process: Process, exited: DispatchSemaphore, arguments: [String], stdoutPath: String, stderrPath: String) {
            self.process = process
            self.exited = exited
            self.arguments = arguments
            self.stdoutPath = stdoutPath
            self.stderrPath = stderrPath
        }
        var pid: Int32 { process.processIdentifier }
        func result() -> Result {
            Result(
                status: process.terminationStatus, stdout: (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "",
                stderr: (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "")
        }
        /// Waits for the CLI to exit. A host that hangs fails the test (and is killed) instead of
        /// stalling the whole suite.
        func wait(seconds: Double = 120, sourceLocation: SourceLocation = #_sourceLocation) -> Result {
            if exited.wait(timeout: .now() + seconds) == .timedOut {
                Issue.record("connector-host \(arguments.joined(separator: " ")) did not exit within \(Int(seconds))s; killed", sourceLocation: sourceLocation)
                kill(pid, SIGKILL)
                exited.wait()
            }
            return result()
        }
    }

    /// Starts the CLI (or `executable`, with `arguments` as they are).
    func start(_ arguments: [String], environment: [String: String] = [:], executable: String? = nil) -> Running {
        let id = UUID().uuidString.prefix(8)
        let out = "\(directory.path)/cli-\(id).out"
        let err = "\(directory.path)/cli-\(id).err"
        _ = FileManager.default.createFile(atPath: out, contents: nil)
        _ = FileManager.default.createFile(atPath: err, contents: nil)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable ?? Self.binary)
        let needsConfig = executable == nil && !arguments.contains("--config") && !["help", "--help"].contains(arguments.first ?? "")
        process.arguments = arguments + (needsConfig ? ["--config", config] : [])
        var env = ProcessInfo.processInfo.environment
        env.removeValue(forKey: "CONNECTOR_HOST_CONFIG")
        env.removeValue(forKey: "CONNECTOR_HOST_STATE")
        for (k, v) in environment { env[k] = v }
        process.environment = env
        process.currentDirectoryURL = URL(fileURLWithPath: directory.path)
        process.standardOutput = FileHandle(forWritingAtPath: out)
        process.standardError = FileHandle(forWritingAtPath: err)
        process.standardInput = FileHandle.nullDevice
        let exited = DispatchSemaphore(value: 0)
        process.terminationHandler = { _ in exited.signal() }
        try! process.run()
        return Running(process: process, exited: exited, arguments: arguments, stdoutPath: out, stderrPath: err)
    }

    /// Lines the scripted agent logged, one per execution.
    func executions() -> [JSONValue] {
        ((try? String(contentsOfFile: log, encoding: .utf8)) ?? "").split(separator: "\n").compactMap { try? JSONParser.parse(String($0)) }
    }

    func store() throws -> SQLStore { database != nil ? try Backend.postgres.open(state) : try SQLStore(path: state) }

    /// Waits for `condition`, checking every 50 ms, for at most `seconds` (test helper only).
    func eventually(_ seconds: Double = 20, _ condition: () -> Bool) -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition() { return true }
            usleep(50_000)
        }
        return condition()
    }
}
