#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The private directory (0700) where payload files live while their agent runs: one file (0600)
/// per execution, `<taskExecutionId>.json`, removed once the agent is reaped. Leftovers of a host
/// that was killed are removed at the next start. Flat, not a directory per execution: the
/// mkdir/rmdir pair was a tenth of the host's CPU profile for one-task scans (ext4 inode churn).
public struct PayloadFiles: Sendable {
    public let root: String

    public init(stateDirectory: String) {
        root = stateDirectory + "/payloads"
    }

    public struct WriteError: Error, Sendable, CustomStringConvertible {
        public var path: String
        public var code: Int32
        public var description: String { "cannot write payload \(path): \(String(cString: strerror(code)))" }
    }

    /// Writes the payload and returns its path.
    public func write(_ payload: JSONValue, executionId: String) throws(WriteError) -> String {
        let path = self.path(executionId: executionId)
        var fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        if fd < 0 && errno == ENOENT {
            // The first payload of this state (or the directory was removed): make it, once,
            // instead of a mkdir per task.
            try makePrivateDirectory(root)
            fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        }
        guard fd >= 0 else { throw WriteError(path: path, code: errno) }
        defer { _ = closeDescriptor(fd) }
        let code = FileDescriptorIO.writeAll(fd, payload.serialized(pretty: true).utf8)
        guard code == 0 else { throw WriteError(path: path, code: code) }
        return path
    }

    public func path(executionId: String) -> String { "\(root)/\(executionId).json" }

    public func remove(executionId: String) {
        unlink(path(executionId: executionId))
    }

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
