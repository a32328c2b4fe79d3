#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// One lane's payload file, reused from agent to agent (`TaskExecutor.runLane`). The lane keeps
/// a hidden spare file (`.spare-<host pid>-<start ticks>-<id>`) open in the payload directory,
/// rewrites it for each agent and hard-links it as `<taskExecutionId>.json` while that agent
/// runs; the agent's name is unlinked after it, as ever, and the spare keeps the file.
///
/// Why: on tmpfs a new file per agent allocates an inode and a page, and its unlink frees them,
/// draining the kernel's per-CPU LRU batches: about 14 ms of the host's 320 ms of CPU for 1,000
/// one-task scans (bench/HISTORY.md). Rewriting one page is a copy.
///
/// What an agent sees is unchanged: a 0600 file, at its execution's name for as long as it runs
/// and gone afterwards. Between two agents the previous payload stays in the spare, in the same
/// private directory, until the next one overwrites it or the lane ends. A process that kept the
/// previous agent's file open could read the next payload through it; agents run as the host's
/// user and can read that directory anyway, and the stray reaper kills what an agent leaves.
///
/// Anything the spare cannot do (a full /dev/shm, a file system without hard links, a spare
/// removed under it) falls back to `PayloadFiles.write`, which never fails a task for want of a
/// place in memory. Not thread-safe: one lane's thread owns it. `close` removes the spare; a
/// host killed before it leaves one that the next start removes (`Recovery`).
final class PayloadSlot {
    let payloads: PayloadFiles
    private var spare: (descriptor: Int32, path: String)?
    /// Links failed for a reason a retry would not change (no hard links here): plain files from now on.
    private var linksUnsupported = false

    init(payloads: PayloadFiles) {
        self.payloads = payloads
    }

    deinit { close() }

    /// Writes the payload and returns its path, as `PayloadFiles.write`; remove it with
    /// `PayloadFiles.remove(path:)` once the agent is reaped.
    func write(_ payload: JSONValue, executionId: String) throws(PayloadFiles.WriteError) -> String {
        let text = PayloadFiles.text(of: payload)
        if let path = linkSpare(text, executionId: executionId) { return path }
        return try payloads.write(text: text, executionId: executionId)
    }

    /// Removes the spare. The lane calls it before its last report, so that a host whose pass
    /// has ended leaves its payload directory empty.
    func close() {
        guard let spare else { return }
        _ = closeDescriptor(spare.descriptor)
        unlink(spare.path)
        self.spare = nil
    }

    private func linkSpare(_ text: String, executionId: String) -> String? {
        guard !linksUnsupported, let spare = openSpare() else { return nil }
        guard lseek(spare.descriptor, 0, SEEK_SET) == 0, FileDescriptorIO.writeAll(spare.descriptor, text.utf8) == 0,
            ftruncate(spare.descriptor, off_t(text.utf8.count)) == 0
        else {
            // A full /dev/shm, say: the plain path knows where else to go.
            close()
            return nil
        }
        let path = PayloadFiles.file(in: payloads.root, executionId: executionId)
        if link(spare.path, path) == 0 { return path }
        let code = errno
        close()
        // ENOENT: the spare or its directory was removed under it; the next agent makes a new one.
        // EEXIST: a file of that name is there already, which the plain path reports.
        if code != ENOENT && code != EEXIST { linksUnsupported = true }
        return nil
    }

    private func openSpare() -> (descriptor: Int32, path: String)? {
        if let spare { return spare }
        let path = "\(payloads.root)/\(Self.sparePrefix)\(HostIdentity.current.pid)-\(HostIdentity.current.startTicks)-\(DeterministicID.random())"
        guard let fd = try? payloads.createPrivateFile(path, in: payloads.root, access: O_RDWR) else { return nil }
        spare = (fd, path)
        return spare
    }

    static let sparePrefix = ".spare-"

    /// Whether a directory entry is a spare of a host process that no longer runs: what a host
    /// killed before `close` left. A spare of a live process is its lane's, in use.
    static func isOrphanedSpare(_ entry: String) -> Bool {
        guard entry.hasPrefix(sparePrefix) else { return false }
        let fields = entry.dropFirst(sparePrefix.count).split(separator: "-", maxSplits: 2)
        guard fields.count == 3, let pid = Int32(fields[0]), let ticks = UInt64(fields[1]) else { return true }
        if pid == HostIdentity.current.pid && ticks == HostIdentity.current.startTicks { return false }
        return !ProcFS.isSameProcess(pid, startTicks: ticks)
    }
}
