#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Turns what happened to an agent process into a task status, in the documented order
/// (PROTOCOL.md, "Status mapping"): host timeout, output cap, launch failure, the agent's failure
/// result, exit code (handler overrides, then defaults), signal, protocol violation.
public struct StatusVerdict: Sendable, Equatable {
    public var status: TaskRecord.Status
    public var failureReason: FailureReason?
    public var error: String?
    public var exitCode: Int?
    public var signal: String?
    public var timedOut = false
    /// Stopped because the host is shutting down: the task is re-queued, not failed.
    public var interrupted = false
    public var result: JSONValue?
    public var retryAfterSeconds: Double?
}

public enum StatusMapper {
    public static let defaultExitCodes: [Int32: ReportedOutcome] = [
        0: .success, 75: .failure(.retryableError), 77: .failure(.unauthorized), 78: .failure(.nonRetryableError),
        126: .failure(.nonRetryableError), 127: .failure(.nonRetryableError),
    ]

    public static func launchFailed(_ message: String) -> StatusVerdict {
        StatusVerdict(status: .failure, failureReason: .nonRetryableError, error: message)
    }

    public static func map(_ outcome: ProcessOutcome, handler: Handler, report: AgentReport, lastStderrLine: String?) -> StatusVerdict {
        var verdict = StatusVerdict(status: .failure)
        switch outcome.termination {
        case .exited(let code): verdict.exitCode = Int(code)
        case .signaled(let signal): verdict.signal = SignalNames.name(signal)
        }
        verdict.result = report.result?.result
        verdict.retryAfterSeconds = report.result?.retryAfterSeconds

        switch outcome.stoppedBy {
        case .timeout:
            verdict.failureReason = .retryableError
            verdict.timedOut = true
            verdict.error = "timed out after \(seconds(handler.timeoutSeconds))"
            return verdict
        case .outputCap:
            verdict.failureReason = .nonRetryableError
            verdict.error = "stdout exceeded maxOutputBytes (\(handler.maxOutputBytes) bytes); the agent was killed"
            return verdict
        case .cancelled:
            verdict.failureReason = .retryableError
            verdict.interrupted = true
            verdict.error = "interrupted: the host stopped the agent while shutting down"
            return verdict
        case nil:
            break
        }

        if handler.output == .nagios { return mapNagios(outcome, handler: handler, verdict: verdict) }

        if let result = report.result, result.status == .failure {
            if let name = result.failureReason, let reason = FailureReason(rawValue: name) {
                verdict.failureReason = reason
                verdict.error = result.message ?? "the agent reported \(name)"
            } else if let name = result.failureReason {
                verdict.failureReason = .nonRetryableError
                verdict.error = "unknown failureReason \"\(name)\"" + (result.message.map { ": \($0)" } ?? "")
            } else {
                verdict.failureReason = .nonRetryableError
                verdict.error = result.message ?? "the agent reported failure without a failureReason"
            }
            return verdict
        }

        switch outcome.termination {
        case .exited(let code):
            let outcome = handler.exitCodes[code] ?? defaultExitCodes[code] ?? .failure(.retryableError)
            switch outcome {
            case .success:
                if let problem = report.protocolError {
                    verdict.failureReason = .nonRetryableError
                    verdict.error = problem
                } else {
                    verdict.status = .success
                }
            case .failure(let reason):
                verdict.failureReason = reason
                let detail = report.result?.message ?? report.protocolError ?? lastStderrLine
                verdict.error = "exited with code \(code)" + (detail.map { ": \($0)" } ?? "")
            }
        case .signaled(let signal):
            verdict.failureReason = .retryableError
            verdict.error = "killed by \(SignalNames.name(signal))" + (signal == SIGKILL ? " (possibly out of memory)" : "")
        }
        return verdict
    }

    /// 0 OK, 1 WARNING → success (state kept in the result); 2 CRITICAL → RETRYABLE_ERROR;
    /// 3 UNKNOWN (and anything else) → NON_RETRYABLE_ERROR. `exitCodes` overrides apply.
    static func mapNagios(_ outcome: ProcessOutcome, handler: Handler, verdict start: StatusVerdict) -> StatusVerdict {
        var verdict = start
        let text = String(decoding: outcome.stdout, as: UTF8.self)
        let parsed = NagiosOutput.parse(text)
        switch outcome.termination {
        case .signaled(let signal):
            verdict.failureReason = .retryableError
            verdict.error = "killed by \(SignalNames.name(signal))" + (signal == SIGKILL ? " (possibly out of memory)" : "")
            return verdict
        case .exited(let code):
            let state = (0...3).contains(code) ? NagiosOutput.states[Int(code)] : "UNKNOWN"
            verdict.result = [
                "state": .string(state), "message": .string(parsed.message), "perfdata": .object(parsed.perfdata),
                "longOutput": .string(parsed.longOutput),
            ]
            let mapped: ReportedOutcome
            if let override = handler.exitCodes[code] {
                mapped = override
            } else {
                switch code {
                case 0, 1: mapped = .success
                case 2: mapped = .failure(.retryableError)
                default: mapped = .failure(.nonRetryableError)
                }
            }
            if case .failure(let reason) = mapped {
                verdict.failureReason = reason
                verdict.error = "\(state): \(parsed.message)"
            } else {
                verdict.status = .success
            }
            return verdict
        }
    }

    static func seconds(_ value: Double) -> String {
        value == value.rounded() ? "\(Int(value))s" : "\(value)s"
    }
}
