import Dispatch
import Foundation
import Synchronization
import Testing

@testable import ConnectorHost

@Suite struct SupervisorThreadsTests {
    /// Every job gets a thread of its own while the others block (agents run for hours), and a
    /// thread that finished one job takes the next instead of a new thread being started.
    @Test func blockedJobsEachGetAThreadAndFinishedThreadsAreReused() {
        let threads = SupervisorThreads(idleSeconds: 30)
        let gate = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let ran = Mutex(0)
        for _ in 0..<8 {
            done.enter()
            threads.run {
                gate.wait()
                ran.withLock { $0 += 1 }
                done.leave()
            }
        }
        // All eight are blocked at once; none can finish before the others have started.
        for _ in 0..<8 { gate.signal() }
        done.wait()
        #expect(ran.withLock { $0 } == 8)
        #expect(threads.counts.started == 8)
        // A thread counts as free once it has parked (just after its job it is still on its way).
        let deadline = Date().addingTimeInterval(10)
        while threads.counts.parked < 8 && Date() < deadline { usleep(1_000) }
        #expect(threads.counts.parked == 8)

        for _ in 0..<20 {
            let one = DispatchSemaphore(value: 0)
            threads.run { one.signal() }
            one.wait()
        }
        #expect(threads.counts.started == 8, "the parked threads took the later jobs")
    }

    /// A job that posts the next one and returns: the thread back from it takes the next job
    /// itself before the parked thread woken for it has run. Those woken threads are on their
    /// way with nothing left to take, and a later job counts on them instead of starting a
    /// thread beside them (which it did once all the parked ones had been woken: 900 to 3,600
    /// threads for this chain).
    @Test func wokenThreadsLeftWithNothingToDoAreCountedOn() {
        let threads = SupervisorThreads(idleSeconds: 30)
        let gate = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        for _ in 0..<4 {
            done.enter()
            threads.run {
                gate.wait()
                done.leave()
            }
        }
        for _ in 0..<4 { gate.signal() }
        done.wait()
        let deadline = Date().addingTimeInterval(10)
        while threads.counts.parked < 4 && Date() < deadline { usleep(1_000) }
        #expect(threads.counts.started == 4 && threads.counts.parked == 4)

        let finished = DispatchSemaphore(value: 0)
        let left = Atomic(20_000)
        @Sendable func next() {
            if left.subtract(1, ordering: .relaxed).newValue == 0 { finished.signal() } else { threads.run(next) }
        }
        threads.run(next)
        finished.wait()
        // Usually still 4. A thread between its job's return and taking the next is neither
        // parked nor on its way, and cannot be counted on (a job may block for hours); on busy
        // cores all four can be preempted there at once, and the job gets a fifth (1 run in 15
        // with both cores spinning). Never the hundreds the chain started before.
        #expect(threads.counts.started <= 8, "one job at a time needs only the threads it has")
    }

    /// A thread with nothing to do leaves once its idle time is over.
    @Test func idleThreadsLeave() {
        let threads = SupervisorThreads(idleSeconds: 0.05)
        let one = DispatchSemaphore(value: 0)
        threads.run { one.signal() }
        one.wait()
        // It parks after its job, then leaves when the idle time is over.
        let deadline = Date().addingTimeInterval(10)
        while threads.counts.parked == 0 && Date() < deadline { usleep(1_000) }
        while threads.counts.parked > 0 && Date() < deadline { usleep(10_000) }
        #expect(threads.counts.parked == 0)
        let again = DispatchSemaphore(value: 0)
        threads.run { again.signal() }
        #expect(again.wait(timeout: .now() + 10) == .success, "a job after the idle exit still runs")
        #expect(threads.counts.started == 2)
    }
}
