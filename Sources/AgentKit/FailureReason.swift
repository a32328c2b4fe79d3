/// Why a task failed; the host retries, snoozes or stops according to it (README, "Retries and back-off").
public enum FailureReason: String, Sendable, CaseIterable, Codable {
    case retryable = "RETRYABLE_ERROR"
    case rateLimited = "RATE_LIMITED"
    case unauthorized = "UNAUTHORIZED"
    case authTokenExpired = "AUTH_TOKEN_EXPIRED"
    case authTokenRevoked = "AUTH_TOKEN_REVOKED"
    case entityNotFound = "ENTITY_NOT_FOUND"
    case nonRetryable = "NON_RETRYABLE_ERROR"
    case retryLimitExceeded = "RETRY_LIMIT_EXCEEDED"
}

/// Throw this from `Agent.run` to fail the task with a specific reason.
///
///     throw AgentError.rateLimited("API quota used up", retryAfterSeconds: 120)
///     throw AgentError(.entityNotFound, "folder \(path) vanished")
public struct AgentError: Error, Sendable, CustomStringConvertible {
    public var reason: FailureReason
    public var message: String
    /// With `.rateLimited`: when the source lets the agent back in.
    public var retryAfterSeconds: Double?

    public init(_ reason: FailureReason, _ message: String, retryAfterSeconds: Double? = nil) {
        self.reason = reason
        self.message = message
        self.retryAfterSeconds = retryAfterSeconds
    }

    public static func retryable(_ message: String) -> AgentError { AgentError(.retryable, message) }
    public static func rateLimited(_ message: String, retryAfterSeconds: Double? = nil) -> AgentError {
        AgentError(.rateLimited, message, retryAfterSeconds: retryAfterSeconds)
    }
    public static func unauthorized(_ message: String) -> AgentError { AgentError(.unauthorized, message) }
    public static func entityNotFound(_ message: String) -> AgentError { AgentError(.entityNotFound, message) }
    public static func nonRetryable(_ message: String) -> AgentError { AgentError(.nonRetryable, message) }

    public var description: String { "\(reason.rawValue): \(message)" }
}

/// Adopt this on your own error types to choose their failure reason without wrapping them.
public protocol FailureReasonConvertible: Error {
    var failureReason: FailureReason { get }
}
