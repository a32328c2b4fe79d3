import Foundation

/// The Prometheus textfile-collector file (node_exporter `--collector.textfile.directory`):
/// counters kept in the store, plus gauges read at write time. Written to a temporary file and
/// renamed, so the collector never reads half a file.
public enum MetricsTextfile {
    /// Duration histogram bounds, in seconds.
    public static let durationBuckets: [Double] = [0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600]

    public struct Gauges: Sendable {
        public var queueDepth: Int
        public var runningAgents: Int
        public var openAlerts: Int
    }

    static let help: [(name: String, type: String, help: String)] = [
        ("connector_host_task_executions_total", "counter", "Task executions by connection, type, status and failure reason."),
        ("connector_host_task_duration_seconds", "histogram", "Task execution duration."),
        ("connector_host_records_total", "counter", "Records reported by agents in stats messages."),
        ("connector_host_last_success_timestamp_seconds", "gauge", "Unix time the last successful execution of a connection and type ended."),
    ]

    public static func render(_ samples: [MetricSample], gauges: Gauges) -> String {
        var byName: [String: [MetricSample]] = [:]
        for sample in samples { byName[sample.name, default: []].append(sample) }
        var lines: [String] = []
        for family in help {
            lines.append("# HELP \(family.name) \(family.help)")
            lines.append("# TYPE \(family.name) \(family.type)")
            if family.type == "histogram" {
                lines += histogram(family.name, byName)
            } else {
                for s in byName[family.name] ?? [] { lines.append("\(family.name){\(s.labels)} \(MetricLabels.number(s.value))") }
            }
        }
        for (name, value, text) in [
            ("connector_host_queue_depth", gauges.queueDepth, "Tasks queued or snoozed."),
            ("connector_host_running_agents", gauges.runningAgents, "Tasks whose agent is running."),
            ("connector_host_open_alerts", gauges.openAlerts, "Alerts not yet resolved."),
        ] {
            lines += ["# HELP \(name) \(text)", "# TYPE \(name) gauge", "\(name) \(value)"]
        }
        return lines.joined(separator: "\n") + "\n"
    }

    /// Stored per execution: the smallest bound its duration fits under (none past the largest).
    /// Hosts before 2026-11 stored the cumulative `_bucket` series itself, one row per bound and
    /// `+Inf`; those rows stay as a base the new counts are added to.
    static let durationInBucket = "connector_host_task_duration_seconds_in_bucket"

    /// The cumulative buckets Prometheus expects: each bound counts the observations in it and in
    /// every bound below; `+Inf` counts them all (`_count`). A bucket no observation reached is
    /// 0, and every series lists all of them.
    static func histogram(_ name: String, _ byName: [String: [MetricSample]]) -> [String] {
        let earlier = Dictionary((byName["\(name)_bucket"] ?? []).map { ($0.labels, $0.value) }, uniquingKeysWith: +)
        let own = Dictionary((byName[durationInBucket] ?? []).map { ($0.labels, $0.value) }, uniquingKeysWith: +)
        let sums = Dictionary((byName["\(name)_sum"] ?? []).map { ($0.labels, $0.value) }, uniquingKeysWith: +)
        var lines: [String] = []
        for count in byName["\(name)_count"] ?? [] {
            let series = count.labels
            var below = 0.0
            for bound in durationBuckets.map(MetricLabels.number) {
                let labels = series + ",le=\"\(bound)\""
                below += own[labels] ?? 0
                lines.append("\(name)_bucket{\(labels)} \(MetricLabels.number((earlier[labels] ?? 0) + below))")
            }
            lines.append("\(name)_bucket{\(series),le=\"+Inf\"} \(MetricLabels.number(count.value))")
            lines.append("\(name)_sum{\(series)} \(MetricLabels.number(sums[series] ?? 0))")
            lines.append("\(name)_count{\(series)} \(MetricLabels.number(count.value))")
        }
        return lines
    }

    public static func write(_ text: String, to path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let temporary = "\(directory)/.\((path as NSString).lastPathComponent).\(getpid()).tmp"
        try text.write(toFile: temporary, atomically: false, encoding: .utf8)
        guard rename(temporary, path) == 0 else {
            let code = errno
            try? FileManager.default.removeItem(atPath: temporary)
            throw POSIXError(POSIXErrorCode(rawValue: code) ?? .EIO)
        }
    }
}
