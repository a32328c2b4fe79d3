import Foundation
import Testing

@testable import ConnectorHost

/// Paths and builders shared by the tests. Fixture agents are real scripts in Fixtures/agents.
enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures").path
    static func agent(_ name: String) -> String { "\(directory)/agents/\(name)" }
    static let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent().path
}

/// A temporary directory removed when the value is released.
final class TemporaryDirectory: @unchecked Sendable {
    let path: String
    init() {
        let base = FileManager.default.temporaryDirectory.appendingPathComponent("connector-host-tests-\(UUID().uuidString.prefix(8))")
        try! FileManager.default.createDirectory(at: base, withIntermediateDirectories: true)
        path = base.path
    }
    deinit { try? FileManager.default.removeItem(atPath: path) }

    func write(_ name: String, _ text: String, executable: Bool = false) -> String {
        let file = "\(path)/\(name)"
        try! FileManager.default.createDirectory(atPath: (file as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        try! text.write(toFile: file, atomically: true, encoding: .utf8)
        if executable { chmod(file, 0o755) }
        return file
    }
}

func makeHandler(
    _ command: [String], name: String = "test-handler", taskTypes: [String] = ["entity_ingestion_full"], output: Handler.OutputMode = .json,
    timeout: Double = 30, grace: Double = 1, cap: Int = 16 << 20, env: [String: String] = [:], exitCodes: [Int32: ReportedOutcome] = [:],
    workingDirectory: String = "/tmp"
) -> Handler {
    Handler(
        name: name, command: command, taskTypes: taskTypes, output: output, timeoutSeconds: timeout, killGraceSeconds: grace, maxOutputBytes: cap,
        env: env, exitCodes: exitCodes, workingDirectory: workingDirectory, inheritEnvironment: false, lifecycle: false, maxConcurrency: nil,
        retry: nil)
}

func makeConnection(id: String = "conn", handler: String = "test-handler", fields: JSONObject = JSONObject(), secrets: [String: SecretReference] = [:]) -> Connection {
    Connection(id: id, handler: handler, environment: "test", enabled: true, fields: fields, secrets: secrets, tasks: [], maxConcurrency: nil, configJSON: .null)
}

func makeContext(connection: String = "conn", type: String = "entity_ingestion_full") -> TaskContext {
    TaskContext(
        taskId: UUID().uuidString.lowercased(), taskExecutionId: UUID().uuidString.lowercased(), scanId: UUID().uuidString.lowercased(),
        connectionId: connection, taskType: type, trigger: .manual)
}

/// Runs one agent through the real runner, with a state directory of its own.
func runAgent(
    _ handler: Handler, connection: Connection? = nil, context: TaskContext? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
    state: TemporaryDirectory = TemporaryDirectory()
) async -> AgentExecution {
    let runner = AgentRunner(appId: "test-app", stateDirectory: state.path, logger: .silent, hostEnvironment: environment)
    return await runner.run(
        handler: handler, connection: connection ?? makeConnection(handler: handler.name), context: context ?? makeContext(), configDirectory: Fixtures.directory)
}

/// Live (non-zombie) processes whose environment carries this execution's marker.
func processesOfRun(_ executionId: String) -> [Int32] {
    ProcFS.allProcesses().filter { pid in
        guard let stat = ProcFS.stat(pid), !stat.isZombie else { return false }
        return ProcFS.environment(of: pid, contains: "CONNECTOR_HOST_TASK_EXECUTION_ID=\(executionId)")
    }
}

/// Seconds taken by `body`.
func measure<T>(_ body: () async throws -> T) async rethrows -> (T, Double) {
    let start = Date()
    let value = try await body()
    return (value, Date().timeIntervalSince(start))
}
