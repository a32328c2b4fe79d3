#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// The private directory where payload files live while their agent runs: one directory (0700)
/// per execution holding `payload.json` (0600), removed once the agent is reaped. Leftovers of a
/// host that was killed are removed at the next start.
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
        try makePrivateDirectory(root)
        let directory = "\(root)/\(executionId)"
        try makePrivateDirectory(directory)
        let path = "\(directory)/payload.json"
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw WriteError(path: path, code: errno) }
        defer { _ = closeDescriptor(fd) }
        let code = FileDescriptorIO.writeAll(fd, payload.serialized(pretty: true).utf8)
        guard code == 0 else { throw WriteError(path: path, code: code) }
        return path
    }

    public func remove(executionId: String) {
        try? FileManager.default.removeItem(atPath: "\(root)/\(executionId)")
    }

    /// Removes every payload directory; only call while holding the state lock with no agent running.
    @discardableResult
    public func removeLeftovers() -> Int {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: root)) ?? []
        for entry in entries { try? FileManager.default.removeItem(atPath: "\(root)/\(entry)") }
        return entries.count
    }

    func makePrivateDirectory(_ path: String) throws(WriteError) {
        if mkdir(path, 0o700) != 0 && errno != EEXIST { throw WriteError(path: path, code: errno) }
    }
}
