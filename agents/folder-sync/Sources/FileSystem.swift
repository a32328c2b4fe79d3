import AgentKit
import Foundation

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The few filesystem facts folder-sync needs, read with lstat/opendir so that errno decides the
/// failure reason (a vanished folder is not a permission problem).
enum FileSystem {
    struct Entry {
        var name: String
        var isDirectory: Bool
        var isFile: Bool
        var size: Int
        /// Seconds since 1970, with the nanoseconds the filesystem keeps.
        var mtime: Double
    }

    struct Failure: Error {
        var path: String
        var code: Int32
        var description: String { "\(path): \(String(cString: strerror(code)))" }
    }

    static func entry(_ path: String, name: String) throws(Failure) -> Entry {
        var info = stat()
        guard lstat(path, &info) == 0 else { throw Failure(path: path, code: errno) }
        let kind = info.st_mode & S_IFMT
        #if canImport(Darwin)
        let mtime = Double(info.st_mtimespec.tv_sec) + Double(info.st_mtimespec.tv_nsec) / 1e9
        #else
        let mtime = Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9
        #endif
        return Entry(name: name, isDirectory: kind == S_IFDIR, isFile: kind == S_IFREG, size: Int(info.st_size), mtime: mtime)
    }

    /// A folder's entries, sorted by name; symbolic links are neither files nor folders here.
    static func list(_ path: String) throws(Failure) -> [Entry] {
        guard let directory = opendir(path) else { throw Failure(path: path, code: errno) }
        defer { closedir(directory) }
        var entries: [Entry] = []
        while let raw = readdir(directory) {
            let name = withUnsafeBytes(of: raw.pointee.d_name) { String(cString: $0.bindMemory(to: CChar.self).baseAddress!) }
            if name == "." || name == ".." { continue }
            // An entry removed between readdir and lstat is simply not there any more.
            guard let entry = try? entry(path + "/" + name, name: name) else { continue }
            entries.append(entry)
        }
        return entries.sorted { $0.name < $1.name }
    }

    /// Hex SHA-256 of a file's contents, read in 64 KiB blocks.
    static func sha256(_ path: String) throws(Failure) -> String {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw Failure(path: path, code: errno) }
        defer { close(fd) }
        var digest = SHA256()
        var buffer = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw Failure(path: path, code: errno)
            }
            if count == 0 { break }
            buffer.withUnsafeBytes { digest.update(UnsafeRawBufferPointer(rebasing: $0.prefix(count))) }
        }
        return digest.finalize()
    }

    /// Writes `text` to `path` through a temporary name, so a reader (or a redelivered task) never
    /// sees half a file.
    static func replace(_ path: String, with text: String) throws {
        let temporary = (path as NSString).deletingLastPathComponent + "/." + (path as NSString).lastPathComponent + ".tmp"
        try Data(text.utf8).write(to: URL(fileURLWithPath: temporary))
        guard rename(temporary, path) == 0 else { throw Failure(path: path, code: errno) }
    }
}
