/// Metric counter increments on their way to `metric_counters`.
///
/// An execution adds to about fifteen counters (its outcome, the duration histogram's buckets,
/// records, the last success). Written with every task's commit, those upserts were a sixth of
/// the commit's time and a page of WAL per task. Instead they are summed here and written with
/// the first transaction at least `maxDelaySeconds` after the oldest (or once `maxPending` are
/// held), and whenever the counters are read (`metricSamples`), the host stops or the store is
/// released. The executions themselves are committed at once; a host killed outright loses at
/// most the increments of its last second (or, idle, of its last heartbeat interval).
///
/// Not thread-safe: used under the store's lock. Increments staged by a transaction count only
/// once it commits.
final class CounterBuffer {
    typealias Count = (name: String, labels: String, amount: Double)

    static let maxDelaySeconds = 1.0
    /// Counters held before they are written regardless of age: a pass over 1,000 one-task
    /// connections touches 15,000, which would otherwise all be written as the host stops.
    static let maxPending = 1_000

    private struct Key: Hashable {
        var name: String
        var labels: String
    }

    /// Increments of committed transactions, not yet written.
    private var pending: [Key: Double] = [:]
    /// Increments of the transaction under way.
    private var staged: [Key: Double] = [:]
    /// When the oldest pending increment was committed (monotonic seconds).
    private var pendingSince: Double?

    /// The gauge among the counters: it keeps its largest value instead of adding.
    let maximumName: String

    init(maximumName: String) { self.maximumName = maximumName }

    var isEmpty: Bool { pending.isEmpty && staged.isEmpty }

    func stage(_ counts: [Count]) {
        for count in counts { Self.merge(&staged, Key(name: count.name, labels: count.labels), count.amount, maximum: count.name == maximumName) }
    }

    /// Everything to write now (pending and staged) if the oldest pending increment has waited
    /// long enough, too many are held, or `force`; nil otherwise.
    func due(now: Double, force: Bool = false) -> [Count]? {
        guard !isEmpty else { return nil }
        let old = pendingSince.map { now - $0 >= Self.maxDelaySeconds } ?? false
        guard force || old || pending.count >= Self.maxPending else { return nil }
        var all = pending
        for (key, amount) in staged { Self.merge(&all, key, amount, maximum: key.name == maximumName) }
        return all.map { ($0.key.name, $0.key.labels, $0.value) }.sorted { ($0.name, $0.labels) < ($1.name, $1.labels) }
    }

    /// The transaction committed; `wrote`: it wrote what `due` returned.
    func committed(wrote: Bool, now: Double) {
        if wrote {
            pending = [:]
            pendingSince = nil
        } else if !staged.isEmpty {
            for (key, amount) in staged { Self.merge(&pending, key, amount, maximum: key.name == maximumName) }
            if pendingSince == nil { pendingSince = now }
        }
        staged = [:]
    }

    /// The transaction rolled back: its increments never happened.
    func rolledBack() { staged = [:] }

    private static func merge(_ into: inout [Key: Double], _ key: Key, _ amount: Double, maximum: Bool) {
        if let current = into[key] {
            into[key] = maximum ? max(current, amount) : current + amount
        } else {
            into[key] = amount
        }
    }
}
