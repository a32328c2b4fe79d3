import CSupport
import Foundation
import Testing

@testable import ConnectorHost

/// Where a host puts payload files: in memory when the machine has a private place for it, never
/// in a directory someone else could have prepared, and apart for each state directory.
@Suite(.enabled(if: ch_is_memory_filesystem("/dev/shm") == 1, "needs /dev/shm on tmpfs"))
struct PayloadFilesTests {
    /// A stand-in for /dev/shm (the real one is shared by every test and user): a fresh
    /// directory on it, so still on tmpfs.
    final class SharedMemory: @unchecked Sendable {
        let path = "/dev/shm/connector-host-tests-\(UUID().uuidString.prefix(8))"
        init() { mkdir(path, 0o1777); chmod(path, 0o1777) }
        deinit { try? FileManager.default.removeItem(atPath: path) }
    }

    @Test func payloadsGoToAPrivateDirectoryInMemoryOnePerStateDirectory() throws {
        let shm = SharedMemory()
        let disk = TemporaryDirectory()
        let first = PayloadFiles.forHost(localDirectory: disk.path + "/a/state", environment: [:], sharedMemory: shm.path)
        let second = PayloadFiles.forHost(localDirectory: disk.path + "/b/state", environment: [:], sharedMemory: shm.path)
        #expect(first.root.hasPrefix("\(shm.path)/connector-host-\(getuid())/state-"))
        #expect(first.root != second.root)
        #expect(first.legacyRoot == disk.path + "/a/state/payloads")
        // The same directory every time for the same state: a restarted host sweeps what a killed one left.
        #expect(PayloadFiles.forHost(localDirectory: disk.path + "/a/state", environment: [:], sharedMemory: shm.path).root == first.root)

        let path = try first.write(.object(["secret": .string("s3cr3t")]), executionId: "e1")
        #expect(path == first.root + "/e1.json")
        #expect(ch_is_memory_filesystem(path) == 1)
        var info = stat()
        #expect(stat(first.root, &info) == 0 && info.st_mode & 0o777 == 0o700)
        #expect(stat(path, &info) == 0 && info.st_mode & 0o777 == 0o600)
        first.remove(executionId: "e1")
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test func aRuntimeDirectoryInMemoryComesFirstAndOneOnDiskIsPassedOver() throws {
        let shm = SharedMemory()
        let runtime = shm.path + "/run-user"
        mkdir(runtime, 0o700)
        let disk = TemporaryDirectory()
        let local = disk.path + "/state"
        #expect(PayloadFiles.forHost(localDirectory: local, environment: ["XDG_RUNTIME_DIR": runtime], sharedMemory: shm.path).root.hasPrefix(runtime + "/connector-host/state-"))
        // XDG_RUNTIME_DIR on a disk: the point is memory, so /dev/shm instead.
        #expect(PayloadFiles.forHost(localDirectory: local, environment: ["XDG_RUNTIME_DIR": disk.path], sharedMemory: shm.path).root.hasPrefix(shm.path + "/"))
        // No memory file system at all: beside the state, as before.
        #expect(PayloadFiles.forHost(localDirectory: local, environment: [:], sharedMemory: disk.path + "/no-shm").root == local + "/payloads")
        // Named in plugins.json: used as given.
        #expect(PayloadFiles.forHost(localDirectory: local, configured: disk.path + "/mine", environment: ["XDG_RUNTIME_DIR": runtime], sharedMemory: shm.path).root == disk.path + "/mine")
    }

    /// /dev/shm is writable by everyone: a directory made there first by someone else, opened up,
    /// or a symlink planted in its place must not receive secrets.
    @Test func aDirectoryOthersCouldHavePreparedIsRefused() throws {
        let disk = TemporaryDirectory()
        let local = disk.path + "/state"
        let open = SharedMemory()
        mkdir("\(open.path)/connector-host-\(getuid())", 0o700)
        chmod("\(open.path)/connector-host-\(getuid())", 0o777)
        #expect(PayloadFiles.forHost(localDirectory: local, environment: [:], sharedMemory: open.path).root == local + "/payloads")

        let planted = SharedMemory()
        symlink(disk.path, "\(planted.path)/connector-host-\(getuid())")
        #expect(PayloadFiles.forHost(localDirectory: local, environment: [:], sharedMemory: planted.path).root == local + "/payloads")
    }

    /// A memory directory that cannot take the file (full, gone read-only) must not fail the task:
    /// the payload goes beside the state instead, and is removed by the path written.
    @Test func aPayloadTheMemoryDirectoryCannotTakeGoesBesideTheState() throws {
        let disk = TemporaryDirectory()
        let blocker = disk.write("not-a-directory", "")
        let payloads = PayloadFiles(root: blocker + "/payloads", legacyRoot: disk.path + "/state/payloads")
        let path = try payloads.write(.object(["k": .string("v")]), executionId: "e1")
        #expect(path == disk.path + "/state/payloads/e1.json")
        #expect(try JSONParser.parse(String(contentsOfFile: path, encoding: .utf8)) == .object(["k": .string("v")]))
        payloads.remove(path: path)
        #expect(!FileManager.default.fileExists(atPath: path))
        // Without a place on disk to fall back to, the error names the file.
        #expect(throws: PayloadFiles.WriteError.self) { try PayloadFiles(root: blocker + "/payloads").write(.null, executionId: "e2") }
    }

    /// A host that crashed before payloads moved left them beside the state: recovery sweeps there too.
    @Test func recoverySweepsTheOldLocationToo() throws {
        let shm = SharedMemory()
        let disk = TemporaryDirectory()
        let local = disk.path + "/state"
        let payloads = PayloadFiles.forHost(localDirectory: local, environment: [:], sharedMemory: shm.path)
        let old = PayloadFiles(stateDirectory: local)
        let leftovers = [try old.write(.object([:]), executionId: "old"), try payloads.write(.object([:]), executionId: "new")]
        let store = try SQLStore(path: local + "/state.sqlite")
        _ = try Recovery.recover(store: store, payloads: payloads, now: Date())
        for file in leftovers { #expect(!FileManager.default.fileExists(atPath: file), "\(file) swept") }
    }
}
