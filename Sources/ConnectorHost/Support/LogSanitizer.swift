/// Masks form fields whose names look secret before they reach a log (the reference's
/// sanitizeForLogging). Secrets proper never get here: they are references, resolved at run time
/// and redacted by value; this catches a token someone put in `fields` by mistake.
public enum LogSanitizer {
    static let secretWords = ["password", "passwd", "token", "secret", "key", "credential"]

    public static func looksSecret(_ name: String) -> Bool {
        let lower = name.lowercased()
        return secretWords.contains { lower.contains($0) }
    }

    public static func sanitize(_ value: JSONValue) -> JSONValue {
        switch value {
        case .object(let o):
            var copy = JSONObject()
            for member in o.members { copy[member.key] = looksSecret(member.key) ? .string("***") : sanitize(member.value) }
            return .object(copy)
        case .array(let items):
            return .array(items.map(sanitize))
        default:
            return value
        }
    }
}
