import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A connector agent: one type, one method. Mark it `@main` and AgentKit does the rest: it reads
/// the payload, runs `run`, writes the result, maps a thrown error to its failure reason, exits
/// with the matching code, and turns SIGTERM (the host's timeout or shutdown) into cancellation.
///
///     @main struct Hello: Agent {
///         func run(_ payload: Payload, context: AgentContext) async throws -> JSON {
///             context.log("hello from \(payload.connectionId)")
///             return ["greeted": true]
///         }
///     }
public protocol Agent: Sendable {
    /// What `run` returns; stored as the task's `result`. `JSON` unless you return your own `Encodable`.
    associatedtype Output: Encodable & Sendable = JSON

    init()

    /// Does the task. Throw `AgentError` to choose the failure reason; check `Task.isCancelled`
    /// (or call `try Task.checkCancellation()`) between units of work so SIGTERM stops you cleanly.
    func run(_ payload: Payload, context: AgentContext) async throws -> Output
}

extension Agent {
    public static func main() async {
        let code = await AgentRuntime.run(Self(), sink: .standardOutput)
        exit(code)
    }
}

/// How a finished `run` turns into the last stdout message and the exit code.
enum AgentRuntime {
    static func run<A: Agent>(
        _ agent: A, sink: MessageSink, arguments: [String] = CommandLine.arguments,
        environment: [String: String] = ProcessInfo.processInfo.environment, handleSignals: Bool = true
    ) async -> Int32 {
        let payload: Payload
        do {
            payload = try Payload.load(arguments: arguments, environment: environment)
        } catch {
            return finish(.failure(error, stoppedBySignal: nil), sink: sink)
        }
        let context = AgentContext(output: sink)
        let work = Task { try await agent.run(payload, context: context) }
        let stop = handleSignals ? StopSignals(cancelling: work) : nil
        defer { stop?.disarm() }
        do {
            let output = try await work.value
            return finish(.success(try JSON(encoding: output)), sink: sink)
        } catch {
            return finish(.failure(error, stoppedBySignal: stop?.received), sink: sink)
        }
    }

    enum Outcome {
        case success(JSON)
        case failure(any Error, stoppedBySignal: String?)
    }

    static func finish(_ outcome: Outcome, sink: MessageSink) -> Int32 {
        switch outcome {
        case .success(let result):
            var message: [String: JSON] = ["type": "result", "status": "success"]
            if !result.isNull { message["result"] = result }
            sink.send(.object(message))
            return 0
        case .failure(let error, let signal):
            let failure = classify(error, stoppedBySignal: signal)
            var message: [String: JSON] = [
                "type": "result", "status": "failure", "failureReason": .string(failure.reason.rawValue), "message": .string(failure.message),
            ]
            if let seconds = failure.retryAfterSeconds { message["retryAfterSeconds"] = .number(seconds) }
            sink.send(.object(message))
            return exitCode(for: failure.reason)
        }
    }

    /// The failure reason of anything `run` can throw. An error AgentKit does not know is treated
    /// like a crash: retryable, since most unexpected errors (network, disk) are transient.
    static func classify(_ error: any Error, stoppedBySignal signal: String?) -> AgentError {
        if let signal, error is CancellationError || Task.isCancelled {
            return .retryable("stopped by \(signal) before finishing")
        }
        switch error {
        case let error as AgentError: return error
        case let error as FailureReasonConvertible: return AgentError(error.failureReason, "\(error)")
        case is CancellationError: return .retryable("cancelled before finishing")
        default: return .retryable("\(type(of: error)): \(error)")
        }
    }

    /// The exit code the host's default table maps to the same reason, so even a lost result line
    /// (stdout closed early) is classified sensibly.
    static func exitCode(for reason: FailureReason) -> Int32 {
        switch reason {
        case .retryable, .rateLimited: return 75
        case .unauthorized, .authTokenExpired, .authTokenRevoked: return 77
        case .entityNotFound, .nonRetryable, .retryLimitExceeded: return 78
        }
    }
}

/// SIGTERM and SIGINT cancel the agent's work instead of killing it, so `run` can leave its files
/// consistent. The host sends SIGKILL after its grace period anyway.
final class StopSignals: @unchecked Sendable {
    private let sources: [any DispatchSourceSignal]
    private let lock = NSLock()
    private var name: String?

    init(cancelling work: Task<some Sendable, any Error>) {
        let signals: [(number: Int32, name: String)] = [(SIGTERM, "SIGTERM"), (SIGINT, "SIGINT")]
        sources = signals.map { entry in
            signal(entry.number, SIG_IGN)
            return DispatchSource.makeSignalSource(signal: entry.number, queue: .global())
        }
        for (source, name) in zip(sources, signals.map(\.name)) {
            source.setEventHandler { [weak self] in
                self?.record(name)
                FileHandle.standardError.write(Data("agent: \(name) received; stopping\n".utf8))
                work.cancel()
            }
            source.resume()
        }
    }

    private func record(_ signal: String) {
        lock.lock()
        defer { lock.unlock() }
        if name == nil { name = signal }
    }

    var received: String? {
        lock.lock()
        defer { lock.unlock() }
        return name
    }

    func disarm() {
        for source in sources { source.cancel() }
    }
}
