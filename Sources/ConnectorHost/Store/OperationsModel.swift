import Foundation

/// Which task executions `runs` lists. Newest first.
public struct ExecutionFilter: Sendable, Equatable {
    public var limit = 20
    public var taskType: String?
    public var connectionId: String?
    public var status: TaskRecord.Status?
    public var since: Date?

    public init(limit: Int = 20, taskType: String? = nil, connectionId: String? = nil, status: TaskRecord.Status? = nil, since: Date? = nil) {
        self.limit = limit
        self.taskType = taskType
        self.connectionId = connectionId
        self.status = status
        self.since = since
    }
}

/// A condition worth a person's attention, raised when a scan ends and resolved when it clears.
public struct Alert: Sendable, Equatable {
    public var id: Int
    /// One open alert per key: rule, connection and task type.
    public var key: String
    public var rule: AlertRule
    public var connectionId: String
    public var taskType: String
    public var message: String
    public var scanId: String?
    public var openedAt: Date
    public var updatedAt: Date
    public var resolvedAt: Date?
    public var isOpen: Bool { resolvedAt == nil }

    public static func key(rule: AlertRule, connectionId: String, taskType: String) -> String { "\(rule.rawValue):\(connectionId):\(taskType)" }

    public var json: JSONValue {
        var o = JSONObject()
        o["id"] = .int(id)
        o["rule"] = .string(rule.rawValue)
        o["connectionId"] = .string(connectionId)
        o["taskType"] = taskType.isEmpty ? .null : .string(taskType)
        o["state"] = .string(isOpen ? "open" : "resolved")
        o["message"] = .string(message)
        o["scanId"] = JSONValue(scanId)
        o["openedAt"] = .string(Timestamp.iso8601(openedAt))
        o["updatedAt"] = .string(Timestamp.iso8601(updatedAt))
        o["resolvedAt"] = resolvedAt.map { .string(Timestamp.iso8601($0)) } ?? .null
        return .object(o)
    }
}

public enum AlertRule: String, Sendable, CaseIterable {
    case scanFailed = "scan_failed"
    case retryLimitExceeded = "retry_limit_exceeded"
    case needsReauth = "needs_reauth"
    case slowScan = "slow_scan"
    case recordsDropped = "records_dropped"
    case zeroRecords = "zero_records"
    case errorRate = "error_rate"
    case schemaDrift = "schema_drift"
}

/// An alert the notifier has yet to hear about: its opening or its resolution.
public struct PendingNotification: Sendable, Equatable {
    public enum Event: String, Sendable { case opened, resolved }
    public var alert: Alert
    public var event: Event
    public var attempts: Int
}

/// What the alert rules need from a scan's executions: counts, not the rows (a 10,000-child
/// scan would load 10,000 records at its end).
public struct ExecutionTally: Sendable, Equatable {
    public var succeeded = 0
    public var failed = 0
    /// The error of the scan's most recent failed execution.
    public var lastFailureError: String?
    public init(succeeded: Int = 0, failed: Int = 0, lastFailureError: String? = nil) {
        self.succeeded = succeeded
        self.failed = failed
        self.lastFailureError = lastFailureError
    }
}

/// What the alert rules need to judge a scan that has just closed, read in one go: their input
/// and the rules already open for the scan's connection.
public struct AlertFacts: Sendable, Equatable {
    public var input: AlertRules.Input
    public var openRules: Set<AlertRule>
}

public struct PruneResult: Sendable, Equatable {
    public var executions = 0
    public var scans = 0
    public var tasks = 0
    public var alerts = 0
    public var events = 0
    public init() {}
}

/// One durable counter or gauge behind the Prometheus textfile (labels as `k="v",…`).
public struct MetricSample: Sendable, Equatable {
    public var name: String
    public var labels: String
    public var value: Double
}
