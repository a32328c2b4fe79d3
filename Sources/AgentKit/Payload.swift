import Foundation

/// The task an agent was started for: the payload file the host wrote (PROTOCOL.md, "The payload").
public struct Payload: Sendable, Decodable {
    public struct TaskDescription: Sendable, Decodable {
        public var taskType: String
        public var isRootTask: Bool
        /// `schedule`, `manual`, `child`, `retry` or `connection_change`.
        public var trigger: String
    }

    public var payloadVersion: Int
    public var taskId: String
    public var taskExecutionId: String
    public var scanId: String
    public var parentTaskId: String?
    public var connectionId: String
    public var appId: String
    public var extensionKey: String
    public var environmentId: String
    /// The connection's `fields`; `fields(as:)` decodes them into a struct.
    public var connectorFormFields: JSON
    public var taskDescription: TaskDescription
    /// What the parent attached to this child; `nil` for a root task.
    public var taskMetadata: JSON?
    /// The last committed checkpoint; `nil` when there is none.
    public var persistentTaskMetadata: JSON?
    public var attempt: Int
    public var deadline: String?
    public var connectionEvent: String?

    public var taskType: String { taskDescription.taskType }
    public var isRootTask: Bool { taskDescription.isRootTask }
    /// True for task types ending in `_incremental`, the convention the sample handlers follow.
    public var isIncremental: Bool { taskType.hasSuffix("_incremental") }

    /// The form fields as your own `Decodable` type. A mismatch is the connection's configuration
    /// problem, so it fails the task `NON_RETRYABLE_ERROR` naming the field.
    public func fields<T: Decodable>(as type: T.Type) throws -> T {
        try Self.decode(connectorFormFields, as: type, what: "connection \"\(connectionId)\" fields")
    }

    /// The child's metadata as your own type; `nil` for a root task.
    public func metadata<T: Decodable>(as type: T.Type) throws -> T? {
        guard let metadata = taskMetadata, !metadata.isNull else { return nil }
        return try Self.decode(metadata, as: type, what: "task metadata")
    }

    /// The last committed checkpoint as your own type; `nil` on a first run or after a reset.
    public func checkpoint<T: Decodable>(as type: T.Type) throws -> T? {
        guard let checkpoint = persistentTaskMetadata, !checkpoint.isNull else { return nil }
        return try Self.decode(checkpoint, as: type, what: "checkpoint")
    }

    static func decode<T: Decodable>(_ value: JSON, as type: T.Type, what: String) throws -> T {
        do {
            return try value.decode(type)
        } catch let error as DecodingError {
            throw AgentError.nonRetryable("\(what): \(describe(error))")
        }
    }

    /// "field \"pageSize\": expected Int" rather than DecodingError's debug dump.
    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context) -> String {
            context.codingPath.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .keyNotFound(let key, let context):
            let parent = path(context)
            return "missing \"\(parent.isEmpty ? key.stringValue : parent + "." + key.stringValue)\""
        case .typeMismatch(let type, let context), .valueNotFound(let type, let context):
            return "\"\(path(context))\" should be \(type)"
        case .dataCorrupted(let context):
            return "\"\(path(context))\": \(context.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    /// Reads the payload named by `--payload <path>` or `$CONNECTOR_HOST_PAYLOAD`.
    public static func load(arguments: [String] = CommandLine.arguments, environment: [String: String] = ProcessInfo.processInfo.environment) throws -> Payload {
        let path: String
        if let flag = arguments.firstIndex(of: "--payload"), flag + 1 < arguments.count {
            path = arguments[flag + 1]
        } else if let fromEnvironment = environment["CONNECTOR_HOST_PAYLOAD"], !fromEnvironment.isEmpty {
            path = fromEnvironment
        } else {
            throw AgentError.nonRetryable("no payload: run me as '<agent> --payload <file>' (the host does), or set CONNECTOR_HOST_PAYLOAD")
        }
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw AgentError.nonRetryable("cannot read the payload \(path): \(error.localizedDescription)")
        }
        do {
            return try JSONDecoder().decode(Payload.self, from: data)
        } catch let error as DecodingError {
            throw AgentError.nonRetryable("payload \(path): \(describe(error))")
        }
    }
}
