/// Parses output in the Nagios plugin format:
///
///     TEXT OUTPUT | OPTIONAL PERFDATA
///     LONG TEXT LINE 1
///     LONG TEXT LINE N | PERFDATA LINE 2
///     PERFDATA LINE 3
///
/// Perfdata items are `'label'=value[UOM];[warn];[crit];[min];[max]`.
public enum NagiosOutput {
    public static let states = ["OK", "WARNING", "CRITICAL", "UNKNOWN"]

    public static func parse(_ text: String) -> (message: String, perfdata: JSONObject, longOutput: String) {
        var lines = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        while lines.last?.isEmpty == true { lines.removeLast() }
        guard let first = lines.first else { return ("", JSONObject(), "") }
        var perfText: [String] = []
        let (message, firstPerf) = splitPipe(first)
        if let firstPerf { perfText.append(firstPerf) }
        var longLines: [String] = []
        var inPerf = false
        for line in lines.dropFirst() {
            if inPerf { perfText.append(line); continue }
            let (textPart, perfPart) = splitPipe(line)
            if let perfPart {
                longLines.append(textPart)
                perfText.append(perfPart)
                inPerf = true
            } else {
                longLines.append(line)
            }
        }
        var perfdata = JSONObject()
        for chunk in perfText { for (label, value) in items(chunk) { perfdata[label] = value } }
        return (message.trimmingCharacters(in: .whitespaces), perfdata, longLines.joined(separator: "\n"))
    }

    static func splitPipe(_ line: String) -> (String, String?) {
        guard let bar = line.firstIndex(of: "|") else { return (line, nil) }
        return (String(line[..<bar]).trimmingCharacters(in: .whitespaces), String(line[line.index(after: bar)...]))
    }

    /// Items of one perfdata chunk; labels may be quoted with ' (and '' inside is a quote).
    static func items(_ text: String) -> [(String, JSONValue)] {
        var result: [(String, JSONValue)] = []
        var chars = Array(text)[...]
        while true {
            while chars.first == " " || chars.first == "\t" { chars = chars.dropFirst() }
            guard !chars.isEmpty else { break }
            var label = ""
            if chars.first == "'" {
                chars = chars.dropFirst()
                while let c = chars.first {
                    chars = chars.dropFirst()
                    if c == "'" {
                        if chars.first == "'" { label.append("'"); chars = chars.dropFirst() } else { break }
                    } else {
                        label.append(c)
                    }
                }
                guard chars.first == "=" else { break }
            } else {
                while let c = chars.first, c != "=", c != " " { label.append(c); chars = chars.dropFirst() }
                guard chars.first == "=" else { chars = chars.drop(while: { $0 != " " }); continue }
            }
            chars = chars.dropFirst()
            var spec = ""
            while let c = chars.first, c != " ", c != "\t" { spec.append(c); chars = chars.dropFirst() }
            result.append((label, item(spec)))
        }
        return result
    }

    static func item(_ spec: String) -> JSONValue {
        let parts = spec.split(separator: ";", omittingEmptySubsequences: false).map(String.init)
        let valueAndUnit = parts.first ?? ""
        let numeric = valueAndUnit.prefix { $0.isNumber || $0 == "." || $0 == "-" || $0 == "+" || $0 == "e" || $0 == "E" }
        let value: JSONValue = valueAndUnit == "U" ? .null : (Double(numeric).map { _ in .number(String(numeric)) } ?? .null)
        let uom = valueAndUnit == "U" ? "" : String(valueAndUnit.dropFirst(numeric.count))
        func field(_ i: Int) -> JSONValue {
            guard i < parts.count, !parts[i].isEmpty else { return .null }
            return Double(parts[i]) != nil ? .number(parts[i]) : .string(parts[i])
        }
        return ["value": value, "uom": .string(uom), "warn": field(1), "crit": field(2), "min": field(3), "max": field(4)]
    }
}
