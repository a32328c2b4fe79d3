import Foundation
import Testing

@testable import ConnectorHost

/// `Timestamp` writes by hand what Foundation's ISO 8601 style writes: the texts must not differ,
/// or history, payloads and logs would change format with the host's version.
@Suite struct TimestampTests {
    @Test func writesWhatFoundationsISO8601StyleWrites() {
        var dates = [0, -1.5, 951_782_400.25, 1_795_542_874.12883, 1_795_542_874.9999, 1_795_542_874.0005, 4_102_444_799.999_9].map(Date.init(timeIntervalSince1970:))
        var generator = SystemRandomNumberGenerator()
        for _ in 0..<20_000 { dates.append(Date(timeIntervalSince1970: Double.random(in: 0...4_000_000_000, using: &generator))) }
        for _ in 0..<20_000 { dates.append(Date(timeIntervalSince1970: 1_795_542_874 + Double(Int.random(in: 0...100_000, using: &generator)) / 1000)) }
        var mismatches: [String] = []
        for date in dates {
            let precise = date.formatted(Date.ISO8601FormatStyle(includingFractionalSeconds: true, timeZone: .gmt))
            let short = date.formatted(Date.ISO8601FormatStyle(timeZone: .gmt))
            if Timestamp.iso8601(date) != precise || Timestamp.short(date) != short {
                mismatches.append("\(date.timeIntervalSince1970): \(Timestamp.iso8601(date)) / \(Timestamp.short(date)), Foundation \(precise) / \(short)")
            }
        }
        #expect(mismatches.prefix(5) == [])
        #expect(Timestamp.iso8601(Date(timeIntervalSince1970: 1_795_542_874.25)) == "2026-11-24T17:54:34.250Z")
        #expect(Timestamp.parse(Timestamp.iso8601(Date(timeIntervalSince1970: 1_795_542_874.5))) == Date(timeIntervalSince1970: 1_795_542_874.5))
    }
}
