// swift-tools-version:6.0
import PackageDescription

let package = Package(
    name: "ConnectorHost",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "connector-host", targets: ["connector-host"]),
        .library(name: "ConnectorHost", targets: ["ConnectorHost"]),
    ],
    targets: [
        // SQLite is the real database, used through the system library (Debian: libsqlite3-dev).
        .systemLibrary(
            name: "CSQLite",
            pkgConfig: "sqlite3",
            providers: [.apt(["libsqlite3-dev"]), .brew(["sqlite"])]
        ),
        // The few Linux calls Swift cannot make directly: variadic prctl, pidfd_open,
        // waitid's siginfo union, pipe2, and posix_spawn's GNU file actions.
        .target(name: "CSupport"),
        .target(
            name: "ConnectorHost",
            dependencies: ["CSQLite", "CSupport"]
        ),
        .executableTarget(
            name: "connector-host",
            dependencies: ["ConnectorHost"]
        ),
        .testTarget(
            name: "ConnectorHostTests",
            dependencies: ["ConnectorHost"],
            exclude: ["Fixtures"]
        ),
    ],
    swiftLanguageModes: [.v6]
)
