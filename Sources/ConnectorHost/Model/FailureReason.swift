/// Why a task execution failed. The names are the reference platform's, so agents written for it
/// report the same strings; the host decides retries and pauses from them.
public enum FailureReason: String, Sendable, CaseIterable, Codable {
    case retryableError = "RETRYABLE_ERROR"
    case rateLimited = "RATE_LIMITED"
    case unauthorized = "UNAUTHORIZED"
    case authTokenExpired = "AUTH_TOKEN_EXPIRED"
    case authTokenRevoked = "AUTH_TOKEN_REVOKED"
    case entityNotFound = "ENTITY_NOT_FOUND"
    case nonRetryableError = "NON_RETRYABLE_ERROR"
    case retryLimitExceeded = "RETRY_LIMIT_EXCEEDED"

    /// The connection's credentials are the problem: stop scheduling it until someone acts.
    public var needsReauthentication: Bool {
        self == .unauthorized || self == .authTokenExpired || self == .authTokenRevoked
    }
}

/// The outcome an agent may report or a handler's `exitCodes` may map an exit code to.
public enum ReportedOutcome: Sendable, Equatable {
    case success
    case failure(FailureReason)

    /// "success" or a failure reason name, as written in `exitCodes`.
    public init?(configName: String) {
        if configName == "success" { self = .success; return }
        guard let reason = FailureReason(rawValue: configName) else { return nil }
        self = .failure(reason)
    }
}
