#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Re-queues tasks left running by a host that is gone (at-least-once): their agents are killed
/// first, identified by pid and start time (so a reused pid is never killed) and by the
/// execution marker in their environment (covering a crash between spawn and its record).
public enum Recovery {
    public struct Recovered: Sendable, Equatable {
        public var taskId: String
        public var hostPid: Int32
        public var agentsKilled: Int
    }

    public static func recover(store: any Store, payloads: PayloadFiles, now: Date) throws(StoreError) -> [Recovered] {
        var recovered: [Recovered] = []
        var liveExecutions = Set<String>()
        let machine = HostIdentity.current.machine
        for task in try store.runningTasks() {
            let owner = task.owner
            // Pids mean nothing across machines: a claim made elsewhere is taken back when its
            // lease runs out (LeaseKeeper), not here.
            if store.isShared, let other = owner?.machine, other != machine { continue }
            if let owner, owner.hostPid == getpid() || ProcFS.isSameProcess(owner.hostPid, startTicks: owner.hostStartTicks) {
                // Another live host process (an `exec`, say) is running it.
                if let id = task.executionId { liveExecutions.insert(id) }
                continue
            }
            let killed = stopLeftovers(of: owner, executionId: task.executionId, payloads: payloads)
            let note = "host pid \(owner?.hostPid ?? 0) stopped while the task was running; re-queued"
            try store.requeueInterrupted(taskId: task.id, note: note, now: now)
            recovered.append(Recovered(taskId: task.id, hostPid: owner?.hostPid ?? 0, agentsKilled: killed))
        }
        // Payload files of executions no live host runs are leftovers of a crash. (A directory
        // named by an execution id is the per-execution layout of hosts before 2026-11.) Not on a
        // shared state: another host on this machine may be writing one for a claim made since.
        // A lane's spare file (`PayloadSlot`) is a leftover once its host process is gone, on
        // either kind of state.
        for root in payloads.roots {
            let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
            for entry in entries {
                let leftover =
                    entry.hasPrefix(PayloadSlot.sparePrefix)
                    ? PayloadSlot.isOrphanedSpare(entry)
                    : !store.isShared && !liveExecutions.contains(PayloadFiles.executionId(ofEntry: entry) ?? entry)
                if leftover { try? FileManager.default.removeItem(atPath: "\(root)/\(entry)") }
            }
        }
        return recovered
    }

    /// Kills the agent a dead host on this machine left behind (by pid and start time, and by the
    /// execution marker in its environment) and removes its payload file. Returns how many
    /// processes were killed.
    static func stopLeftovers(of owner: TaskOwner?, executionId: String?, payloads: PayloadFiles) -> Int {
        var killed = 0
        if let agent = owner?.agent, ProcFS.isSameProcess(agent.pid, startTicks: agent.startTicks) {
            _ = killpg(agent.processGroup, SIGKILL)
            killed += 1
        }
        if let executionId {
            killed += killMarked("CONNECTOR_HOST_TASK_EXECUTION_ID=\(executionId)")
            payloads.remove(executionId: executionId)
        }
        return killed
    }

    /// Kills every process carrying the marker (and its group). Returns how many.
    static func killMarked(_ marker: String) -> Int {
        var killed = 0
        for pid in ProcFS.allProcesses() where pid != getpid() {
            guard let stat = ProcFS.stat(pid), !stat.isZombie, ProcFS.environment(of: pid, contains: marker) else { continue }
            if stat.processGroup != getpgrp() && stat.processGroup > 1 { _ = killpg(stat.processGroup, SIGKILL) }
            _ = kill(pid, SIGKILL)
            killed += 1
        }
        return killed
    }
}
