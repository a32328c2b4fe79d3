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
