#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSupport
import Foundation
import Synchronization

/// Runs one child process from spawn to reap and reports what happened.
///
/// Why not `Foundation.Process`: on Linux it signals only the pid (not the group), misses the exit
/// while a grandchild holds the pipes, deadlocks on large output when waited on before reading,
/// polls for exit, and leaves SIGPIPE ignored in the child (README, "Design").
///
/// Each run has one owner: a thread of its own (`SupervisorThreads`) that spawns with `ch_spawn`
/// (posix_spawn's semantics, own process group, default signals, empty mask, only fds 0/1/2), then runs a single `poll` over stdout, stderr, a
/// pidfd (exit, even if descendants keep the pipes) and a cancel pipe. The async caller awaits a
/// continuation, so the cooperative pool never blocks on a child.
public enum ProcessSupervisor {
    /// Pids of agents being supervised; their zombies belong to their own supervisor, so the
    /// stray reaper must leave them alone. An agent is registered just after its spawn, not
    /// under the lock during it (two lanes spawning at once queued on it): the reaper only looks
    /// at the main thread's children, and an agent is a child of its supervisor thread, so it is
    /// never among them, registered yet or not.
    static let activeAgents = Mutex<Set<Int32>>([])

    /// Orphans re-parent to the host instead of init, so descendants that escape the process
    /// group (setsid, double fork) can still be found, killed and reaped.
    static let subreaper: Bool = ch_set_child_subreaper() == 0

    /// Every agent's stdin unless the spec names a file: opened once, not once per agent.
    static let devNull: Int32 = open("/dev/null", O_RDONLY | O_CLOEXEC)

    public static func run(
        _ spec: ProcessSpec,
        onSpawn: @escaping @Sendable (SpawnedProcess) -> Void = { _ in },
        onStderrLine: @escaping @Sendable (String) -> Void = { _ in }
    ) async throws(LaunchFailure) -> ProcessOutcome {
        try await SupervisorThreads.perform { cancelFD in
            runBlocking(spec, cancelFD: cancelFD, onSpawn: onSpawn, onStderrLine: onStderrLine)
        }.get()
    }

    /// The same run on the calling thread, which it blocks until the child is reaped: for a
    /// supervisor thread only. `cancelFD` readable stops the child (SIGTERM, grace, SIGKILL).
    /// `whileRunning` is called on this thread at each `ChildMilestone`, while the child runs:
    /// work that can overlap it (its pipes hold 64 KiB meanwhile).
    static func runBlocking(
        _ spec: ProcessSpec, cancelFD: Int32, onSpawn: @escaping @Sendable (SpawnedProcess) -> Void = { _ in },
        onStderrLine: @escaping @Sendable (String) -> Void = { _ in }, whileRunning: (ChildMilestone) -> Void = { _ in }
    ) -> Result<ProcessOutcome, LaunchFailure> {
        _ = subreaper
        var run = SupervisedRun(spec: spec, cancelFD: cancelFD, onSpawn: onSpawn, onStderrLine: onStderrLine)
        return run.execute(whileRunning: whileRunning)
    }
}

/// Moments in a supervised child's life at which its supervisor can do other work.
enum ChildMilestone: Sendable {
    /// Just spawned; its output is not read yet.
    case spawned
    /// Still running after `ProcessSpec.spawnNoticeDelaySeconds` (`onSpawn` has just heard of
    /// it); never reached when that delay is zero.
    case noticed
}

/// A pipe whose write end wakes the supervising thread's poll. Closing is guarded so a late
/// cancellation never writes to a descriptor number that was reused.
final class CancellationPipe: Sendable {
    let readFD: Int32
    private let writeFD: Mutex<Int32>

    init() {
        var fds: [Int32] = [-1, -1]
        if ch_pipe_cloexec(&fds) != 0 { fds = [-1, -1] }
        readFD = fds[0]
        writeFD = Mutex(fds[1])
    }

    /// Whether `fire` has been called (the read end is readable), without waiting.
    var isFired: Bool {
        guard readFD >= 0 else { return false }
        var entry = pollfd(fd: readFD, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) > 0
    }

    func fire() {
        writeFD.withLock { fd in
            guard fd >= 0 else { return }
            var byte: UInt8 = 1
            _ = write(fd, &byte, 1)
        }
    }

    func close() {
        writeFD.withLock { fd in
            if fd >= 0 { _ = closeDescriptor(fd) }
            fd = -1
        }
        if readFD >= 0 { _ = closeDescriptor(readFD) }
    }
}

@inline(__always) func closeDescriptor(_ fd: Int32) -> Int32 {
    #if canImport(Glibc)
    return Glibc.close(fd)
    #else
    return Darwin.close(fd)
    #endif
}

/// Monotonic seconds, immune to wall-clock changes.
@inline(__always) func monotonicNow() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}

/// The state of one supervised child; lives on its supervising thread only.
struct SupervisedRun {
    let spec: ProcessSpec
    let cancelFD: Int32
    let onSpawn: @Sendable (SpawnedProcess) -> Void
    let onStderrLine: @Sendable (String) -> Void

    var stdout: OutputSpool
    var stdoutBytes = 0
    var stderrTail: [UInt8] = []
    var partialLine: [UInt8] = []
    var stoppedBy: HostStopReason?

    init(spec: ProcessSpec, cancelFD: Int32, onSpawn: @escaping @Sendable (SpawnedProcess) -> Void, onStderrLine: @escaping @Sendable (String) -> Void) {
        self.spec = spec
        self.cancelFD = cancelFD
        self.onSpawn = onSpawn
        self.onStderrLine = onStderrLine
        let payloadDirectory = spec.stdinPath.map { String($0[..<($0.lastIndex(of: "/") ?? $0.startIndex)]) }
        stdout = OutputSpool(directory: payloadDirectory.flatMap { $0.isEmpty ? nil : $0 } ?? (getenv("TMPDIR").map { String(cString: $0) } ?? "/tmp"))
    }

    mutating func execute(whileRunning: (ChildMilestone) -> Void = { _ in }) -> Result<ProcessOutcome, LaunchFailure> {
        let startedAt = Date()
        let start = monotonicNow()
        var outPipe: [Int32] = [-1, -1]
        var errPipe: [Int32] = [-1, -1]
        guard ch_pipe_cloexec(&outPipe) == 0 else { return .failure(LaunchFailure(code: errno, executable: spec.executable)) }
        guard ch_pipe_cloexec(&errPipe) == 0 else {
            let e = errno
            _ = closeDescriptor(outPipe[0]); _ = closeDescriptor(outPipe[1])
            return .failure(LaunchFailure(code: e, executable: spec.executable))
        }
        let stdinFD = spec.stdinPath.map { open($0, O_RDONLY | O_CLOEXEC) } ?? ProcessSupervisor.devNull
        var pid: pid_t = 0
        let rc: Int32 = withCStringArray(spec.arguments) { argv in
            withCStringArray(spec.environment) { envp in
                spec.workingDirectory.withOptionalCString { cwd in
                    ch_spawn(spec.executable, argv, envp, cwd, stdinFD < 0 ? 0 : stdinFD, outPipe[1], errPipe[1], &pid)
                }
            }
        }
        if rc == 0 { _ = ProcessSupervisor.activeAgents.withLock { $0.insert(pid) } }
        if spec.stdinPath != nil && stdinFD >= 0 { _ = closeDescriptor(stdinFD) }
        _ = closeDescriptor(outPipe[1])
        _ = closeDescriptor(errPipe[1])
        guard rc == 0 else {
            _ = closeDescriptor(outPipe[0]); _ = closeDescriptor(errPipe[0])
            return .failure(LaunchFailure(code: rc, executable: spec.executable))
        }
        var process = SpawnedProcess(pid: pid, processGroup: pid, startTicks: 0)
        if spec.spawnNoticeDelaySeconds <= 0 { noticeSpawn(&process) }
        whileRunning(.spawned)

        let termination = supervise(pid: pid, stdoutFD: outPipe[0], stderrFD: errPipe[0], start: start, process: &process, whileRunning: whileRunning)
        let strays = termination.strays
        flushPartialLine()
        // Reap last: until now the zombie kept its pid and group id from being reused.
        var code: Int32 = -1
        var signal: Int32 = -1
        _ = ch_wait(pid, 1, 1, &code, &signal)
        _ = ProcessSupervisor.activeAgents.withLock { $0.remove(pid) }
        // Past the cap the output is not used: it is not read back.
        if stoppedBy == .outputCap { stdout.discard() }
        let stdout = stdout.take()
        return .success(
            ProcessOutcome(
                process: process, termination: termination.status, stoppedBy: stoppedBy, stdout: stdout, stdoutBytes: stdoutBytes,
                stderrTail: stderrTail, startedAt: startedAt, durationSeconds: monotonicNow() - start, strayDescendantsKilled: strays))
    }

    /// The poll loop. Returns once the child has exited, its group and strays are killed and
    /// both pipes are drained (or a short drain deadline passed because something we could not
    /// attribute still holds them).
    private mutating func supervise(
        pid: pid_t, stdoutFD: Int32, stderrFD: Int32, start: Double, process: inout SpawnedProcess, whileRunning: (ChildMilestone) -> Void
    ) -> (status: ProcessOutcome.Termination, strays: Int) {
        let pidFD = ch_pidfd_open(pid)
        defer { if pidFD >= 0 { _ = closeDescriptor(pidFD) } }
        var fds = [
            pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: pidFD, events: Int16(POLLIN), revents: 0),
            pollfd(fd: cancelFD, events: Int16(POLLIN), revents: 0),
        ]
        let deadline = start + spec.timeoutSeconds
        var killAt: Double?  // when SIGKILL follows the SIGTERM already sent
        var noticeAt: Double? = spec.spawnNoticeDelaySeconds > 0 ? start + spec.spawnNoticeDelaySeconds : nil
        var exitStatus: ProcessOutcome.Termination?
        var drainDeadline: Double?
        var strays = 0
        // Not an array: one filled with zeros cost a 64 KiB memset per agent, and `read` fills it anyway.
        let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: 65536, alignment: 16)
        defer { buffer.deallocate() }

        while true {
            let now = monotonicNow()
            if exitStatus == nil {
                if stoppedBy == nil && now >= deadline { beginStop(.timeout, group: pid, now: now, killAt: &killAt) }
                if let k = killAt, now >= k { _ = killpg(pid, SIGKILL); killAt = nil }
                if let n = noticeAt, now >= n {
                    noticeSpawn(&process)
                    noticeAt = nil
                    whileRunning(.noticed)
                }
            }
            if let d = drainDeadline, now >= d { break }
            if exitStatus != nil && fds[0].fd < 0 && fds[1].fd < 0 { break }

            var wake = exitStatus != nil ? (drainDeadline ?? now) : (stoppedBy == nil ? deadline : (killAt ?? now + 3600))
            if pidFD < 0 && exitStatus == nil { wake = min(wake, now + 0.02) }  // no pidfd (old kernel, macOS): poll for exit
            if let n = noticeAt, exitStatus == nil { wake = min(wake, n) }
            let timeoutMs = Int32(max(0, min(3_600_000, ((wake - now) * 1000).rounded(.up))))
            let ready = poll(&fds, nfds_t(fds.count), timeoutMs)
            if ready < 0 && errno != EINTR { break }

            for index in 0..<2 where fds[index].fd >= 0 && fds[index].revents != 0 {
                let n = read(fds[index].fd, buffer.baseAddress, buffer.count)
                if n > 0 {
                    let chunk = UnsafeRawBufferPointer(rebasing: buffer[0..<n])
                    if index == 0 { takeStdout(chunk, group: pid, killAt: &killAt) } else { takeStderr(chunk) }
                } else if n == 0 || (errno != EINTR && errno != EAGAIN) {
                    _ = closeDescriptor(fds[index].fd)
                    fds[index].fd = -1
                }
            }
            if fds[3].fd >= 0 && fds[3].revents != 0 {
                fds[3].fd = -1  // one cancellation is enough
                if exitStatus == nil && stoppedBy == nil { beginStop(.cancelled, group: pid, now: monotonicNow(), killAt: &killAt) }
            }
            if exitStatus == nil && (pidFD < 0 || fds[2].revents != 0) {
                var code: Int32 = -1
                var signal: Int32 = -1
                if ch_wait(pid, 0, 0, &code, &signal) == 1 {
                    exitStatus = code >= 0 ? .exited(code) : .signaled(signal)
                    fds[2].fd = -1
                    // Whatever the agent left in its group dies with it, then anything that left
                    // the group. The pipes then reach EOF unless an unattributable process holds them.
                    _ = killpg(pid, SIGKILL)
                    strays = StrayReaper.killDescendants(marker: spec.marker, group: pid, agent: pid)
                    drainDeadline = monotonicNow() + 2
                }
            }
        }
        for index in 0..<2 where fds[index].fd >= 0 { _ = closeDescriptor(fds[index].fd) }
        return (exitStatus ?? .signaled(SIGKILL), strays)
    }

    /// Tells `onSpawn` of the child, with the start time that identifies it (read now: the child
    /// exists, alive or a zombie, until this thread reaps it).
    private func noticeSpawn(_ process: inout SpawnedProcess) {
        process.startTicks = ProcFS.stat(process.pid)?.startTicks ?? 0
        onSpawn(process)
    }

    private mutating func beginStop(_ reason: HostStopReason, group: pid_t, now: Double, killAt: inout Double?) {
        stoppedBy = reason
        if spec.killGraceSeconds <= 0 {
            _ = killpg(group, SIGKILL)
        } else {
            _ = killpg(group, SIGTERM)
            // A stopped process cannot act on SIGTERM; wake it so it can.
            _ = killpg(group, SIGCONT)
            killAt = now + spec.killGraceSeconds
        }
    }

    private mutating func takeStdout(_ chunk: UnsafeRawBufferPointer, group: pid_t, killAt: inout Double?) {
        stdoutBytes += chunk.count
        if stoppedBy == .outputCap { return }
        let room = spec.maxOutputBytes - stdout.count
        if chunk.count <= room {
            stdout.append(chunk)
        } else {
            // Over the cap: no grace, the output is already unusable.
            stoppedBy = .outputCap
            killAt = nil
            _ = killpg(group, SIGKILL)
        }
    }

    private mutating func takeStderr(_ chunk: UnsafeRawBufferPointer) {
        stderrTail.append(contentsOf: chunk)
        if stderrTail.count > 2 * spec.stderrTailBytes { stderrTail.removeFirst(stderrTail.count - spec.stderrTailBytes) }
        partialLine.append(contentsOf: chunk)
        while let newline = partialLine.firstIndex(of: UInt8(ascii: "\n")) {
            onStderrLine(String(decoding: partialLine[..<newline], as: UTF8.self))
            partialLine.removeSubrange(...newline)
        }
        // A line longer than the tail is passed on in pieces rather than held without bound.
        if partialLine.count > spec.stderrTailBytes { flushPartialLine() }
    }

    private mutating func flushPartialLine() {
        if stderrTail.count > spec.stderrTailBytes { stderrTail.removeFirst(stderrTail.count - spec.stderrTailBytes) }
        guard !partialLine.isEmpty else { return }
        onStderrLine(String(decoding: partialLine, as: UTF8.self))
        partialLine.removeAll(keepingCapacity: true)
    }
}

/// Builds a NULL-terminated `char *[]` for the duration of `body`.
func withCStringArray<R>(_ strings: [String], _ body: (UnsafePointer<UnsafeMutablePointer<CChar>?>) -> R) -> R {
    var pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
    pointers.append(nil)
    defer { for p in pointers { free(p) } }
    return pointers.withUnsafeBufferPointer { body($0.baseAddress!) }
}

extension Optional where Wrapped == String {
    func withOptionalCString<R>(_ body: (UnsafePointer<CChar>?) -> R) -> R {
        switch self {
        case .some(let s): s.withCString { body($0) }
        case .none: body(nil)
        }
    }
}
