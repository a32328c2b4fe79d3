#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConnectorHost
import Foundation

/// sysexits codes the CLI promises (README, "Exit codes").
enum ExitCode {
    static let success: Int32 = 0
    static let failure: Int32 = 1
    static let usage: Int32 = 64
    static let software: Int32 = 70
    static let cantCreate: Int32 = 73
    static let ioError: Int32 = 74
    static let tempFail: Int32 = 75
    static let config: Int32 = 78
}

/// A command's failure: what to print, and the exit code it means.
struct CommandFailure: Error {
    var code: Int32
    var message: String

    static func config(_ error: ConfigError) -> CommandFailure { CommandFailure(code: ExitCode.config, message: error.description) }
    static func store(_ error: StoreError) -> CommandFailure { CommandFailure(code: error.exitCode, message: "error: \(error)") }
}

/// Options most commands share, and what they resolve to.
enum Common {
    static let config = OptionSpec.value("config", "file", "The registry (default: $CONNECTOR_HOST_CONFIG, else ./plugins.json).")
    static let state = OptionSpec.value(
        "state", "file|url", "The state file, or a postgresql:// URL (default: $CONNECTOR_HOST_STATE, else \"state\" in the config).")
    static let logLevel = OptionSpec.value("log-level", "level", "debug, info, warning or error (default: info).")
    static let logFormat = OptionSpec.value("log-format", "format", "text or json (default: text).")
    static let type = OptionSpec.value("type", "type", "The task type (default: the connection's first scheduled type).")
    static let json = OptionSpec.flag("json", "Print JSON for scripts instead of a table.")
    static let limit = OptionSpec.value("limit", "n", "Show at most this many, newest first.")

    static func configPath(_ args: ParsedArguments) -> String {
        args.value("config") ?? ProcessInfo.processInfo.environment["CONNECTOR_HOST_CONFIG"] ?? "plugins.json"
    }

    static func loadRegistry(_ args: ParsedArguments, checkExecutables: Bool = false) throws(CommandFailure) -> Registry {
        let state = args.value("state") ?? ProcessInfo.processInfo.environment["CONNECTOR_HOST_STATE"]
        do {
            return try RegistryLoader.load(file: configPath(args), options: .init(checkExecutables: checkExecutables, stateOverride: state))
        } catch {
            throw .config(error)
        }
    }

    static func logger(_ args: ParsedArguments) throws(CommandFailure) -> Logger {
        var level = Logger.Level.info
        if let name = args.value("log-level") {
            guard let parsed = Logger.Level(name: name) else { throw CommandFailure(code: ExitCode.usage, message: "error: unknown log level '\(name)' (use debug, info, warning or error)") }
            level = parsed
        }
        var format = Logger.Format.text
        if let name = args.value("log-format") {
            guard let parsed = Logger.Format(rawValue: name) else { throw CommandFailure(code: ExitCode.usage, message: "error: unknown log format '\(name)' (use text or json)") }
            format = parsed
        }
        return Logger(minimum: level, format: format)
    }

    static func openStore(_ registry: Registry) throws(CommandFailure) -> SQLStore {
        do { return try SQLStore.open(registry.stateLocation, durability: registry.durability) } catch { throw .store(error) }
    }

    static func operations(_ registry: Registry, store: SQLStore, logger: Logger) -> HostOperations {
        let notifier = registry.operations.notify.map {
            Notifier(settings: $0, appId: store.appId, configDirectory: registry.directory, payloads: payloads(registry), logger: logger)
        }
        return HostOperations(settings: registry.operations, store: StoreAccess(store), notifier: notifier, logger: logger)
    }

    /// Where this host's payload files go (README, "Payload files").
    static func payloads(_ registry: Registry) -> PayloadFiles {
        PayloadFiles.forHost(localDirectory: registry.localDirectory, configured: registry.payloadDirectory)
    }

    /// Registers this process as a host and keeps its claims alive until `stop()`.
    static func leaseKeeper(_ registry: Registry, store: SQLStore, command: String, logger: Logger) throws(CommandFailure) -> LeaseKeeper {
        do {
            let keeper = try LeaseKeeper(
                store: store, command: command, leaseSeconds: registry.leaseSeconds, payloads: payloads(registry), logger: logger)
            keeper.start()
            return keeper
        } catch {
            throw .store(error)
        }
    }

    /// The id of a `<command> show <id>` call; nil when the command lists instead.
    static func showTarget(_ args: ParsedArguments, _ spec: CommandSpec, idName: String) throws(CommandFailure) -> String? {
        guard let action = args.positionals.first else { return nil }
        guard action == "show" else {
            throw CommandFailure(code: ExitCode.usage, message: "error: unknown action '\(action)' (did you mean '\(spec.name) show <\(idName)>'?)")
        }
        guard args.positionals.count == 2 else { throw CommandFailure(code: ExitCode.usage, message: "error: missing <\(idName)>\nusage: \(spec.usage)") }
        return args.positionals[1]
    }

    /// `--limit N`: a whole number ≥ 1.
    static func limit(_ args: ParsedArguments, default fallback: Int) throws(CommandFailure) -> Int {
        guard let text = args.value("limit") else { return fallback }
        guard let n = Int(text), n >= 1 else { throw CommandFailure(code: ExitCode.usage, message: "error: --limit takes a whole number ≥ 1, got '\(text)'") }
        return n
    }

    /// A duration option such as `--since 24h`, in seconds.
    static func duration(_ args: ParsedArguments, _ name: String) throws(CommandFailure) -> Int? {
        guard let text = args.value(name) else { return nil }
        guard let seconds = DurationText.seconds(text) else {
            throw CommandFailure(code: ExitCode.usage, message: "error: --\(name) takes a duration like 90s, 30m, 24h or 7d, got '\(text)'")
        }
        return seconds
    }

    static func executor(_ registry: Registry, store: SQLStore, logger: Logger) -> TaskExecutor {
        let runner = AgentRunner(appId: store.appId, payloads: payloads(registry), logger: logger)
        return TaskExecutor(store: StoreAccess(store), runner: runner, logger: logger, alertHistory: registry.operations.alerts.history)
    }

    /// The connection named on the command line, and the task type to act on.
    static func connectionAndType(_ registry: Registry, id: String, type: String?) throws(CommandFailure) -> (Connection, String) {
        guard let connection = registry.connections[id] else {
            let hint = Suggestion.closest(to: id, in: registry.connections.keys).map { " (did you mean \"\($0)\"?)" } ?? ""
            throw CommandFailure(code: ExitCode.usage, message: "error: \(registry.file): no connection \"\(id)\"\(hint)")
        }
        let handler = registry.handlers[connection.handler]!
        let chosen = type ?? connection.tasks.first?.type ?? handler.taskTypes[0]
        guard handler.taskTypes.contains(chosen) else {
            throw CommandFailure(code: ExitCode.usage, message: "error: handler \"\(handler.name)\" does not run \"\(chosen)\" (it lists \(handler.taskTypes.joined(separator: ", ")))")
        }
        return (connection, chosen)
    }

    static func emit(_ text: String, to fd: Int32 = 1) {
        let line = text.hasSuffix("\n") ? text : text + "\n"
        _ = line.utf8CString.withUnsafeBufferPointer { write(fd, $0.baseAddress, $0.count - 1) }
    }
}
