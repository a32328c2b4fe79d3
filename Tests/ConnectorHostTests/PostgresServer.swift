#if canImport(Glibc)
import Synchronization
import Glibc
#endif
import Foundation
import Testing

@testable import ConnectorHost

/// One throwaway PostgreSQL server for the whole test process (scripts/throwaway-postgres.sh:
/// initdb into a temporary directory, served on a unix socket there), stopped when the process
/// exits. Each test gets a database of its own.
enum PostgresServer {
    struct Unavailable: Error, CustomStringConvertible { var description: String }

    static let script = "\(Fixtures.packageRoot)/scripts/throwaway-postgres.sh"
    static let directory = "\(FileManager.default.temporaryDirectory.path)/connector-host-pg-\(getpid())"
    private static let started: Result<Void, Unavailable> = {
        let result = shell([script, "start", directory])
        guard result.status == 0 else {
            return .failure(Unavailable(description: "could not start a throwaway PostgreSQL (.ci/run installs the postgresql package): \(result.output)"))
        }
        atexit { _ = PostgresServer.shell([PostgresServer.script, "stop", PostgresServer.directory]) }
        return .success(())
    }()
    private static let counter = Mutex(0)

    /// A new, empty database on the shared server.
    static func database() throws -> PostgresURL {
        try started.get()
        let n = counter.withLock { value -> Int in
            value += 1
            return value
        }
        let result = shell([script, "createdb", directory, "t\(n)_\(UUID().uuidString.prefix(6).lowercased())"])
        guard result.status == 0 else { throw Unavailable(description: "createdb failed: \(result.output)") }
        return PostgresURL(result.output.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Runs bash with `arguments` and waits for it (posix_spawn and waitpid: Foundation.Process
    /// can miss the exit of a child whose grandchild, the server, lives on).
    static func shell(_ arguments: [String]) -> (status: Int32, output: String) {
        let output = "\(FileManager.default.temporaryDirectory.path)/connector-host-pg-shell-\(UUID().uuidString.prefix(8))"
        defer { try? FileManager.default.removeItem(atPath: output) }
        var actions: posix_spawn_file_actions_t = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        posix_spawn_file_actions_addopen(&actions, 1, output, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        posix_spawn_file_actions_adddup2(&actions, 1, 2)
        let argv = ["/bin/bash"] + arguments
        var pid: pid_t = 0
        let rc = withCStrings(argv + [nil]) { pointers in
            posix_spawn(&pid, "/bin/bash", &actions, nil, pointers.map { $0.map { UnsafeMutablePointer(mutating: $0) } }, environ)
        }
        guard rc == 0 else { return (127, "posix_spawn: \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        let text = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        return ((status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f), text)
    }
}

/// The backends every store conformance test runs on.
enum Backend: String, CaseIterable, CustomTestStringConvertible, Sendable {
    case sqlite, postgres
    var testDescription: String { rawValue }

    /// A fresh, empty state of this kind: a file in `directory`, or a new database.
    func freshState(in directory: TemporaryDirectory) throws -> String {
        switch self {
        case .sqlite: "\(directory.path)/state.sqlite"
        case .postgres: try PostgresServer.database().raw
        }
    }

    func open(_ state: String) throws -> SQLStore {
        StateLocation.isDatabaseURL(state) ? try SQLStore(postgres: PostgresURL(state)) : try SQLStore(path: state)
    }
}
