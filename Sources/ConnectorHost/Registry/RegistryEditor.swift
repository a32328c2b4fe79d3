import Foundation

/// Adds members to plugins.json as text, so everything else in the file (order, spacing, the
/// user's layout) stays byte for byte as it was. Used by `new-agent`.
public enum RegistryEditor {
    public enum EditError: Error, Equatable, CustomStringConvertible {
        case notAnObject
        case sectionNotAnObject(String)
        case alreadyDefined(section: String, name: String)

        public var description: String {
            switch self {
            case .notAnObject: "the file is not one JSON object"
            case .sectionNotAnObject(let section): "\"\(section)\" is not an object"
            case .alreadyDefined(let section, let name): "\(section) already has \"\(name)\""
            }
        }
    }

    /// `text` with `"name": value` added at the end of the top-level object `section` (created
    /// when missing). The value is pretty-printed and indented like its new neighbours.
    public static func adding(_ name: String, value: JSONValue, toSection section: String, in text: String) throws(EditError) -> String {
        let bytes = Array(text.utf8)
        let scanner = Scanner(bytes: bytes)
        guard let top = scanner.objectMembers(at: scanner.skipSpace(0)) else { throw .notAnObject }
        guard let member = top.members.first(where: { $0.key == section }) else {
            return insert(member: section, value: .object(JSONObject([(name, value)])), into: bytes, object: top)
        }
        guard bytes[member.valueStart] == UInt8(ascii: "{"), let inner = scanner.objectMembers(at: member.valueStart) else {
            throw .sectionNotAnObject(section)
        }
        if inner.members.contains(where: { $0.key == name }) { throw .alreadyDefined(section: section, name: name) }
        return insert(member: name, value: value, into: bytes, object: inner)
    }

    /// Indented like the object's first member, or two spaces in from its closing brace.
    private static func insert(member name: String, value: JSONValue, into bytes: [UInt8], object: Scanner.Object) -> String {
        let closingIndent = indentation(of: object.end, in: bytes)
        let indent = object.members.first.map { indentation(of: $0.keyStart, in: bytes) } ?? closingIndent + "  "
        var rendered = ""
        JSONValue.writeString(name, to: &rendered)
        rendered += ": " + render(value, indent: indent)
        if let last = object.members.last {
            // After the last member's value: ",\n<indent>"name": {...}", the closing brace untouched.
            let head = String(decoding: bytes[..<last.valueEnd], as: UTF8.self)
            let tail = String(decoding: bytes[last.valueEnd...], as: UTF8.self)
            return head + ",\n" + indent + rendered + tail
        }
        let head = String(decoding: bytes[...object.start], as: UTF8.self)
        let tail = String(decoding: bytes[object.end...], as: UTF8.self)
        return head + "\n" + indent + rendered + "\n" + closingIndent + tail
    }

    /// Like the sample plugins.json: an object's members one per line, and short arrays and
    /// objects inside it on one line (`"taskTypes": ["full", "incremental"]`).
    static func render(_ value: JSONValue, indent: String, topLevel: Bool = true) -> String {
        let inline = inlineText(value)
        guard case .object(let object) = value, !object.isEmpty, topLevel || inline.count > 80 else { return inline }
        let inner = indent + "  "
        let members = object.members.map { member -> String in
            var key = ""
            JSONValue.writeString(member.key, to: &key)
            return inner + key + ": " + render(member.value, indent: inner, topLevel: false)
        }
        return "{\n" + members.joined(separator: ",\n") + "\n" + indent + "}"
    }

    private static func inlineText(_ value: JSONValue) -> String {
        switch value {
        case .array(let elements): return "[" + elements.map(inlineText).joined(separator: ", ") + "]"
        case .object(let object):
            return "{" + object.members.map { member in
                var key = ""
                JSONValue.writeString(member.key, to: &key)
                return key + ": " + inlineText(member.value)
            }.joined(separator: ", ") + "}"
        default: return value.serialized()
        }
    }

    /// The spaces before `offset` on its line, when only spaces precede it; else none.
    private static func indentation(of offset: Int, in bytes: [UInt8]) -> String {
        var start = offset
        while start > 0, bytes[start - 1] == UInt8(ascii: " ") || bytes[start - 1] == UInt8(ascii: "\t") { start -= 1 }
        guard start == 0 || bytes[start - 1] == UInt8(ascii: "\n") else { return "" }
        return String(decoding: bytes[start..<offset], as: UTF8.self)
    }

    /// Just enough of a JSON reader to find where members and values begin and end. The file
    /// has already been validated by the loader, so it does not report syntax errors.
    struct Scanner {
        struct Member { var key: String; var keyStart: Int; var valueStart: Int; var valueEnd: Int }
        struct Object { var start: Int; var end: Int; var members: [Member] }

        let bytes: [UInt8]

        func skipSpace(_ offset: Int) -> Int {
            var i = offset
            while i < bytes.count, [0x20, 0x09, 0x0A, 0x0D].contains(bytes[i]) { i += 1 }
            return i
        }

        /// Members of the object starting at `offset` (its `{`).
        func objectMembers(at offset: Int) -> Object? {
            guard offset < bytes.count, bytes[offset] == UInt8(ascii: "{") else { return nil }
            var members: [Member] = []
            var i = skipSpace(offset + 1)
            while i < bytes.count, bytes[i] != UInt8(ascii: "}") {
                guard bytes[i] == UInt8(ascii: "\"") else { return nil }
                let keyStart = i
                let keyEnd = skipValue(i)
                let key = (try? JSONParser.parse(String(decoding: bytes[keyStart..<keyEnd], as: UTF8.self)))?.stringValue ?? ""
                i = skipSpace(keyEnd)
                guard i < bytes.count, bytes[i] == UInt8(ascii: ":") else { return nil }
                let valueStart = skipSpace(i + 1)
                let valueEnd = skipValue(valueStart)
                members.append(Member(key: key, keyStart: keyStart, valueStart: valueStart, valueEnd: valueEnd))
                i = skipSpace(valueEnd)
                if i < bytes.count, bytes[i] == UInt8(ascii: ",") { i = skipSpace(i + 1) }
            }
            guard i < bytes.count else { return nil }
            return Object(start: offset, end: i, members: members)
        }

        /// The offset just past the value starting at `offset`.
        func skipValue(_ offset: Int) -> Int {
            var i = offset
            guard i < bytes.count else { return i }
            switch bytes[i] {
            case UInt8(ascii: "\""):
                i += 1
                while i < bytes.count, bytes[i] != UInt8(ascii: "\"") { i += bytes[i] == UInt8(ascii: "\\") ? 2 : 1 }
                return min(i + 1, bytes.count)
            case UInt8(ascii: "{"), UInt8(ascii: "["):
                var depth = 0
                while i < bytes.count {
                    switch bytes[i] {
                    case UInt8(ascii: "\""): i = skipValue(i); continue
                    case UInt8(ascii: "{"), UInt8(ascii: "["): depth += 1
                    case UInt8(ascii: "}"), UInt8(ascii: "]"):
                        depth -= 1
                        if depth == 0 { return i + 1 }
                    default: break
                    }
                    i += 1
                }
                return i
            default:
                while i < bytes.count, !",}] \t\r\n".utf8.contains(bytes[i]) { i += 1 }
                return i
            }
        }
    }
}
