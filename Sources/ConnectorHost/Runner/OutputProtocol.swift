/// Reads an agent's stdout in json mode.
///
/// The whole of stdout as one JSON document (pretty-printed or not) is the result. Otherwise
/// stdout is JSON Lines: one object per line with a `type`. An object without `type` is a legacy
/// result. The last result wins.
public enum OutputProtocol {
    public static let messageTypes = ["log", "progress", "child", "checkpoint", "stats", "result"]

    public static func parse(_ stdout: [UInt8]) -> AgentReport {
        var report = AgentReport()
        guard stdout.contains(where: { !isWhitespace($0) }) else { return report }
        if let document = try? JSONParser.parse(stdout) {
            guard case .object(let object) = document else {
                report.protocolError = "stdout is \(document.kindName), not a JSON object"
                return report
            }
            if object["type"] != nil {
                if let error = take(object, line: 1, into: &report) { report.protocolError = error }
            } else {
                report.result = legacyResult(object, into: &report)
            }
            return report
        }
        var lineNumber = 0
        for line in stdout.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false) {
            lineNumber += 1
            guard line.contains(where: { !isWhitespace($0) }) else { continue }
            let value: JSONValue
            do {
                value = try JSONParser.parse(Array(line))
            } catch {
                report.protocolError = "stdout line \(lineNumber) is not JSON (\(error.message) at column \(error.column)): \(preview(line))"
                return report
            }
            guard case .object(let object) = value else {
                report.protocolError = "stdout line \(lineNumber) is \(value.kindName), expected a JSON object: \(preview(line))"
                return report
            }
            if object["type"] == nil {
                report.result = legacyResult(object, into: &report)
            } else if let error = take(object, line: lineNumber, into: &report) {
                report.protocolError = error
                return report
            }
        }
        return report
    }

    /// Applies one typed message; returns a protocol error naming the line, or nil.
    static func take(_ object: JSONObject, line: Int, into report: inout AgentReport) -> String? {
        guard let type = object["type"]?.stringValue else { return "stdout line \(line): \"type\" must be a string" }
        switch type {
        case "log":
            guard let message = object["message"]?.stringValue else { return "stdout line \(line): a log message needs a string \"message\"" }
            report.logs.append(.init(level: object["level"]?.stringValue ?? "info", message: message))
        case "progress":
            report.progress = .init(message: object["message"]?.stringValue ?? "", done: object["done"]?.intValue, total: object["total"]?.intValue)
        case "child":
            report.children.append(.init(message: object, line: line))
        case "checkpoint":
            guard let metadata = object["metadata"] else { return "stdout line \(line): a checkpoint message needs \"metadata\"" }
            report.checkpoint = metadata
        case "stats":
            var stats = report.stats ?? .init()
            if let r = object["records"] {
                guard let n = r.intValue, n >= 0 else { return "stdout line \(line): stats \"records\" must be a whole number ≥ 0" }
                stats.records += n
            }
            if let b = object["bytes"] {
                guard let n = b.intValue, n >= 0 else { return "stdout line \(line): stats \"bytes\" must be a whole number ≥ 0" }
                stats.bytes += n
            }
            if let s = object["schema"] { stats.schema = s.stringValue ?? s.serialized() }
            report.stats = stats
        case "result":
            guard let statusText = object["status"]?.stringValue, let status = AgentReport.Result.Status(rawValue: statusText) else {
                return "stdout line \(line): a result needs \"status\": \"success\" or \"failure\""
            }
            report.result = .init(
                status: status, failureReason: object["failureReason"]?.stringValue, message: object["message"]?.stringValue,
                result: object["result"], retryAfterSeconds: object["retryAfterSeconds"]?.doubleValue)
        default:
            return "stdout line \(line): unknown message type \"\(type)\" (expected one of \(messageTypes.joined(separator: ", ")))\(Suggestion.hint(for: type, in: messageTypes))"
        }
        return nil
    }

    /// A result object without `type`: `status` ("success"/"failure") or `success` (bool), with
    /// optional `failureReason` and `message`. The whole object is kept as the task's result.
    static func legacyResult(_ object: JSONObject, into report: inout AgentReport) -> AgentReport.Result {
        var status: AgentReport.Result.Status = .success
        if let s = object["status"]?.stringValue, let parsed = AgentReport.Result.Status(rawValue: s) {
            status = parsed
        } else if let b = object["success"]?.boolValue {
            status = b ? .success : .failure
        } else if object["failureReason"] != nil {
            status = .failure
        }
        return .init(
            status: status, failureReason: object["failureReason"]?.stringValue, message: object["message"]?.stringValue,
            result: .object(object), retryAfterSeconds: object["retryAfterSeconds"]?.doubleValue)
    }

    static func isWhitespace(_ b: UInt8) -> Bool { b == 0x20 || b == 0x0A || b == 0x0D || b == 0x09 }

    static func preview(_ line: ArraySlice<UInt8>) -> String {
        let text = String(decoding: line.prefix(120), as: UTF8.self)
        return line.count > 120 ? "\(text)…" : text
    }
}
