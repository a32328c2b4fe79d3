import Foundation

/// A five-field cron expression (minute hour day-of-month month day-of-week) with lists, ranges,
/// steps, month and weekday names and the @hourly/@daily/@weekly/@monthly/@yearly shorthands.
/// Day-of-month and day-of-week combine as in Vixie cron: when both are restricted a day matching
/// either runs; when one is `*`, only the other decides.
public struct CronExpression: Sendable, Equatable, CustomStringConvertible {
    public let text: String
    let minutes: Set<Int>
    let hours: Set<Int>
    let daysOfMonth: Set<Int>
    let months: Set<Int>
    let daysOfWeek: Set<Int>  // 0 = Sunday
    let dayOfMonthRestricted: Bool
    let dayOfWeekRestricted: Bool

    public var description: String { text }

    public struct ParseError: Error, Sendable, CustomStringConvertible {
        public let message: String
        public var description: String { message }
    }

    private static let shorthands: [String: String] = [
        "@yearly": "0 0 1 1 *", "@annually": "0 0 1 1 *", "@monthly": "0 0 1 * *",
        "@weekly": "0 0 * * 0", "@daily": "0 0 * * *", "@midnight": "0 0 * * *", "@hourly": "0 * * * *",
    ]
    private static let monthNames = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]
    private static let dayNames = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"]

    public init(_ text: String) throws(ParseError) {
        self.text = text
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let expanded: String
        if trimmed.hasPrefix("@") {
            guard let e = CronExpression.shorthands[trimmed.lowercased()] else {
                throw ParseError(message: "unknown shorthand \"\(trimmed)\" (use @hourly, @daily, @weekly, @monthly or @yearly)")
            }
            expanded = e
        } else {
            expanded = trimmed
        }
        let fields = expanded.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
        guard fields.count == 5 else {
            throw ParseError(message: "expected 5 fields (minute hour day-of-month month day-of-week), found \(fields.count)")
        }
        minutes = try CronExpression.field(fields[0], name: "minute", range: 0...59, names: [])
        hours = try CronExpression.field(fields[1], name: "hour", range: 0...23, names: [])
        daysOfMonth = try CronExpression.field(fields[2], name: "day-of-month", range: 1...31, names: [])
        months = try CronExpression.field(fields[3], name: "month", range: 1...12, names: CronExpression.monthNames, nameBase: 1)
        let weekdays = try CronExpression.field(fields[4], name: "day-of-week", range: 0...7, names: CronExpression.dayNames)
        daysOfWeek = Set(weekdays.map { $0 == 7 ? 0 : $0 })
        dayOfMonthRestricted = !fields[2].hasPrefix("*")
        dayOfWeekRestricted = !fields[4].hasPrefix("*")
    }

    private static func field(_ text: String, name: String, range: ClosedRange<Int>, names: [String], nameBase: Int = 0) throws(ParseError) -> Set<Int> {
        func value(_ token: String) throws(ParseError) -> Int {
            if let n = Int(token) {
                guard range.contains(n) else {
                    throw ParseError(message: "\(name) value \(n) is out of range \(range.lowerBound)-\(range.upperBound)")
                }
                return n
            }
            if let i = names.firstIndex(of: token.lowercased()) { return i + nameBase }
            throw ParseError(message: "\(name) field: \"\(token)\" is not a number\(names.isEmpty ? "" : " or name")")
        }
        var result = Set<Int>()
        for part in text.split(separator: ",", omittingEmptySubsequences: false).map(String.init) {
            guard !part.isEmpty else { throw ParseError(message: "\(name) field \"\(text)\" has an empty list element") }
            let pieces = part.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
            guard pieces.count <= 2 else { throw ParseError(message: "\(name) field: \"\(part)\" has more than one '/'") }
            var step = 1
            if pieces.count == 2 {
                guard let s = Int(pieces[1]), s > 0 else { throw ParseError(message: "\(name) field: step \"\(pieces[1])\" must be a positive number") }
                step = s
            }
            var low: Int
            var high: Int
            if pieces[0] == "*" {
                low = range.lowerBound
                high = range.upperBound
                if name == "day-of-week" { high = 6 }
            } else if let dash = pieces[0].firstIndex(of: "-") {
                low = try value(String(pieces[0][..<dash]))
                high = try value(String(pieces[0][pieces[0].index(after: dash)...]))
                guard low <= high else { throw ParseError(message: "\(name) field: range \"\(pieces[0])\" runs backwards") }
            } else {
                low = try value(pieces[0])
                high = pieces.count == 2 ? range.upperBound : low
            }
            result.formUnion(stride(from: low, through: high, by: step))
        }
        return result
    }

    private func dayMatches(day: Int, weekday: Int) -> Bool {
        let domMatch = daysOfMonth.contains(day)
        let dowMatch = daysOfWeek.contains(weekday)
        if dayOfMonthRestricted && dayOfWeekRestricted { return domMatch || dowMatch }
        if dayOfMonthRestricted { return domMatch }
        if dayOfWeekRestricted { return dowMatch }
        return true
    }

    /// The first time strictly after `date` at which the expression fires in `timeZone`.
    /// A wall-clock time skipped by a DST change fires at the first instant after the gap; a time
    /// that happens twice when clocks go back fires once, at its first occurrence.
    public func nextFire(after date: Date, in timeZone: TimeZone) -> Date? {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let start = calendar.dateComponents([.year, .month, .day], from: date)
        guard var day = calendar.date(from: DateComponents(year: start.year, month: start.month, day: start.day, hour: 12)) else { return nil }
        let sortedHours = hours.sorted()
        let sortedMinutes = minutes.sorted()
        // Eight years covers every combination (Feb 29 on a given weekday included).
        for _ in 0..<(366 * 8) {
            let parts = calendar.dateComponents([.year, .month, .day, .weekday], from: day)
            if let month = parts.month, let dom = parts.day, let weekday = parts.weekday,
                months.contains(month), dayMatches(day: dom, weekday: weekday - 1)
            {
                for hour in sortedHours {
                    for minute in sortedMinutes {
                        let wanted = DateComponents(year: parts.year, month: month, day: dom, hour: hour, minute: minute, second: 0)
                        guard let candidate = calendar.date(from: wanted) else { continue }
                        if candidate > date { return candidate }
                    }
                }
            }
            guard let next = calendar.date(byAdding: .day, value: 1, to: day) else { return nil }
            day = next
        }
        return nil
    }
}
