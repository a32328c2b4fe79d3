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

    /// Starts take the front of the list in O(1); a task put back is tried first again, and a
    /// removal further in keeps the order of the rest.
    @Test func candidatesKeepTheirOrderAsTheyAreTakenAndPutBack() {
        var list = CandidateList([task("a"), task("b"), task("c"), task("d")])
        #expect(list.remove(at: list.startIndex).id == "a")
        #expect(list.map(\.id) == ["b", "c", "d"])
        list.putBack(task("a"))
        #expect(list.map(\.id) == ["a", "b", "c", "d"])
        #expect(list.remove(at: list.startIndex + 2).id == "c")
        #expect(list.map(\.id) == ["a", "b", "d"])
        for expected in ["a", "b", "d"] { #expect(list.remove(at: list.startIndex).id == expected) }
        #expect(list.isEmpty)
        list.putBack(task("e"))
        #expect(list.map(\.id) == ["e"])
    }

    /// The pick: a connection at its limit is passed over, later candidates of it too; among the
    /// rest, the one with the fewest running tasks, then the one served least recently.
    @Test func pickPassesOverALimitedConnectionAndPrefersTheLeastBusy() {
        var limited = makeConnection(id: "limited")
        limited.maxConcurrency = 1
        let registry = Registry(
            file: "plugins.json", directory: "/tmp", statePath: "/tmp/state.sqlite", concurrency: 4, shutdownGraceSeconds: 1, retry: RetryPolicy(),
            limits: FanOutLimits(), handlers: ["test-handler": makeHandler(["/bin/true"])],
            connections: ["limited": limited, "busy": makeConnection(id: "busy"), "calm": makeConnection(id: "calm")])
        var state = LoopState(options: PassOptions(), started: Date())
        state.start("l0", connection: "limited", handler: "test-handler")
        state.start("b0", connection: "busy", handler: "test-handler")
        state.start("b1", connection: "busy", handler: "test-handler")
        state.start("c0", connection: "calm", handler: "test-handler")
        state.takeCandidates([task("l1", connection: "limited"), task("b2", connection: "busy"), task("l2", connection: "limited"), task("c1", connection: "calm")])
        #expect(state.pickIndex(registry: registry).map { state.candidates[$0].id } == "c1")
        // Nothing but the limited connection's tasks: none can start.
        state.takeCandidates([task("l1", connection: "limited"), task("l2", connection: "limited")])
        #expect(state.pickIndex(registry: registry) == nil)
        // An idle connection never started this pass goes first, wherever it is in the list.
        state.takeCandidates([task("b2", connection: "busy"), task("n1", connection: "new")])
        let withNew = Registry(
            file: registry.file, directory: registry.directory, statePath: registry.statePath, concurrency: 4, shutdownGraceSeconds: 1, retry: RetryPolicy(),
            limits: FanOutLimits(), handlers: registry.handlers, connections: registry.connections.merging(["new": makeConnection(id: "new")]) { a, _ in a })
        #expect(state.pickIndex(registry: withNew).map { state.candidates[$0].id } == "n1")
    }
}
