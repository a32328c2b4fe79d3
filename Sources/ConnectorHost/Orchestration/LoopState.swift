import Foundation

/// The loop's bookkeeping: what runs, what could run next, and pending timers.
struct LoopState {
    let options: PassOptions
    /// The supervisor lanes at work, by id: one agent each at a time.
    var lanes: [Int: Lane] = [:]
    var laneCount = 0
    /// Every task handed to a lane, running or reserved: they count against the limits and are
    /// not candidates again.
    var running: [String: (connection: String, handler: String?)] = [:]
    var runningPerConnection: [String: Int] = [:]
    var runningPerHandler: [String: Int] = [:]
    var lastStarted: [String: Int] = [:]
    var starts = 0
    var candidates = CandidateList()
    var candidatesStale = true
    var mayHaveMore = true
    /// Work was queued since the candidates were read, by another host or a sweep's later batch.
    var queuedElsewhere = false
    var timer: Date?
    var nextScheduleDue: Date?
    /// The sweep of due ticks under way, and whether another was asked for meanwhile.
    var sweep: DueSweep?
    var sweepAgain = false
    var draining = false
    /// One notifier delivery at a time; an alert raised meanwhile asks for another round.
    var notifying = false
    var notifyAgain = false

    let started: Date
    var done = 0
    var failed = 0
    /// The queue depth last shown by the progress line, and when it was counted.
    var queued = 0
    var queueCountedAt = Date.distantPast

    init(options: PassOptions, started: Date) {
        self.options = options
        self.started = started
    }

    mutating func start(_ taskId: String, connection: String, handler: String?) {
        running[taskId] = (connection, handler)
        runningPerConnection[connection, default: 0] += 1
        if let handler { runningPerHandler[handler, default: 0] += 1 }
        starts += 1
        lastStarted[connection] = starts
    }

    /// Freshly read runnable tasks become the candidates, less those already handed to a slot:
    /// a slot's claim is made on its supervisor thread, so until it answers the task still reads
    /// as queued, and starting it again would run two agents in one slot's name.
    mutating func takeCandidates(_ ready: [StoredTask]) {
        candidates = CandidateList(ready.filter { running[$0.id] == nil })
    }

    mutating func release(_ taskId: String, connection: String, handler: String?) {
        guard let entry = running.removeValue(forKey: taskId) else { return }
        runningPerConnection[connection, default: 1] -= 1
        if let h = entry.handler ?? handler { runningPerHandler[h, default: 1] -= 1 }
    }

    /// The candidate to start next within every limit: its connection has the fewest running
    /// tasks, then was served least recently; within a connection, the oldest task.
    func pickIndex(registry: Registry) -> Int? {
        var best: (index: Int, running: Int, last: Int)?
        // Connections whose oldest candidate was looked at. Filled only past the first candidate
        // that cannot start at once: most picks return the first, with no set to allocate.
        var seen = Set<String>()
        for index in candidates.indices {
            let task = candidates[index]
            if !seen.isEmpty && seen.contains(task.connectionId) { continue }
            guard let connection = registry.connections[task.connectionId] else { return index }
            let onConnection = runningPerConnection[connection.id, default: 0]
            let last = lastStarted[connection.id, default: 0]
            let limited =
                connection.maxConcurrency.map { onConnection >= $0 } == true
                || registry.handlers[connection.handler]?.maxConcurrency.map { runningPerHandler[connection.handler, default: 0] >= $0 } == true
            // Idle and never started this pass: nothing can beat it, so stop looking (the list
            // can hold thousands of one-task connections).
            if !limited && onConnection == 0 && last == 0 { return index }
            seen.insert(task.connectionId)
            if limited { continue }
            if best == nil || onConnection < best!.running || (onConnection == best!.running && last < best!.last) {
                best = (index, onConnection, last)
            }
        }
        return best?.index
    }

    /// Wakes the loop at `date`, unless an earlier wake is already pending.
    mutating func arm(_ date: Date, group: inout TaskGroup<Scheduler.Event>) {
        if let timer, timer <= date { return }
        timer = date
        group.addTask {
            let delay = date.timeIntervalSinceNow
            if delay > 0 { try? await Task.sleep(for: .milliseconds(Int((delay * 1000).rounded(.up)))) }
            return .timer(date)
        }
    }

    mutating func notify(_ operations: HostOperations, group: inout TaskGroup<Scheduler.Event>) {
        // Without a notifier there is nothing to deliver: no task for it at every scan's end.
        guard operations.notifier != nil else { return }
        if notifying {
            notifyAgain = true
            return
        }
        notifying = true
        group.addTask {
            await operations.notify()
            return .notified
        }
    }
}

/// How far a pass is, for a progress line.
public struct PassProgress: Sendable, Equatable {
    public var running: Int
    public var queued: Int
    public var done: Int
    public var failed: Int
    public var elapsed: Double
}
