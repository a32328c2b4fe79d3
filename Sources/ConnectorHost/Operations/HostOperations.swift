import Foundation

/// What the scheduler does for operators around the tasks it runs: retention at the start of a
/// pass, alerts when a scan ends, notifications, and the metrics file after every task.
public struct HostOperations: Sendable {
    public var settings: OperationsSettings
    public var store: StoreAccess
    public var notifier: Notifier?
    public var logger: Logger
    private let metricsPace = MetricsPace()

    public init(settings: OperationsSettings, store: StoreAccess, notifier: Notifier?, logger: Logger) {
        self.settings = settings
        self.store = store
        self.notifier = notifier
        self.logger = logger
    }

    /// Prunes history past the retention and resolves re-auth alerts of connections that are
    /// active again (their config changed, or `resume`).
    public func atPassStart(now: Date = Date()) async throws(StoreError) {
        let cutoff = now.addingTimeInterval(-Double(settings.retentionSeconds))
        let pruned = try await store { (s) throws(StoreError) in try s.prune(before: cutoff) }
        if pruned.executions + pruned.scans > 0 {
            logger.info("retention", "pruned \(pruned.executions) execution(s) and \(pruned.scans) scan(s) older than \(DurationText.format(seconds: settings.retentionSeconds))")
        }
        try await resolveReauthAlerts(now: now)
    }

    func resolveReauthAlerts(now: Date) async throws(StoreError) {
        // The open alerts first: usually none, so a pass over 1,000 connections writes nothing.
        let open = try await store { (s) throws(StoreError) in try s.alerts(includeResolved: false, limit: 1_000_000).filter { $0.rule == .needsReauth } }
        guard !open.isEmpty else { return }
        let connections = try await store { (s) throws(StoreError) in try s.connections(includeDeleted: true) }
        let active = Set(connections.filter { $0.state != .needsReauth }.map(\.id))
        for alert in open where active.contains(alert.connectionId) {
            let resolved = try await store { (s) throws(StoreError) in try s.resolveAlert(rule: .needsReauth, connectionId: alert.connectionId, taskType: "", now: now) }
            if resolved { logger.info(alert.connectionId, "alert resolved: needs_reauth") }
        }
    }

    /// After a task: alerts when it closed its scan, then the metrics file. Returns whether an
    /// alert opened or resolved (so notifications are due).
    public func afterTask(_ finished: FinishedTask) async throws(StoreError) -> Bool {
        var changed = false
        if let scan = finished.completion.closedScan { changed = try await evaluateAlerts(scan, facts: finished.completion.alertFacts) }
        // A scraper reads the file every 15 s or so; rewriting it after each of 10,000 children
        // would cost more than running them. The pass end always writes it.
        if metricsPace.due(every: 1) { await writeMetrics() }
        return changed
    }

    /// `facts`: read by the completion that closed the scan, when it asked
    /// (`TaskCompletion.alertHistory`); otherwise read here. A scan that changes no alert (most)
    /// then costs the store nothing more.
    func evaluateAlerts(_ scan: ScanSummary, facts known: AlertFacts?) async throws(StoreError) -> Bool {
        let thresholds = settings.alerts
        let facts: AlertFacts
        if let known {
            facts = known
        } else {
            facts = try await store { (s) throws(StoreError) in try s.alertFacts(for: scan, history: thresholds.history) }
        }
        let (input, open) = (facts.input, facts.openRules)
        var changed = false
        let now = Date()
        for verdict in AlertRules.evaluate(input, thresholds: thresholds) {
            guard let firing = verdict.firing else { continue }
            // Re-auth is about the connection, whatever task type found out.
            let taskType = verdict.rule == .needsReauth ? "" : scan.taskType
            let label = "\(scan.connectionId)/\(scan.taskType)"
            if firing {
                let opened = try await store { (s) throws(StoreError) in
                    try s.raiseAlert(rule: verdict.rule, connectionId: scan.connectionId, taskType: taskType, message: verdict.message, scanId: scan.id, now: now)
                }
                if opened {
                    logger.warning(label, "alert opened: \(verdict.rule.rawValue): \(verdict.message)")
                    changed = true
                }
            } else if open.contains(verdict.rule) {
                // Only an open alert needs a write to resolve; most scans have none.
                let resolved = try await store { (s) throws(StoreError) in try s.resolveAlert(rule: verdict.rule, connectionId: scan.connectionId, taskType: taskType, now: now) }
                if resolved {
                    logger.info(label, "alert resolved: \(verdict.rule.rawValue)")
                    changed = true
                }
            }
        }
        return changed
    }

    /// Rewrites the metrics textfile, when one is configured. A failure is logged, not fatal.
    /// `afterTask` calls it at most once a second; the scheduler calls it at the end of a pass.
    public func writeMetrics() async {
        guard let path = settings.metricsTextfile else { return }
        do {
            let (samples, gauges) = try await store { (s) throws(StoreError) in
                (try s.metricSamples(), MetricsTextfile.Gauges(queueDepth: try s.queueDepth(), runningAgents: try s.runningCount(), openAlerts: try s.openAlertCount()))
            }
            try MetricsTextfile.write(MetricsTextfile.render(samples, gauges: gauges), to: path)
        } catch {
            logger.error("metrics", "cannot write \(path): \(error)")
        }
    }

    /// Delivers pending alert notifications, when a notifier is configured.
    public func notify() async {
        guard let notifier else { return }
        await notifier.deliverPending(store: store)
    }
}

/// When the metrics file was last written, shared by the copies of a `HostOperations` value.
final class MetricsPace: @unchecked Sendable {
    private let lock = NSLock()
    private var last: ContinuousClock.Instant?

    /// True (and restarts the interval) when `seconds` have passed since the last true.
    func due(every seconds: Double) -> Bool {
        lock.lock()
        defer { lock.unlock() }
        let now = ContinuousClock.now
        if let last, now - last < .milliseconds(Int(seconds * 1000)) { return false }
        last = now
        return true
    }
}
