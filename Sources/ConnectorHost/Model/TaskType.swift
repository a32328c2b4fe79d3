/// A task type: one of the eight standard ingestion types, or a custom one matching
/// `^[a-z][a-z0-9_.-]{0,254}$`.
public struct TaskType: Hashable, Sendable, Comparable, CustomStringConvertible {
    public let name: String

    public static let standard: [String] = [
        "user_ingestion_full", "user_ingestion_incremental",
        "group_ingestion_full", "group_ingestion_incremental",
        "entity_ingestion_full", "entity_ingestion_incremental",
        "relationship_ingestion_full", "relationship_ingestion_incremental",
    ]

    public init?(_ name: String) {
        guard TaskType.isValid(name) else { return nil }
        self.name = name
    }

    public var description: String { name }
    public static func < (a: TaskType, b: TaskType) -> Bool { a.name < b.name }

    static func isValid(_ name: String) -> Bool {
        let bytes = Array(name.utf8)
        guard let first = bytes.first, bytes.count <= 255, first >= UInt8(ascii: "a"), first <= UInt8(ascii: "z") else { return false }
        return bytes.dropFirst().allSatisfy { b in
            (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
                || b == UInt8(ascii: "_") || b == UInt8(ascii: ".") || b == UInt8(ascii: "-")
        }
    }
}

/// Connection and handler ids end up in paths, environment variables and logs, hence the
/// conservative alphabet `^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$`.
enum Identifier {
    static func isValid(_ id: String) -> Bool {
        let bytes = Array(id.utf8)
        guard let first = bytes.first, bytes.count <= 128, isAlnum(first) else { return false }
        return bytes.allSatisfy { isAlnum($0) || $0 == UInt8(ascii: "_") || $0 == UInt8(ascii: ".") || $0 == UInt8(ascii: "-") }
    }

    private static func isAlnum(_ b: UInt8) -> Bool {
        (b >= UInt8(ascii: "a") && b <= UInt8(ascii: "z")) || (b >= UInt8(ascii: "A") && b <= UInt8(ascii: "Z"))
            || (b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9"))
    }
}
