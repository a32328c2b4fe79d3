#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An agent's stdout as the host keeps it: in memory up to 1 MiB, beyond that in an unlinked file
/// (next to the payload), so an agent writing up to its `maxOutputBytes` cap costs the host disk
/// pages rather than resident memory. It is read back whole only when it is used, and never
/// when the cap was passed. Lives on the supervising thread only.
struct OutputSpool {
    static let inMemoryLimit = 1 << 20
    let directory: String
    /// Bytes kept so far.
    private(set) var count = 0
    private var memory: [UInt8] = []
    private var file: Int32 = -1

    init(directory: String) {
        self.directory = directory
    }

    mutating func append(_ bytes: UnsafeRawBufferPointer) {
        count += bytes.count
        if file < 0 && memory.count + bytes.count > Self.inMemoryLimit { spill() }
        if file >= 0 {
            if FileDescriptorIO.writeAll(file, bytes) == 0 { return }
            // The disk is full: back to memory, which the cap bounds anyway. What reached the
            // file is read back; the rest of this chunk follows it.
            let written = Int(lseek(file, 0, SEEK_END))
            let onDisk = written - (count - bytes.count - memory.count)
            readBack()
            memory.append(contentsOf: bytes.dropFirst(max(0, onDisk)))
            return
        }
        memory.append(contentsOf: bytes)
    }

    /// Everything kept, in order.
    mutating func take() -> [UInt8] {
        if file >= 0 { readBack() }
        defer { memory = [] }
        return memory
    }

    /// Drops what was kept (the cap was passed: the output is not used).
    mutating func discard() {
        if file >= 0 { _ = closeDescriptor(file) }
        file = -1
        memory = []
    }

    private mutating func spill() {
        var template = Array("\(directory)/.stdout-XXXXXX".utf8CString)
        let fd = template.withUnsafeMutableBufferPointer { mkstemp($0.baseAddress!) }
        guard fd >= 0 else { return }  // no file: memory it is
        // Agents spawned meanwhile get only fds 0-2 anyway (ch_spawn); this is for anything else.
        _ = fcntl(fd, F_SETFD, FD_CLOEXEC)
        _ = template.withUnsafeBufferPointer { unlink($0.baseAddress!) }
        guard FileDescriptorIO.writeAll(fd, memory) == 0 else {
            _ = closeDescriptor(fd)
            return
        }
        file = fd
        memory = []
    }

    /// The file's content followed by whatever is in memory; closes the file.
    private mutating func readBack() {
        let size = Int(lseek(file, 0, SEEK_END))
        var content = [UInt8](repeating: 0, count: max(0, size))
        var offset = 0
        while offset < content.count {
            let n = content.withUnsafeMutableBytes { pread(file, $0.baseAddress! + offset, $0.count - offset, off_t(offset)) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { break }
            offset += n
        }
        _ = closeDescriptor(file)
        file = -1
        memory = Array(content[..<offset]) + memory
    }
}
