import Foundation

/// The parts of plugins.json shared by handlers and the notifier, and the operations settings.
extension ConfigReader {
    static let alertKeys = [
        "scanFailed", "retryLimitExceeded", "needsReauth", "slowScanFactor", "slowScanWindow", "slowScanMinScans", "recordsDropPercent", "recordsWindow",
        "zeroRecords", "errorRatePercent", "schemaDrift",
    ]
    static let notifyKeys = ["command", "timeoutSeconds", "env", "secrets"]

    /// An argv: a non-empty array of non-empty strings. `what` names the program in messages.
    mutating func command(_ value: JSONValue?, _ path: String, what: String = "agent executable") -> [String] {
        guard let c = value else {
            problem(path, "missing; name the \(what), e.g. [\"agents/my-agent/run.sh\"]")
            return []
        }
        if let s = c.stringValue {
            problem(path, "expected an array like [\"\(s)\"], found a string")
            return []
        }
        guard let array = c.arrayValue, !array.isEmpty else {
            problem(path, c.arrayValue == nil ? "expected an array of strings, found \(c.kindName)" : "is empty; name the \(what)")
            return []
        }
        var command: [String] = []
        for (i, element) in array.enumerated() {
            if let s = element.stringValue, !s.isEmpty { command.append(s) } else {
                problem("\(path)[\(i)]", "expected a non-empty string, found \(element.stringValue == nil ? element.kindName : "an empty string")")
            }
        }
        return command
    }

    /// NAME → {"env": VAR} or {"file": PATH}: references, never values.
    mutating func secrets(_ value: JSONValue?, _ path: String) -> [String: SecretReference] {
        var secrets: [String: SecretReference] = [:]
        guard let s = value, let so = object(s, path, allowed: s.objectValue?.keys ?? []) else { return secrets }
        for member in so.members {
            let p = "\(path).\(member.key)"
            if !Self.isEnvironmentName(member.key) { problem(p, "invalid name; a secret is passed as an environment variable of its name"); continue }
            guard let ref = object(member.value, p, allowed: ["env", "file"]) else { continue }
            switch (ref["env"], ref["file"]) {
            case (let e?, nil):
                if let name = string(e, "\(p).env") {
                    if Self.isEnvironmentName(name) { secrets[member.key] = .environment(name) } else { problem("\(p).env", "invalid environment variable name \"\(name)\"") }
                }
            case (nil, let f?):
                if let file = string(f, "\(p).file") { secrets[member.key] = .file(absolute(file)) }
            case (nil, nil): problem(p, "needs \"env\" (a variable of the host's environment) or \"file\" (a path); secret values never go in the config")
            default: problem(p, "give either \"env\" or \"file\", not both")
            }
        }
        return secrets
    }

    /// A string → string object (an environment).
    mutating func stringMap(_ value: JSONValue?, _ path: String) -> [String: String] {
        var map: [String: String] = [:]
        guard let e = value, let o = object(e, path, allowed: e.objectValue?.keys ?? []) else { return map }
        for member in o.members {
            if !Self.isEnvironmentName(member.key) { problem("\(path).\(member.key)", "invalid environment variable name"); continue }
            if let v = string(member.value, "\(path).\(member.key)") { map[member.key] = v }
        }
        return map
    }

    mutating func operations(_ root: JSONObject) -> OperationsSettings {
        var settings = OperationsSettings()
        if let value = root["alerts"], let o = object(value, "alerts", allowed: Self.alertKeys) {
            var a = AlertThresholds()
            a.scanFailed = bool(o["scanFailed"], "alerts.scanFailed", default: a.scanFailed)
            a.retryLimitExceeded = bool(o["retryLimitExceeded"], "alerts.retryLimitExceeded", default: a.retryLimitExceeded)
            a.needsReauth = bool(o["needsReauth"], "alerts.needsReauth", default: a.needsReauth)
            a.zeroRecords = bool(o["zeroRecords"], "alerts.zeroRecords", default: a.zeroRecords)
            a.schemaDrift = bool(o["schemaDrift"], "alerts.schemaDrift", default: a.schemaDrift)
            a.slowScanFactor = optionalNumber(o, "slowScanFactor", "alerts", current: a.slowScanFactor, range: 1...1000)
            a.recordsDropPercent = optionalNumber(o, "recordsDropPercent", "alerts", current: a.recordsDropPercent, range: 0...100)
            a.errorRatePercent = optionalNumber(o, "errorRatePercent", "alerts", current: a.errorRatePercent, range: 0...100)
            a.slowScanWindow = integer(o["slowScanWindow"], "alerts.slowScanWindow", range: 1...1000) ?? a.slowScanWindow
            a.slowScanMinScans = integer(o["slowScanMinScans"], "alerts.slowScanMinScans", range: 1...1000) ?? a.slowScanMinScans
            a.recordsWindow = integer(o["recordsWindow"], "alerts.recordsWindow", range: 1...1000) ?? a.recordsWindow
            settings.alerts = a
        }
        if let value = root["notify"], let o = object(value, "notify", allowed: Self.notifyKeys) {
            let before = problems.count
            let command = self.command(o["command"], "notify.command", what: "notifier executable")
            if checkExecutables, let first = command.first, problems.count == before,
                let issue = ExecutableResolver.problem(command: first, configDirectory: directory)
            {
                problem("notify.command[0]", issue)
            }
            var notify = NotifierSettings(command: command)
            notify.timeoutSeconds = number(o["timeoutSeconds"], "notify.timeoutSeconds", default: notify.timeoutSeconds, range: 0.1...3600)
            notify.env = stringMap(o["env"], "notify.env")
            notify.secrets = secrets(o["secrets"], "notify.secrets")
            settings.notify = notify
        }
        if let value = root["retention"], let o = object(value, "retention", allowed: ["history"]) {
            if let text = string(o["history"], "retention.history") {
                if let seconds = DurationText.seconds(text), seconds >= 3600 {
                    settings.retentionSeconds = seconds
                } else {
                    problem("retention.history", "expected a duration of at least 1h like \"30d\", found \"\(text)\"")
                }
            }
        }
        if let value = root["metrics"], let o = object(value, "metrics", allowed: ["textfile"]) {
            if let file = string(o["textfile"], "metrics.textfile") { settings.metricsTextfile = absolute(file) }
        }
        return settings
    }

    /// A number, or `null`/`false` to turn the rule off.
    mutating func optionalNumber(_ o: JSONObject, _ key: String, _ path: String, current: Double?, range: ClosedRange<Double>) -> Double? {
        guard let value = o[key] else { return current }
        if value == .null || value == .bool(false) { return nil }
        return number(value, "\(path).\(key)", default: current ?? range.lowerBound, range: range)
    }
}
