import Foundation

/// The parsed, validated `plugins.json`: what handlers exist and which connections run them.
public struct Registry: Sendable {
    /// The config file as named by the user, for messages.
    public var file: String
    /// Relative paths in the config resolve against this directory.
    public var directory: String
    /// The SQLite state file (absolute), or the PostgreSQL URL as written.
    public var statePath: String
    public var concurrency: Int
    public var shutdownGraceSeconds: Double
    public var retry: RetryPolicy
    public var limits: FanOutLimits
    public var handlers: [String: Handler]
    public var connections: [String: Connection]
    /// Alerts, notifications, retention and metrics.
    public var operations = OperationsSettings()
    /// How hard each state commit is pushed to disk (README, "Durable state and crash recovery").
    public var durability: Durability = .normal
    /// How long a claimed task stays claimed without its host's heartbeat (PostgreSQL), seconds.
    public var leaseSeconds: Double = 30
    /// Where payload files go, when plugins.json says (absolute); nil: in memory when the machine
    /// has a private place for it (`PayloadFiles.forHost`).
    public var payloadDirectory: String?

    public var stateLocation: StateLocation {
        StateLocation.isDatabaseURL(statePath) ? .postgres(PostgresURL(statePath)) : .file(path: statePath)
    }

    /// The state, for messages: a PostgreSQL URL with its password masked.
    public var stateDescription: String {
        if case .postgres(let url) = stateLocation { return url.description }
        return statePath
    }

    /// This machine's working files (payloads, the instance lock): beside the SQLite state file,
    /// or `.connector-host/` beside the config when the state is in PostgreSQL.
    public var localDirectory: String {
        if case .file(let path) = stateLocation { return (path as NSString).deletingLastPathComponent }
        return directory + "/.connector-host"
    }

    public func handler(for connection: Connection) -> Handler? { handlers[connection.handler] }
}

/// SQLite's `synchronous` setting for the state file, in WAL mode. Both survive a crash of the
/// host; they differ on power loss or a kernel crash.
public enum Durability: String, Sendable, CaseIterable {
    /// No fsync per commit: after power loss the last commits may be gone, and the tasks they
    /// recorded run again (at-least-once holds). The default: about a sixth less time per task
    /// in the benchmark (2.04 s against 2.44 s for 1,000 tasks).
    case normal
    /// An fsync per commit: a commit survives power loss.
    case full
}

public struct Handler: Sendable, Equatable {
    public enum OutputMode: String, Sendable { case json, nagios }

    public var name: String
    /// As written in the config; `command[0]` is resolved when the agent is spawned.
    public var command: [String]
    public var taskTypes: [String]
    public var output: OutputMode
    public var timeoutSeconds: Double
    public var killGraceSeconds: Double
    public var maxOutputBytes: Int
    public var env: [String: String]
    public var exitCodes: [Int32: ReportedOutcome]
    /// Absolute.
    public var workingDirectory: String
    public var inheritEnvironment: Bool
    /// Receive connection CREATED/UPDATED/DELETED events as task executions.
    public var lifecycle: Bool
    public var maxConcurrency: Int?
    public var retry: RetryPolicy?
}

public enum SecretReference: Sendable, Equatable {
    case environment(String)
    /// Absolute path.
    case file(String)

    public var sourceDescription: String {
        switch self {
        case .environment(let name): "environment variable \(name)"
        case .file(let path): "file \(path)"
        }
    }
}

public struct ScheduledTask: Sendable, Equatable {
    public var type: String
    public var schedule: Schedule
}

public struct Connection: Sendable, Equatable {
    public var id: String
    public var handler: String
    public var environment: String
    public var enabled: Bool
    public var fields: JSONObject
    /// Environment variable name → where its value comes from. Never the value itself.
    public var secrets: [String: SecretReference]
    public var tasks: [ScheduledTask]
    public var maxConcurrency: Int?
    /// The connection's config as written, canonicalised: its hash tells an UPDATE from no change.
    public var configJSON: JSONValue
}

/// How failed tasks are retried. Defaults are the reference pipeline's: start at 2 s, double,
/// cap at 30 s, five attempts in all, ±20 % jitter.
public struct RetryPolicy: Sendable, Equatable {
    public var maxAttempts: Int = 5
    public var initialIntervalSeconds: Double = 2
    public var backoffCoefficient: Double = 2
    public var maximumIntervalSeconds: Double = 30
    public var jitter: Double = 0.2
    public var maxRateLimitedSeconds: Double = 3600

    public init() {}

    /// The delay before attempt `attempt + 1` after attempt `attempt` failed, before jitter.
    public func baseDelay(afterAttempt attempt: Int) -> Double {
        let exponent = Double(max(0, attempt - 1))
        return min(maximumIntervalSeconds, initialIntervalSeconds * pow(backoffCoefficient, exponent))
    }

    /// `random` in 0..<1 spreads the delay by ±jitter.
    public func delay(afterAttempt attempt: Int, random: Double) -> Double {
        let base = baseDelay(afterAttempt: attempt)
        return max(0, base * (1 + jitter * (2 * random - 1)))
    }
}

/// Bounds on fan-out, so a buggy agent cannot flood the queue.
public struct FanOutLimits: Sendable, Equatable {
    public var maxChildrenPerTask = 10_000
    public var maxDepth = 32
    public var maxTasksPerScan = 1_000_000
    public init() {}
}
