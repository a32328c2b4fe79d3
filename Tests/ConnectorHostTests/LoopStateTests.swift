import Foundation
import Testing

@testable import ConnectorHost

@Suite struct LoopStateTests {
    func task(_ id: String, connection: String = "c") -> StoredTask {
        StoredTask(
            id: id, connectionId: connection, taskType: "t", scanId: "s", parentTaskId: nil, depth: 0, metadata: nil, checkpoint: nil, state: .queued,
            trigger: .schedule, attempt: 1, nextRunAt: Date(), rateLimitedSeconds: 0, executionId: nil, owner: nil)
    }

    /// A slot's claim answers later, on its supervisor thread; a re-read of the queue meanwhile
    /// still lists the task as queued. It must not become a candidate again: a second start
    /// would run another agent (of the same connection, through `orNextOf`) past the slot count.
    @Test func aTaskHandedToASlotIsNotACandidateAgain() {
        var state = LoopState(options: PassOptions(), started: Date())
        state.start("x", connection: "c", handler: "h")
        state.takeCandidates([task("x"), task("y"), task("z", connection: "d")])
        #expect(state.candidates.map(\.id) == ["y", "z"])
        state.release("x", connection: "c", handler: nil)
        state.takeCandidates([task("x"), task("y")])
        #expect(state.candidates.map(\.id) == ["x", "y"])
    }
}
