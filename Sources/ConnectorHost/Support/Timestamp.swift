#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// ISO 8601 in UTC with milliseconds, the one format the host writes.
public enum Timestamp {
    /// `2026-11-24T18:05:43.842Z`: the text of `Date.ISO8601FormatStyle(includingFractionalSeconds:
    /// true, timeZone: .gmt)`, written by hand. Foundation's style copies a calendar and a time zone
    /// per call, about 5 µs in a host between agents (cold caches), twice per task.
    public static func iso8601(_ date: Date) -> String { format(date, milliseconds: true) }

    /// To the second, for tables people read.
    public static func short(_ date: Date) -> String { format(date, milliseconds: false) }

    static func parse(_ text: String) -> Date? {
        if let d = try? Date.ISO8601FormatStyle(includingFractionalSeconds: true).parse(text) { return d }
        return try? Date.ISO8601FormatStyle().parse(text)
    }

    static func format(_ date: Date, milliseconds: Bool) -> String {
        let seconds = date.timeIntervalSince1970
        let whole = seconds.rounded(.down)
        // Truncated, as Foundation does: 59.9996 s is `59.999`, never `60.000`.
        let millis = min(999, Int(((seconds - whole) * 1000).rounded(.down)))
        var time = time_t(whole)
        var parts = tm()
        gmtime_r(&time, &parts)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(24)
        func append(_ value: Int, digits: Int, then separator: UInt8?) {
            var rest = value
            let start = bytes.count
            bytes.append(contentsOf: repeatElement(UInt8(ascii: "0"), count: digits))
            for i in stride(from: start + digits - 1, through: start, by: -1) {
                bytes[i] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
            }
            if let separator { bytes.append(separator) }
        }
        append(Int(parts.tm_year) + 1900, digits: 4, then: UInt8(ascii: "-"))
        append(Int(parts.tm_mon) + 1, digits: 2, then: UInt8(ascii: "-"))
        append(Int(parts.tm_mday), digits: 2, then: UInt8(ascii: "T"))
        append(Int(parts.tm_hour), digits: 2, then: UInt8(ascii: ":"))
        append(Int(parts.tm_min), digits: 2, then: UInt8(ascii: ":"))
        append(Int(parts.tm_sec), digits: 2, then: milliseconds ? UInt8(ascii: ".") : nil)
        if milliseconds { append(millis, digits: 3, then: nil) }
        bytes.append(UInt8(ascii: "Z"))
        return String(decoding: bytes, as: UTF8.self)
    }
}
