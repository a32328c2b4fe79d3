// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ConnectorHost",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "connector-host", targets: ["connector-host"]),
        .library(name: "ConnectorHost", targets: ["ConnectorHost"]),
        // For agents written in Swift: the payload, the messages, errors to failure reasons, SIGTERM.
        .library(name: "AgentKit", targets: ["AgentKit"]),
    ],
    targets: [
        // SQLite is the real database, used through the system library (Debian: libsqlite3-dev).
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        // PostgreSQL, for several hosts sharing one queue, through libpq: its header at build
        // time (Debian: libpq-dev), the library loaded at the first connection (`LibPQ.swift`),
        // so not linked: no pkgConfig, whose flags would link it. shim.h finds the header.
        .systemLibrary(
            name: "CPostgreSQL",
            providers: [.apt(["libpq-dev"]), .brew(["libpq"])]
        ),
        // The few Linux calls Swift cannot make directly: variadic prctl, pidfd_open,
        // waitid's siginfo union, pipe2, and posix_spawn's GNU file actions.
        .target(name: "CSupport"),
        // A VFS over SQLite's default one that writes a commit's WAL frames in one write.
        .target(name: "CSQLiteVFS", dependencies: ["CSQLite"]),
        .target(
            name: "ConnectorHost",
            dependencies: ["CSQLite", "CSQLiteVFS", "CPostgreSQL", "CSupport"]
        ),
        .executableTarget(
            name: "connector-host",
            // folder-sync is not linked in: naming it builds the sample agent with the host, so
            // `swift run connector-host run` finds .build/<configuration>/folder-sync ready.
            dependencies: ["ConnectorHost", "folder-sync"]
        ),
        // bench/run.sh's in-process store benchmark.
        .executableTarget(
            name: "connector-host-bench",
            dependencies: ["ConnectorHost", "CSupport"]
        ),
        // Foundation only: an agent built on it does not pull in the host.
        .target(name: "AgentKit"),
        .executableTarget(
            name: "folder-sync",
            dependencies: ["AgentKit"],
            path: "agents/folder-sync/Sources"
        ),
        .testTarget(
            name: "ConnectorHostTests",
            dependencies: ["ConnectorHost", "folder-sync"],
            exclude: ["Fixtures"]
        ),
        .testTarget(
            name: "AgentKitTests",
            dependencies: ["AgentKit"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
