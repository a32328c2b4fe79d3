#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSupport

/// Finds and kills what a finished agent left behind outside its process group.
///
/// The host is a child subreaper, so a descendant that called setsid or double-forked comes back
/// to the host as a child once its parent is gone. Such a child belongs to the run when its
/// environment holds the run's marker, or when it sits in a group or session already killed for
/// this run (a grandchild that cleared its environment).
enum StrayReaper {
    /// Kills and reaps the run's strays; returns how many. Called while the agent itself is still
    /// an unreaped zombie, so its pid and group cannot have been reused.
    static func killDescendants(marker: String, group: Int32, agent: Int32) -> Int {
        guard ProcessSupervisor.subreaper else { return 0 }
        let hostGroup = getpgrp()
        var killedGroups: Set<Int32> = [group]
        var killed = 0
        for _ in 0..<64 {
            var found = false
            for child in ProcFS.adoptedOrphans() where child != agent {
                // Defensive: agents are children of their supervisor threads, not of the main one.
                if ProcessSupervisor.activeAgents.withLock({ $0.contains(child) }) { continue }
                guard let stat = ProcFS.stat(child) else { continue }
                if stat.isZombie {
                    reapIfStray(child, stat: stat, hostGroup: hostGroup)
                    continue
                }
                let ours = killedGroups.contains(stat.processGroup) || killedGroups.contains(stat.session)
                    || ProcFS.environment(of: child, contains: marker)
                guard ours else { continue }
                _ = kill(child, SIGKILL)
                if stat.processGroup != hostGroup && stat.processGroup > 1 {
                    _ = killpg(stat.processGroup, SIGKILL)
                    killedGroups.insert(stat.processGroup)
                }
                var code: Int32 = -1
                var signal: Int32 = -1
                _ = ch_wait(child, 1, 1, &code, &signal)
                killed += 1
                found = true
            }
            if !found { break }
        }
        return killed
    }

    /// Reaps a zombie child that no supervisor owns. Zombies in the host's own group are left
    /// alone: they may belong to other code in the process that waits for its own children.
    static func reapIfStray(_ pid: Int32, stat: ProcFS.Stat, hostGroup: Int32) {
        guard stat.processGroup != hostGroup else { return }
        ProcessSupervisor.activeAgents.withLock { active in
            guard !active.contains(pid) else { return }
            var code: Int32 = -1
            var signal: Int32 = -1
            _ = ch_wait(pid, 1, 0, &code, &signal)
        }
    }
}
