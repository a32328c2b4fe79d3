import Foundation

/// How a task execution came about.
public enum Trigger: String, Sendable, Codable {
    case schedule
    case manual
    case child
    case retry
    case connectionChange = "connection_change"
}

/// What one execution of a task ended as: the record kept in the history and printed by `exec`.
public struct TaskRecord: Sendable, Equatable {
    /// `running` appears only in history listings, for a task whose execution has not ended.
    public enum Status: String, Sendable, CaseIterable { case success, failure, skipped, running }

    public var taskId: String
    public var taskExecutionId: String
    public var scanId: String
    public var parentTaskId: String?
    public var connectionId: String
    public var handler: String
    public var type: String
    public var trigger: Trigger
    public var status: Status
    public var failureReason: FailureReason?
    public var exitCode: Int?
    public var signal: String?
    public var timedOut: Bool
    public var startedAt: Date
    public var durationMs: Int
    public var attempt: Int
    public var result: JSONValue?
    public var error: String?
    public var stderrTail: String
    /// Records the agent reported in `stats` (history only; nil when it reported none).
    public var records: Int? = nil

    public var json: JSONValue {
        var o = JSONObject()
        o["taskId"] = .string(taskId)
        o["taskExecutionId"] = .string(taskExecutionId)
        o["scanId"] = .string(scanId)
        o["parentTaskId"] = JSONValue(parentTaskId)
        o["connectionId"] = .string(connectionId)
        o["handler"] = .string(handler)
        o["type"] = .string(type)
        o["trigger"] = .string(trigger.rawValue)
        o["status"] = .string(status.rawValue)
        o["failureReason"] = JSONValue(failureReason?.rawValue)
        o["exitCode"] = JSONValue(exitCode)
        o["signal"] = JSONValue(signal)
        o["timedOut"] = .bool(timedOut)
        o["startedAt"] = .string(Timestamp.iso8601(startedAt))
        o["durationMs"] = .int(durationMs)
        o["attempt"] = .int(attempt)
        o["result"] = result ?? .null
        o["error"] = JSONValue(error)
        o["stderrTail"] = .string(stderrTail)
        if let records { o["records"] = .int(records) }
        return .object(o)
    }
}
