import Foundation
import Synchronization

/// Name-based UUIDs (RFC 4122 version 5), so the same work always gets the same id: a root task
/// per connection and type, a child per scan, parent and key. A redelivered parent re-emits its
/// children with the same ids, which is what makes at-least-once delivery safe to dedupe.
public enum DeterministicID {
    /// RFC 4122's URL namespace.
    static let urlNamespace = UUID(uuidString: "6ba7b811-9dad-11d1-80b4-00c04fd430c8")!

    public static func uuid5(namespace: UUID, name: String) -> UUID {
        let hash = uuid5Bytes(namespace: namespace, name: name)
        return UUID(uuid: (hash[0], hash[1], hash[2], hash[3], hash[4], hash[5], hash[6], hash[7], hash[8], hash[9], hash[10], hash[11], hash[12], hash[13], hash[14], hash[15]))
    }

    /// The version 5 UUID's 16 bytes (the digest's first 16, with version and variant set).
    static func uuid5Bytes(namespace: UUID, name: String) -> [UInt8] {
        let ns = namespace.uuid
        var bytes = [ns.0, ns.1, ns.2, ns.3, ns.4, ns.5, ns.6, ns.7, ns.8, ns.9, ns.10, ns.11, ns.12, ns.13, ns.14, ns.15]
        bytes.append(contentsOf: name.utf8)
        var hash = Array(SHA1.digest(bytes).prefix(16))
        hash[6] = (hash[6] & 0x0F) | 0x50
        hash[8] = (hash[8] & 0x3F) | 0x80
        return hash
    }

    /// The namespace of one host installation, derived from its appId. The last one is kept: a
    /// host has one appId, and every root and child id it makes starts from it (a SHA-1 each).
    public static func namespace(appId: String) -> UUID {
        if let cached = lastNamespace.withLock({ $0 }), cached.appId == appId { return cached.namespace }
        let namespace = uuid5(namespace: urlNamespace, name: "connector-host:\(appId)")
        lastNamespace.withLock { $0 = (appId, namespace) }
        return namespace
    }

    private static let lastNamespace = Mutex<(appId: String, namespace: UUID)?>(nil)

    public static func rootTaskId(appId: String, connectionId: String, taskType: String) -> String {
        lowercaseHex(uuid5Bytes(namespace: namespace(appId: appId), name: "root:\(connectionId):\(taskType)"))
    }

    /// uuidv5 of "<scanId>:<parentTaskId>:<key>" in the installation's namespace.
    public static func childTaskId(appId: String, scanId: String, parentTaskId: String, key: String) -> String {
        lowercaseHex(uuid5Bytes(namespace: namespace(appId: appId), name: "\(scanId):\(parentTaskId):\(key)"))
    }

    /// A new random id: a version 7 UUID (RFC 9562), milliseconds since 1970 then 74 random bits.
    /// Ids made later sort later, so the executions and scans they key are appended to their
    /// indexes instead of landing on a random page each (a page written per insert).
    public static func random() -> String {
        let milliseconds = UInt64(max(0, Date().timeIntervalSince1970 * 1000))
        let (high, low) = RandomPool.twoWords()
        var bytes = [UInt8](repeating: 0, count: 16)
        for i in 0..<6 { bytes[i] = UInt8(truncatingIfNeeded: milliseconds >> UInt64(40 - 8 * i)) }
        for i in 6..<14 { bytes[i] = UInt8(truncatingIfNeeded: high >> UInt64(8 * (i - 6))) }
        bytes[14] = UInt8(truncatingIfNeeded: low)
        bytes[15] = UInt8(truncatingIfNeeded: low >> 8)
        bytes[6] = (bytes[6] & 0x0F) | 0x70
        bytes[8] = (bytes[8] & 0x3F) | 0x80
        return lowercaseHex(bytes)
    }

    /// Lowercase hex of `bytes`. With `uuidDashes`, `8-4-4-4-12` as `UUID.uuidString.lowercased()`
    /// spells a UUID's 16 bytes, without the two intermediate strings.
    static func lowercaseHex(_ bytes: [UInt8], uuidDashes: Bool = true) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var text = [UInt8]()
        text.reserveCapacity(bytes.count * 2 + 4)
        for (i, byte) in bytes.enumerated() {
            if uuidDashes && (i == 4 || i == 6 || i == 8 || i == 10) { text.append(UInt8(ascii: "-")) }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}

/// SHA-1 (FIPS 180-4). Used only where RFC 4122 requires it and for change detection, never for security.
enum SHA1 {
    static func digest(_ message: [UInt8]) -> [UInt8] {
        var h: [UInt32] = [0x6745_2301, 0xEFCD_AB89, 0x98BA_DCFE, 0x1032_5476, 0xC3D2_E1F0]
        var data = message
        let bitLength = UInt64(message.count) * 8
        data.append(0x80)
        while data.count % 64 != 56 { data.append(0) }
        for shift in stride(from: 56, through: 0, by: -8) { data.append(UInt8(truncatingIfNeeded: bitLength >> UInt64(shift))) }
        var w = [UInt32](repeating: 0, count: 80)
        for chunk in stride(from: 0, to: data.count, by: 64) {
            for i in 0..<16 {
                let b = chunk + i * 4
                w[i] = UInt32(data[b]) << 24 | UInt32(data[b + 1]) << 16 | UInt32(data[b + 2]) << 8 | UInt32(data[b + 3])
            }
            for i in 16..<80 {
                let x = w[i - 3] ^ w[i - 8] ^ w[i - 14] ^ w[i - 16]
                w[i] = (x << 1) | (x >> 31)
            }
            var (a, b, c, d, e) = (h[0], h[1], h[2], h[3], h[4])
            for i in 0..<80 {
                let (f, k): (UInt32, UInt32)
                switch i {
                case 0..<20: (f, k) = ((b & c) | (~b & d), 0x5A82_7999)
                case 20..<40: (f, k) = (b ^ c ^ d, 0x6ED9_EBA1)
                case 40..<60: (f, k) = ((b & c) | (b & d) | (c & d), 0x8F1B_BCDC)
                default: (f, k) = (b ^ c ^ d, 0xCA62_C1D6)
                }
                let temp = ((a << 5) | (a >> 27)) &+ f &+ e &+ k &+ w[i]
                e = d
                d = c
                c = (b << 30) | (b >> 2)
                b = a
                a = temp
            }
            h[0] = h[0] &+ a
            h[1] = h[1] &+ b
            h[2] = h[2] &+ c
            h[3] = h[3] &+ d
            h[4] = h[4] &+ e
        }
        return h.flatMap { v in [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)] }
    }

    /// Lowercase hex of the digest. Not `String(format:)` per byte: through CoreFoundation that was
    /// most of a 1,000-connection reconcile.
    static func hex(_ text: String) -> String {
        DeterministicID.lowercaseHex(digest(Array(text.utf8)), uuidDashes: false)
    }
}

extension JSONValue {
    /// The same value with every object's keys sorted: equal configs serialize equally.
    public var canonical: JSONValue {
        switch self {
        case .array(let a): return .array(a.map(\.canonical))
        case .object(let o):
            return .object(JSONObject(distinctMembers: o.members.sorted { $0.key < $1.key }.map { .init(key: $0.key, value: $0.value.canonical) }))
        default: return self
        }
    }
}
