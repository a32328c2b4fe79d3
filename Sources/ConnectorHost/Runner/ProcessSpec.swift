import Foundation

/// What to run and the limits to hold it to. Built by the agent runner; the supervisor knows
/// nothing about tasks or payloads.
public struct ProcessSpec: Sendable {
    /// Absolute path of the program (already resolved).
    public var executable: String
    /// argv, including argv[0].
    public var arguments: [String]
    /// "NAME=value" entries: the complete environment of the child.
    public var environment: [String]
    public var workingDirectory: String?
    /// A file to give the child as stdin; /dev/null when nil.
    public var stdinPath: String?
    public var timeoutSeconds: Double
    public var killGraceSeconds: Double
    public var maxOutputBytes: Int
    public var stderrTailBytes: Int = 64 * 1024
    /// A "NAME=value" entry of `environment` unique to this run. Descendants that leave the
    /// process group are recognised by it.
    public var marker: String
    /// How long the child runs before `onSpawn` hears of it (0: at once). The store's spawn
    /// record costs a commit and a read of `/proc`; an agent done sooner never needed one, and
    /// recovery finds an unrecorded agent by `marker` anyway.
    public var spawnNoticeDelaySeconds: Double = 0

    public init(
        executable: String, arguments: [String], environment: [String], workingDirectory: String? = nil, stdinPath: String? = nil,
        timeoutSeconds: Double, killGraceSeconds: Double, maxOutputBytes: Int, marker: String
    ) {
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.workingDirectory = workingDirectory
        self.stdinPath = stdinPath
        self.timeoutSeconds = timeoutSeconds
        self.killGraceSeconds = killGraceSeconds
        self.maxOutputBytes = maxOutputBytes
        self.marker = marker
    }
}

/// The identity of a spawned agent, recorded so that a host restarted after a crash can find and
/// stop it without ever killing an unrelated process that reused the pid. `startTicks` is 0 in
/// the outcome of a run that ended before its spawn notice (it was never read).
public struct SpawnedProcess: Sendable, Equatable {
    public var pid: Int32
    public var processGroup: Int32
    public var startTicks: UInt64
}

/// Why the host stopped the process, when it did.
public enum HostStopReason: String, Sendable {
    case timeout
    case outputCap
    case cancelled
}

public struct ProcessOutcome: Sendable {
    public enum Termination: Sendable, Equatable {
        case exited(Int32)
        case signaled(Int32)
    }

    public var process: SpawnedProcess
    public var termination: Termination
    public var stoppedBy: HostStopReason?
    /// stdout, at most `maxOutputBytes` of it.
    public var stdout: [UInt8]
    /// How many bytes the child wrote to stdout in all (more than kept when the cap was hit).
    public var stdoutBytes: Int
    public var stderrTail: [UInt8]
    public var startedAt: Date
    public var durationSeconds: Double
    /// Descendants that outlived the agent and were killed by the host.
    public var strayDescendantsKilled: Int
}

/// The child could not be started at all.
public struct LaunchFailure: Error, Sendable {
    public var code: Int32
    public var executable: String
}
