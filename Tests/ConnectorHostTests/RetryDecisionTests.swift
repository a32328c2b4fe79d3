import Foundation
import Testing

@testable import ConnectorHost

@Suite struct RetryDecisionTests {
    /// A success draws no back-off jitter (a draw is a system call); a retry draws one.
    @Test func onlyADelayDrawsItsJitter() {
        var draws = 0
        func jitter() -> Double {
            draws += 1
            return 0.5
        }
        let now = Date(timeIntervalSince1970: 1_000)
        let success = RetryDecision.decide(
            verdict: StatusVerdict(status: .success), attempt: 1, rateLimitedSoFar: 0, policy: RetryPolicy(), now: now, random: jitter())
        #expect(success.transition == .succeeded)
        #expect(draws == 0)
        let retry = RetryDecision.decide(
            verdict: StatusVerdict(status: .failure, failureReason: .retryableError), attempt: 1, rateLimitedSoFar: 0, policy: RetryPolicy(), now: now,
            random: jitter())
        guard case .retry = retry.transition else {
            Issue.record("a retryable failure on its first attempt is retried, not \(retry.transition)")
            return
        }
        #expect(draws == 1)
    }
}
