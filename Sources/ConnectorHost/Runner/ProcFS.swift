#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// What `/proc` says about a process: enough to find a run's descendants and to recognise a
/// process again after a restart (its start time tells a reused pid apart).
public enum ProcFS {
    public struct Stat: Sendable, Equatable {
        public var state: Character
        public var parent: Int32
        public var processGroup: Int32
        public var session: Int32
        /// Clock ticks since boot (`/proc/<pid>/stat` field 22).
        public var startTicks: UInt64
        public var isZombie: Bool { state == "Z" || state == "X" }
    }

    public static func stat(_ pid: Int32) -> Stat? {
        guard let text = readSmallFile("/proc/\(pid)/stat") else { return nil }
        // The command name (field 2) may contain spaces and parentheses: parse after the last ')'.
        guard let close = text.lastIndex(of: ")") else { return nil }
        let fields = text[text.index(after: close)...].split(separator: " ")
        guard fields.count > 19, let state = fields[0].first, let parent = Int32(fields[1]), let group = Int32(fields[2]),
            let session = Int32(fields[3]), let start = UInt64(fields[19])
        else { return nil }
        return Stat(state: state, parent: parent, processGroup: group, session: session, startTicks: start)
    }

    /// Whether the process's environment holds `entry` ("NAME=value") exactly.
    public static func environment(of pid: Int32, contains entry: String) -> Bool {
        guard let bytes = readSmallFileBytes("/proc/\(pid)/environ", limit: 1 << 20) else { return false }
        let wanted = Array(entry.utf8)
        return bytes.split(separator: 0, omittingEmptySubsequences: true).contains { $0.elementsEqual(wanted) }
    }

    /// Orphans re-parented to this process (a child subreaper). The kernel hands them to the
    /// first live thread of the group, the main thread, which lives as long as the process: one
    /// file to read instead of one per thread. (Agents are children of their supervisor threads.)
    public static func adoptedOrphans() -> [Int32] {
        guard childrenOfMainThread >= 0 else { return [] }
        // Read from offset 0 each time: the kernel writes the list anew for a read from the
        // start, and `pread` leaves the shared descriptor's offset alone for other threads.
        let text = readUntilEnd(limit: 1 << 20) { buffer, offset in pread(childrenOfMainThread, buffer.baseAddress, buffer.count, off_t(offset)) }
        return text.split(separator: UInt8(ascii: " ")).compactMap { Int32(String(decoding: $0, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// `/proc/self/task/<main thread>/children`, opened once: this is read after every agent
    /// ends, and opening it each time (a walk of five /proc path components) was most of the cost.
    private static let childrenOfMainThread: Int32 = open("/proc/self/task/\(getpid())/children", O_RDONLY | O_CLOEXEC)

    /// Every pid on the machine (for scans that look for a marker in environments).
    public static func allProcesses() -> [Int32] {
        ((try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []).compactMap { Int32($0) }
    }

    /// Whether `pid` is alive and is the same process that had `startTicks`.
    public static func isSameProcess(_ pid: Int32, startTicks: UInt64) -> Bool {
        guard pid > 0, let s = stat(pid), !s.isZombie else { return false }
        return s.startTicks == startTicks
    }

    static func readSmallFile(_ path: String) -> String? {
        readSmallFileBytes(path, limit: 64 * 1024).map { String(decoding: $0, as: UTF8.self) }
    }

    static func readSmallFileBytes(_ path: String, limit: Int) -> [UInt8]? {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return readUntilEnd(limit: limit) { buffer, _ in read(fd, buffer.baseAddress, buffer.count) }
    }

    /// What `readChunk` (given a buffer and the count read so far) returns until it reports the
    /// end or an error, up to about `limit` bytes.
    private static func readUntilEnd(limit: Int, _ readChunk: (UnsafeMutableBufferPointer<UInt8>, Int) -> Int) -> [UInt8] {
        var result: [UInt8] = []
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: 4096) { buffer in
            while result.count < limit {
                let n = readChunk(buffer, result.count)
                if n < 0 && errno == EINTR { continue }
                if n <= 0 { break }
                result.append(contentsOf: buffer[0..<n])
            }
        }
        return result
    }
}
