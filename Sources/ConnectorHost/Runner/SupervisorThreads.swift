import CSupport
import Foundation

/// The threads that supervise agents, kept parked between runs.
///
/// Each running agent has one thread of its own from spawn to reap (it blocks in `poll`, so it
/// cannot be a thread of the async pool). Starting a fresh thread per agent cost a clone, a stack
/// mapping and its teardown every time: a tenth of the host's time on no-op agents. A finished
/// thread waits here for the next agent instead, and leaves after a while without one.
final class SupervisorThreads: @unchecked Sendable {
    static let shared = SupervisorThreads(idleSeconds: 30)

    private let idleSeconds: Double
    // All below guarded by `condition`.
    private let condition = NSCondition()
    private var jobs: [@Sendable () -> Void] = []
    private var parked = 0
    /// Parked threads already told to wake for a job (so two jobs never count on one thread).
    private var wakeups = 0
    /// New threads not yet at their first job.
    private var starting = 0
    private var started = 0

    init(idleSeconds: Double) { self.idleSeconds = idleSeconds }

    /// Runs `job` on a supervisor thread: a parked one if any, else a new one. A job may block
    /// for hours, so every queued job has a thread on its way to it (woken, or starting). A
    /// thread back from its job takes a queued one first and can leave a woken thread with
    /// nothing to take; that thread still counts, or a chain of jobs that each post the next
    /// would start threads by the hundred.
    func run(_ job: @escaping @Sendable () -> Void) {
        condition.lock()
        jobs.append(job)
        let needed = jobs.count > wakeups + starting
        let wakeParked = needed && parked > wakeups
        let startNew = needed && !wakeParked
        if wakeParked {
            wakeups += 1
            condition.signal()
        }
        if startNew {
            starting += 1
            started += 1
        }
        condition.unlock()
        if startNew {
            Thread { [self] in
                // Named from inside: on Linux, Thread.name set before start never reaches the
                // kernel, and `top -H` or `perf` would show the creating pool thread's name.
                ch_name_thread("ch-supervisor")
                // The kernel sends an agent's SIGCHLD to this thread, its parent. Blocked here
                // (threads inherit the pool's mask) it was queued for the process and woke the
                // main thread, parked in sigsuspend, once per agent for nothing: exits are seen
                // through pidfds, and an unblocked SIGCHLD with its default action is dropped.
                ch_unblock_child_signal()
                work()
            }.start()
        }
    }

    /// Runs `body` on a supervisor thread and awaits its result; the one hop an agent's run costs.
    /// `body` gets the read end of a pipe that becomes readable when the calling task is
    /// cancelled, so a `poll` there wakes for it.
    static func perform<T: Sendable>(_ body: @escaping @Sendable (_ cancelFD: Int32) -> T) async -> T {
        let cancel = CancellationPipe()
        let result = await withTaskCancellationHandler {
            await withCheckedContinuation { continuation in
                let readFD = cancel.readFD
                shared.run { continuation.resume(returning: body(readFD)) }
            }
        } onCancel: {
            cancel.fire()
        }
        cancel.close()
        return result
    }

    /// Threads started so far, and threads parked now (for tests).
    var counts: (started: Int, parked: Int) {
        condition.lock()
        defer { condition.unlock() }
        return (started, parked)
    }

    private func work() {
        condition.lock()
        starting -= 1
        while true {
            if !jobs.isEmpty {
                let job = jobs.removeFirst()
                condition.unlock()
                job()
                condition.lock()
                continue
            }
            parked += 1
            let signalled = condition.wait(until: Date(timeIntervalSinceNow: idleSeconds))
            parked -= 1
            if wakeups > 0 {
                wakeups -= 1
            } else if !signalled && jobs.isEmpty {
                break
            }
        }
        condition.unlock()
    }
}
