import Foundation

/// What plugins.json says about alerts, notifications, retention and metrics (README, "Operations").
public struct OperationsSettings: Sendable, Equatable {
    public var alerts = AlertThresholds()
    public var notify: NotifierSettings?
    /// History older than this is pruned by `run`, `daemon` and `prune`.
    public var retentionSeconds = 30 * 86400
    /// A Prometheus textfile-collector file, rewritten after each task.
    public var metricsTextfile: String?
    public init() {}
}

/// When each alert rule fires. A rule set to `false` (or a threshold to `null`) is off.
public struct AlertThresholds: Sendable, Equatable {
    public var scanFailed = true
    public var retryLimitExceeded = true
    public var needsReauth = true
    /// Slow scan: duration over this × the p95 of the last `slowScanWindow` successful scans.
    public var slowScanFactor: Double? = 2
    public var slowScanWindow = 20
    /// Fewer successful scans than this: too little history to call anything slow.
    public var slowScanMinScans = 5
    /// Records down more than this percentage against the median of the last `recordsWindow` successful scans.
    public var recordsDropPercent: Double? = 50
    public var recordsWindow = 5
    public var zeroRecords = true
    /// Failed executions over this percentage of a scan's executions.
    public var errorRatePercent: Double? = 1
    public var schemaDrift = true
    public init() {}

    /// How many earlier successful scans the rules compare a scan against.
    public var history: Int { max(slowScanWindow, recordsWindow) }
}

/// The command that hears about alerts: run through the agent runner with the alert as JSON on
/// stdin (and in a payload file).
public struct NotifierSettings: Sendable, Equatable {
    public var command: [String]
    public var timeoutSeconds: Double = 30
    public var env: [String: String] = [:]
    public var secrets: [String: SecretReference] = [:]
}
