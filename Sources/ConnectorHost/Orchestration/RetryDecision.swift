import Foundation

/// What happens to a task after an execution, by failure reason (README, "Retries"):
///
/// | reason | next |
/// |---|---|
/// | RETRYABLE_ERROR, timeout, signal | retried with back-off; RETRY_LIMIT_EXCEEDED when attempts run out |
/// | RATE_LIMITED | snoozed for retryAfterSeconds (else the back-off), no attempt used, bounded in total |
/// | UNAUTHORIZED, AUTH_TOKEN_EXPIRED, AUTH_TOKEN_REVOKED | failed; the connection needs re-auth |
/// | ENTITY_NOT_FOUND, NON_RETRYABLE_ERROR, RETRY_LIMIT_EXCEEDED | failed |
public enum RetryDecision {
    public struct Decision: Sendable, Equatable {
        public var transition: TaskTransition
        public var pauseConnection: String?
    }

    /// `random` (the back-off's jitter, in 0..<1) is drawn only for a delay: most executions
    /// succeed, and a draw is a system call.
    public static func decide(
        verdict: StatusVerdict, attempt: Int, rateLimitedSoFar: Double, policy: RetryPolicy, now: Date, random: @autoclosure () -> Double = Double.random(in: 0..<1)
    ) -> Decision {
        if verdict.status != .failure { return Decision(transition: .succeeded) }
        if verdict.interrupted { return Decision(transition: .requeue) }
        let reason = verdict.failureReason ?? .nonRetryableError
        let error = verdict.error
        switch reason {
        case .retryableError:
            guard attempt < policy.maxAttempts else {
                return Decision(transition: .failed(.retryLimitExceeded, "gave up after \(attempt) attempt\(attempt == 1 ? "" : "s"): \(error ?? reason.rawValue)"))
            }
            let delay = policy.delay(afterAttempt: attempt, random: random())
            return Decision(transition: .retry(at: now.addingTimeInterval(delay), attempt: attempt + 1))
        case .rateLimited:
            let wait = max(0, verdict.retryAfterSeconds ?? policy.delay(afterAttempt: attempt, random: random()))
            guard rateLimitedSoFar + wait <= policy.maxRateLimitedSeconds else {
                let total = Int(rateLimitedSoFar + wait)
                return Decision(transition: .failed(.retryLimitExceeded, "rate limited for \(total)s in total, over maxRateLimitedSeconds (\(Int(policy.maxRateLimitedSeconds))s)"))
            }
            return Decision(transition: .snooze(until: now.addingTimeInterval(wait), addingRateLimitedSeconds: wait))
        case .unauthorized, .authTokenExpired, .authTokenRevoked:
            return Decision(transition: .failed(reason, error), pauseConnection: "\(reason.rawValue): \(error ?? "authentication failed")")
        case .entityNotFound, .nonRetryableError, .retryLimitExceeded:
            return Decision(transition: .failed(reason, error))
        }
    }
}
