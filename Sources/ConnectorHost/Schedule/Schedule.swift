import Foundation

/// When a connection's root task of one type is due.
public enum Schedule: Sendable, Equatable, CustomStringConvertible {
    /// A fixed interval in seconds, measured from the previous due time.
    case every(seconds: Int)
    case cron(CronExpression, TimeZone)
    /// Never by itself: only `trigger` or `exec` run it.
    case manual

    public var description: String {
        switch self {
        case .every(let s): "every \(DurationText.format(seconds: s))"
        case .cron(let c, let tz): "cron \"\(c.text)\"" + (tz == .current ? "" : " (\(tz.identifier))")
        case .manual: "manual"
        }
    }

    /// The first due time of a schedule that has never run: at once for an interval (a new
    /// connection syncs right away), the next slot for cron.
    public func firstDue(now: Date) -> Date? {
        switch self {
        case .every: now
        case .cron(let c, let tz): c.nextFire(after: now, in: tz)
        case .manual: nil
        }
    }

    /// The due time after a tick that was due at `previousDue` and is being handled at `now`.
    /// However many slots were missed while the host was down, the caller runs one catch-up tick
    /// (systemd's Persistent=true) and the next one is the first slot after `now`.
    public func nextDue(previousDue: Date, now: Date) -> Date? {
        switch self {
        case .every(let seconds):
            let interval = TimeInterval(seconds)
            var next = previousDue.addingTimeInterval(interval)
            if next <= now {
                let missed = (now.timeIntervalSince(previousDue) / interval).rounded(.down)
                next = previousDue.addingTimeInterval(interval * (missed + 1))
            }
            return next
        case .cron(let c, let tz):
            return c.nextFire(after: max(previousDue, now), in: tz)
        case .manual:
            return nil
        }
    }
}
