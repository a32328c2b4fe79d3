import Foundation

/// Decides, when a scan ends, which alert conditions hold for its connection and task type.
/// Pure: the store's history goes in, a verdict per rule comes out (README, "Alerts").
public enum AlertRules {
    public struct Verdict: Sendable, Equatable {
        public var rule: AlertRule
        /// nil: the rule has nothing to say this time (too little history, a failed scan for a
        /// records rule); the alert keeps its state.
        public var firing: Bool?
        /// Empty unless the rule fires: only a firing rule's message is stored or shown, and
        /// formatting one for every rule at every scan's end was most of the rules' cost.
        public var message: String

        public init(rule: AlertRule, firing: Bool?, message: @autoclosure () -> String) {
            self.rule = rule
            self.firing = firing
            self.message = firing == true ? message() : ""
        }
    }

    public struct Input: Sendable, Equatable {
        public var scan: ScanSummary
        public var executions: ExecutionTally
        /// The scan's failed tasks by final reason.
        public var failedTasks: [FailureReason: Int]
        /// Successful scans of the same connection and type that ended before this one, newest first.
        public var previousSuccesses: [ScanSummary]
        public var connectionNeedsReauth: Bool
        public var reauthReason: String?
    }

    public static func evaluate(_ input: Input, thresholds t: AlertThresholds) -> [Verdict] {
        var verdicts: [Verdict] = []
        let scan = input.scan
        let label = "\(scan.connectionId)/\(scan.taskType)"
        if t.scanFailed {
            verdicts.append(
                Verdict(
                    rule: .scanFailed, firing: scan.status == .failure,
                    message: "scan \(scan.id) of \(label) failed: \(scan.failed) of \(scan.tasks) task(s) failed"))
        }
        if t.retryLimitExceeded {
            let exhausted = input.failedTasks[.retryLimitExceeded] ?? 0
            let lastError = input.executions.lastFailureError ?? ""
            verdicts.append(
                Verdict(rule: .retryLimitExceeded, firing: exhausted > 0, message: "\(exhausted) task(s) of \(label) ran out of retries; last error: \(lastError)"))
        }
        if t.needsReauth {
            verdicts.append(
                Verdict(
                    rule: .needsReauth, firing: input.connectionNeedsReauth,
                    message: "connection \(scan.connectionId) needs re-authentication (\(input.reauthReason ?? "auth failure")); fix its secrets, then `connector-host resume \(scan.connectionId)`"))
        }
        if let factor = t.slowScanFactor, let duration = scan.durationSeconds {
            let durations = input.previousSuccesses.prefix(t.slowScanWindow).compactMap(\.durationSeconds)
            if durations.count >= t.slowScanMinScans {
                let p95 = percentile(durations, 0.95)
                verdicts.append(
                    Verdict(
                        rule: .slowScan, firing: duration > factor * p95 && duration > 1,
                        message: String(format: "scan of %@ took %.1f s, over %g× the p95 (%.1f s) of its last %d successful scans", label, duration, factor, p95, durations.count)))
            }
        }
        if scan.status == .success, let last = input.previousSuccesses.first {
            if t.zeroRecords {
                verdicts.append(
                    Verdict(
                        rule: .zeroRecords, firing: scan.records == 0 && last.records > 0,
                        message: "scan of \(label) produced 0 records; the previous successful scan produced \(last.records)"))
            }
            if let percent = t.recordsDropPercent {
                let counts = input.previousSuccesses.prefix(t.recordsWindow).map { Double($0.records) }
                let median = percentile(counts, 0.5)
                if median > 0 {
                    let drop = (median - Double(scan.records)) / median * 100
                    verdicts.append(
                        Verdict(
                            rule: .recordsDropped, firing: drop > percent,
                            message: String(format: "scan of %@ produced %d records, %.0f%% below the median (%g) of its last %d successful scans", label, scan.records, drop, median, counts.count)))
                }
            }
            if t.schemaDrift, let now = scan.schemaFingerprint, let before = last.schemaFingerprint {
                verdicts.append(
                    Verdict(rule: .schemaDrift, firing: now != before, message: "the schema of \(label) changed from \"\(before)\" to \"\(now)\""))
            }
        }
        if let percent = t.errorRatePercent {
            let ran = input.executions.succeeded + input.executions.failed
            if ran > 0 {
                let failed = input.executions.failed
                let rate = Double(failed) / Double(ran) * 100
                verdicts.append(
                    Verdict(
                        rule: .errorRate, firing: rate > percent,
                        message: String(format: "%d of %d executions of %@ failed in scan %@ (%.1f%%, over %g%%)", failed, ran, label, scan.id, rate, percent)))
            }
        }
        return verdicts
    }

    /// Linear interpolation between closest ranks.
    static func percentile(_ values: [Double], _ p: Double) -> Double {
        let sorted = values.sorted()
        guard let first = sorted.first else { return 0 }
        guard sorted.count > 1 else { return first }
        let rank = p * Double(sorted.count - 1)
        let low = Int(rank.rounded(.down))
        let high = min(low + 1, sorted.count - 1)
        return sorted[low] + (sorted[high] - sorted[low]) * (rank - Double(low))
    }
}
