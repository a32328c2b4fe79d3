import Foundation

/// Replaces secret values with `***` wherever text leaves the host's memory: logs, the stored
/// stderr tail, results and error messages.
public struct Redactor: Sendable {
    /// Values shorter than this are not redacted: masking every "a" or "1" would destroy the log
    /// while protecting nothing (README, "Secrets").
    public static let minimumLength = 4
    public let values: [String]

    public init(secrets: some Sequence<String>) {
        // Longest first, so a secret containing another is masked whole.
        values = Set(secrets.filter { $0.count >= Redactor.minimumLength }).sorted { $0.count > $1.count }
    }

    public static let none = Redactor(secrets: [])

    public func redact(_ text: String) -> String {
        guard !values.isEmpty else { return text }
        var out = text
        for value in values where out.contains(value) { out = out.replacingOccurrences(of: value, with: "***") }
        return out
    }

    public func occurs(in text: String) -> Bool {
        values.contains { text.contains($0) }
    }

    public func occurs(in value: JSONValue) -> Bool {
        guard !values.isEmpty else { return false }
        switch value {
        case .string(let s): return occurs(in: s)
        case .array(let a): return a.contains { occurs(in: $0) }
        case .object(let o): return o.members.contains { occurs(in: $0.key) || occurs(in: $0.value) }
        default: return false
        }
    }

    public func redact(_ value: JSONValue) -> JSONValue {
        guard !values.isEmpty else { return value }
        switch value {
        case .string(let s): return .string(redact(s))
        case .array(let a): return .array(a.map(redact))
        case .object(let o):
            var copy = JSONObject()
            for member in o.members { copy[redact(member.key)] = redact(member.value) }
            return .object(copy)
        default: return value
        }
    }
}
