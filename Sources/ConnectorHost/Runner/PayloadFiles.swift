#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSupport
import Foundation

/// The private directory (0700) where payload files live while their agent runs: one file (0600)
/// per execution, `<taskExecutionId>.json`, removed once the agent is reaped. Leftovers of a host
/// that was killed are removed at the next start. Flat, not a directory per execution: the
/// mkdir/rmdir pair was a tenth of the host's CPU profile for one-task scans (ext4 inode churn).
///
/// A host puts them in memory when it can (`forHost`): a payload lives for one agent run, carries
/// the connection's fields (never its secrets), and needs no durability (a crashed task is re-run
/// with a new one). On ext4, creating and unlinking one file per task was about 30 µs of host time
/// (journal and inode work); on tmpfs it is a page copy, and the fields never reach a disk. A lane
/// reuses one file from agent to agent (`PayloadSlot`).
public struct PayloadFiles: Sendable {
    public let root: String
    /// Where hosts before 2026-11 kept payloads, swept of leftovers too when `root` is elsewhere.
    public let legacyRoot: String?

    /// Payloads beside the state: `<stateDirectory>/payloads`.
    public init(stateDirectory: String) {
        root = stateDirectory + "/payloads"
        legacyRoot = nil
    }

    public init(root: String, legacyRoot: String? = nil) {
        self.root = root
        self.legacyRoot = legacyRoot == root ? nil : legacyRoot
    }

    /// Where a host with working files in `localDirectory` keeps payloads: `configured` when
    /// plugins.json names a directory (`payloadDirectory`); else a private directory in memory,
    /// under `$XDG_RUNTIME_DIR` or `/dev/shm`, one per local directory so two hosts on different
    /// state files never sweep each other's payloads; else `<localDirectory>/payloads`.
    public static func forHost(
        localDirectory: String, configured: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment,
        sharedMemory: String = "/dev/shm"
    ) -> PayloadFiles {
        let beside = localDirectory + "/payloads"
        if let configured { return PayloadFiles(root: configured, legacyRoot: beside) }
        var bases: [String] = []
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/"), ch_is_memory_filesystem(runtime) == 1 {
            bases.append(runtime + "/connector-host")
        }
        if ch_is_memory_filesystem(sharedMemory) == 1 { bases.append("\(sharedMemory)/connector-host-\(getuid())") }
        for base in bases where isPrivateDirectory(base, create: true) {
            return PayloadFiles(root: "\(base)/\(directoryName(for: localDirectory))", legacyRoot: beside)
        }
        return PayloadFiles(root: beside)
    }

    /// `state-1f2e3d4c5b6a7988`: the local directory's name, for a person listing the base, and a
    /// hash of its whole path, so that two `state` directories do not share one.
    static func directoryName(for localDirectory: String) -> String {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325  // FNV-1a
        for byte in localDirectory.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x100_0000_01b3
        }
        let name = (localDirectory as NSString).lastPathComponent.filter { $0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == "." }
        let hex = String(hash, radix: 16)
        return (name.isEmpty || name.hasPrefix(".") ? "state" : name) + "-" + String(repeating: "0", count: 16 - hex.count) + hex
    }

    /// A directory only this user can enter. In a world-writable parent such as /dev/shm, a name
    /// someone else made first (or a symlink planted there) is refused, not used.
    static func isPrivateDirectory(_ path: String, create: Bool) -> Bool {
        if create { _ = mkdir(path, 0o700) }
        var info = stat()
        guard lstat(path, &info) == 0 else { return false }
        return (info.st_mode & S_IFMT) == S_IFDIR && info.st_uid == getuid() && (info.st_mode & 0o077) == 0
    }

    public struct WriteError: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var code: Int32
        public var description: String { "cannot write payload \(path): \(String(cString: strerror(code)))" }
    }

    /// Writes the payload and returns its path: in `root`, or beside the state (`legacyRoot`) when
    /// `root` cannot take it (a small /dev/shm full, say): a task must not fail for want of a place
    /// in memory. Remove it by the returned path (`remove(path:)`).
    public func write(_ payload: JSONValue, executionId: String) throws(WriteError) -> String {
        try write(text: Self.text(of: payload), executionId: executionId)
    }

    /// A payload file's contents: indented, for a person reading one while its agent runs.
    static func text(of payload: JSONValue) -> String { payload.serialized(pretty: true) }

    /// `write` of a payload already serialised.
    func write(text: String, executionId: String) throws(WriteError) -> String {
        do {
            return try write(text, in: root, executionId: executionId)
        } catch {
            guard let legacyRoot else { throw error }
            return try write(text, in: legacyRoot, executionId: executionId)
        }
    }

    private func write(_ text: String, in directory: String, executionId: String) throws(WriteError) -> String {
        let path = Self.file(in: directory, executionId: executionId)
        let fd = try createPrivateFile(path, in: directory, access: O_WRONLY)
        let code = FileDescriptorIO.writeAll(fd, text.utf8)
        _ = closeDescriptor(fd)
        guard code == 0 else {
            unlink(path)
            throw WriteError(path: path, code: code)
        }
        return path
    }

    /// Creates `path` (0600; it must not exist) in `directory` and opens it with `access`, making
    /// the directory when it is missing: the first payload of this state, or the directory was
    /// removed. Once then, instead of a mkdir per task.
    func createPrivateFile(_ path: String, in directory: String, access: Int32) throws(WriteError) -> Int32 {
        var fd = open(path, access | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 && errno == ENOENT {
            try makePrivateDirectory(directory)
            fd = open(path, access | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else { throw WriteError(path: path, code: errno) }
        return fd
    }

    /// Removes a payload `write` returned.
    public func remove(path: String) {
        unlink(path)
    }

    static func file(in directory: String, executionId: String) -> String { "\(directory)/\(executionId).json" }

    /// A crashed task's payload, wherever this host or one before 2026-11 wrote it.
    public func remove(executionId: String) {
        for root in roots { unlink(Self.file(in: root, executionId: executionId)) }
    }

    /// The directories a sweep of leftovers looks in.
    public var roots: [String] { [root] + (legacyRoot.map { [$0] } ?? []) }

    /// The execution a file in `root` belongs to; nil for anything the host did not write.
    public static func executionId(ofEntry name: String) -> String? {
        name.hasSuffix(".json") ? String(name.dropLast(5)) : nil
    }

    func makePrivateDirectory(_ path: String) throws(WriteError) {
        if mkdir(path, 0o700) == 0 || errno == EEXIST { return }
        // The first payload of a PostgreSQL-backed host: no state file made the directory above.
        let parent = (path as NSString).deletingLastPathComponent
        guard errno == ENOENT, !parent.isEmpty, parent != path else { throw WriteError(path: path, code: errno) }
        try makePrivateDirectory(parent)
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw WriteError(path: path, code: errno) }
    }
}
