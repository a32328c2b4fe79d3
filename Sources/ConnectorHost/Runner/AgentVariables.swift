/// The payload's scalar values as environment variables, so an agent in plain shell needs no JSON
/// parser: field `pageSize` becomes `CONNECTOR_HOST_FIELD_PAGESIZE`, checkpoint key `commit`
/// becomes `CONNECTOR_HOST_CHECKPOINT_COMMIT` (PROTOCOL.md, "Environment").
enum AgentVariables {
    /// Longer values stay in the payload file only: the environment shares the kernel's argument
    /// space limit with the command line.
    static let maxValueBytes = 64 * 1024

    /// `whole`, when given, also carries the entire value as compact JSON.
    static func flatten(_ value: JSONValue?, prefix: String, whole: String? = nil) -> [(String, String)] {
        guard let value, !value.isNull else { return [] }
        var variables: [(String, String)] = []
        if let whole {
            let text = value.serialized()
            if text.utf8.count <= maxValueBytes { variables.append((whole, text)) }
        }
        guard let object = value.objectValue else { return variables }
        for member in object.members {
            guard let text = scalarText(member.value), text.utf8.count <= maxValueBytes, !text.utf8.contains(0) else { continue }
            variables.append((prefix + variableName(member.key), text))
        }
        return variables
    }

    /// Upper case, and every character other than A–Z and 0–9 becomes `_`.
    static func variableName(_ key: String) -> String {
        String(key.uppercased().unicodeScalars.map { ("A"..."Z").contains($0) || ("0"..."9").contains($0) ? Character($0) : "_" })
    }

    private static func scalarText(_ value: JSONValue) -> String? {
        switch value {
        case .string(let s): return s
        case .number(let n): return n
        case .bool(let b): return b ? "true" : "false"
        case .null, .array, .object: return nil
        }
    }
}
