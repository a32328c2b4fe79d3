import Foundation
import Testing

@testable import ConnectorHost

/// A pass's summary keeps only the last executions for the table `run` prints, oldest first, and
/// counts every one.
@Suite struct PassSummaryTests {
    @Test func keepsTheLastExecutionsInOrderAndCountsAll() {
        var summary = PassSummary()
        let total = PassSummary.shownLimit * 2 + 50
        for i in 0..<total {
            let record = TaskRecord(
                taskId: "t\(i)", taskExecutionId: "e\(i)", scanId: "s", parentTaskId: nil, connectionId: "c", handler: "h", type: "sync", trigger: .schedule,
                status: i % 3 == 0 ? .failure : .success, failureReason: i % 3 == 0 ? .retryableError : nil, exitCode: i % 3 == 0 ? 1 : 0, signal: nil,
                timedOut: false, startedAt: Date(), durationMs: 1, attempt: 1, result: nil, error: nil, stderrTail: "")
            summary.record(FinishedTask(record: record, transition: .succeeded, completion: CompletionResult(), interrupted: false))
            if i == 9 { #expect(summary.finished.map(\.record.taskId) == (0..<10).map { "t\($0)" }) }
        }
        #expect(summary.finished.map(\.record.taskId) == (total - PassSummary.shownLimit..<total).map { "t\($0)" })
        #expect(summary.notShown == total - PassSummary.shownLimit)
        #expect(summary.executions == total)
        #expect(summary.failed == (0..<total).filter { $0 % 3 == 0 }.count)
        #expect(summary.succeeded == total - summary.failed)
    }
}
