import Foundation
import Testing

@testable import AgentKit

/// Collects what an agent writes instead of sending it to stdout.
final class Captured: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    lazy var sink = MessageSink { [unowned self] line in
        self.lock.lock()
        self.lines.append(line)
        self.lock.unlock()
    }
    var messages: [JSON] {
        lock.lock()
        defer { lock.unlock() }
        return lines.map { try! JSONDecoder().decode(JSON.self, from: Data($0.utf8)) }
    }
    var result: JSON? { messages.last { $0["type"] == "result" } }
}

func payloadFile(fields: JSON = ["pages": 2], root: Bool = true, metadata: JSON = nil, checkpoint: JSON = nil, type: String = "entity_ingestion_full") -> String {
    let payload: JSON = [
        "payloadVersion": 1, "taskId": "t", "taskExecutionId": "e", "scanId": "s", "parentTaskId": root ? nil : "p", "connectionId": "conn",
        "appId": "a", "extensionKey": "h", "environmentId": "default", "connectorFormFields": fields,
        "taskDescription": ["taskType": .string(type), "isRootTask": .bool(root), "trigger": "manual"], "taskMetadata": metadata,
        "persistentTaskMetadata": checkpoint, "attempt": 1, "deadline": "2026-11-24T13:02:25.154Z",
    ]
    let path = NSTemporaryDirectory() + "agentkit-\(UUID().uuidString).json"
    #expect(FileManager.default.createFile(atPath: path, contents: Data(payload.compactText.utf8)))
    return path
}

struct Pager: Agent {
    struct Fields: Decodable { var pages: Int }
    struct Page: Codable { var page: Int }
    func run(_ payload: Payload, context: AgentContext) async throws -> JSON {
        let fields = try payload.fields(as: Fields.self)
        if payload.isRootTask {
            for page in 0..<fields.pages { try context.child(key: "page:\(page)", metadata: Page(page: page)) }
            try context.checkpoint(["cursor": 7] as JSON)
            context.progress("listed", done: fields.pages, total: fields.pages)
            return ["pages": .number(Double(fields.pages))]
        }
        let page = try #require(try payload.metadata(as: Page.self))
        context.stats(records: 3, bytes: 30, schema: "v1")
        context.log("page \(page.page)", level: .debug)
        return ["page": .number(Double(page.page))]
    }
}

struct Thrower: Agent {
    func run(_ payload: Payload, context: AgentContext) async throws -> JSON {
        switch payload.connectorFormFields["throw"]?.stringValue {
        case "rate": throw AgentError.rateLimited("slow down", retryAfterSeconds: 90)
        case "gone": throw AgentError.entityNotFound("no such folder")
        case "auth": throw AgentError.unauthorized("token refused")
        case "custom": throw Custom()
        default: throw URLError(.timedOut)
        }
    }
    struct Custom: FailureReasonConvertible, CustomStringConvertible {
        var failureReason: FailureReason { .authTokenRevoked }
        var description: String { "revoked upstream" }
    }
}

struct Sleeper: Agent {
    func run(_ payload: Payload, context: AgentContext) async throws -> JSON {
        try await Task.sleep(for: .seconds(30))
        return nil
    }
}

@Suite struct AgentKitTests {
    func run(_ agent: some Agent, _ path: String) async -> (Int32, Captured) {
        let captured = Captured()
        let code = await AgentRuntime.run(agent, sink: captured.sink, arguments: ["agent", "--payload", path], environment: [:], handleSignals: false)
        return (code, captured)
    }

    @Test func rootEmitsChildrenCheckpointAndResult() async {
        let (code, out) = await run(Pager(), payloadFile())
        #expect(code == 0)
        let messages = out.messages
        #expect(messages.filter { $0["type"] == "child" }.map { $0["key"] } == ["page:0", "page:1"])
        #expect(messages.first { $0["type"] == "child" }?["metadata"] == ["page": 0])
        #expect(messages.first { $0["type"] == "checkpoint" }?["metadata"] == ["cursor": 7])
        #expect(messages.first { $0["type"] == "progress" }?["total"] == 2)
        #expect(out.result == ["type": "result", "status": "success", "result": ["pages": 2]])
        // Whole numbers go out as integers: the host's stats and child limits expect them.
        #expect(try! JSON(encoding: ["n": 2] as JSON).compactText == #"{"n":2}"#)
    }

    @Test func childReadsItsMetadataAndReportsStats() async {
        let (code, out) = await run(Pager(), payloadFile(root: false, metadata: ["page": 1]))
        #expect(code == 0)
        #expect(out.messages.first { $0["type"] == "stats" } == ["type": "stats", "records": 3, "bytes": 30, "schema": "v1"])
        #expect(out.messages.first { $0["type"] == "log" }?["level"] == "debug")
        #expect(out.result?["result"] == ["page": 1])
    }

    @Test func thrownErrorsMapToReasonsAndExitCodes() async {
        let cases: [(String, String, Int32)] = [
            ("rate", "RATE_LIMITED", 75), ("gone", "ENTITY_NOT_FOUND", 78), ("auth", "UNAUTHORIZED", 77), ("custom", "AUTH_TOKEN_REVOKED", 77),
            ("other", "RETRYABLE_ERROR", 75),
        ]
        for (kind, reason, exit) in cases {
            let (code, out) = await run(Thrower(), payloadFile(fields: ["throw": .string(kind)]))
            #expect(code == exit, "\(kind)")
            #expect(out.result?["status"] == "failure")
            #expect(out.result?["failureReason"] == .string(reason), "\(kind)")
        }
        let (_, rate) = await run(Thrower(), payloadFile(fields: ["throw": "rate"]))
        #expect(rate.result?["retryAfterSeconds"] == 90)
        let (_, custom) = await run(Thrower(), payloadFile(fields: ["throw": "custom"]))
        #expect(custom.result?["message"] == "revoked upstream")
    }

    @Test func wrongFieldsFailNonRetryableNamingTheField() async {
        let (code, out) = await run(Pager(), payloadFile(fields: ["pages": "two"]))
        #expect(code == 78)
        #expect(out.result?["failureReason"] == "NON_RETRYABLE_ERROR")
        #expect(out.result?["message"]?.stringValue?.contains("\"pages\"") == true, "\(String(describing: out.result))")
        let (_, missing) = await run(Pager(), payloadFile(fields: [:]))
        #expect(missing.result?["message"]?.stringValue?.contains("missing \"pages\"") == true)
    }

    @Test func missingOrBrokenPayloadIsNonRetryable() async {
        let captured = Captured()
        let code = await AgentRuntime.run(Pager(), sink: captured.sink, arguments: ["agent"], environment: [:], handleSignals: false)
        #expect(code == 78)
        #expect(captured.result?["message"]?.stringValue?.contains("no payload") == true)
        let broken = NSTemporaryDirectory() + "agentkit-broken.json"
        #expect(FileManager.default.createFile(atPath: broken, contents: Data("{\"payloadVersion\": 1}".utf8)))
        let (brokenCode, out) = await run(Pager(), broken)
        #expect(brokenCode == 78)
        #expect(out.result?["message"]?.stringValue?.contains("missing") == true)
        // The environment variable works as well as the flag.
        let fromEnvironment = Captured()
        let viaEnvironment = await AgentRuntime.run(
            Pager(), sink: fromEnvironment.sink, arguments: ["agent"], environment: ["CONNECTOR_HOST_PAYLOAD": payloadFile()], handleSignals: false)
        #expect(viaEnvironment == 0)
    }

    @Test func cancellationAfterASignalIsRetryable() {
        let failure = AgentRuntime.classify(CancellationError(), stoppedBySignal: "SIGTERM")
        #expect(failure.reason == .retryable)
        #expect(failure.message.contains("SIGTERM"))
        #expect(AgentRuntime.classify(CancellationError(), stoppedBySignal: nil).reason == .retryable)
    }

    @Test func jsonRoundTripsThroughCodable() throws {
        let value: JSON = ["a": [1, 2.5, "x", true, nil], "b": ["c": "d"]]
        let text = value.compactText
        #expect(text == #"{"a":[1,2.5,"x",true,null],"b":{"c":"d"}}"#)
        #expect(try JSONDecoder().decode(JSON.self, from: Data(text.utf8)) == value)
        struct Typed: Codable, Equatable { var c: String }
        #expect(try value["b"]!.decode(Typed.self) == Typed(c: "d"))
    }
}
