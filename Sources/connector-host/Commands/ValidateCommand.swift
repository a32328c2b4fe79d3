import ConnectorHost

enum ValidateCommand {
    static let spec = CommandSpec(
        name: "validate", abstract: "Check the registry: every problem at once, each naming the file and JSON path.",
        options: [Common.config],
        discussion: "Exits 0 when the config is valid, 78 when it is not. Agent executables are checked to exist and be executable.")

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args, checkExecutables: true)
        let tasks = registry.connections.values.reduce(0) { $0 + $1.tasks.count }
        Common.emit("\(registry.file): valid: \(registry.handlers.count) handler(s), \(registry.connections.count) connection(s), \(tasks) schedule(s); state \(registry.statePath)")
        return ExitCode.success
    }
}
