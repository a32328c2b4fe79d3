import ConnectorHost
import Foundation

enum CheckpointCommand {
    static let spec = CommandSpec(
        name: "checkpoint", abstract: "Show or reset a connection's committed root checkpoint (persistentTaskMetadata).",
        arguments: [ArgumentSpec(name: "action", help: "show or reset."), ArgumentSpec(name: "connection", help: "The connection.")],
        options: [Common.type, Common.config, Common.state, .flag("json", "Print the checkpoint as JSON only.")],
        discussion: "After a reset the next root run of that connection and type gets no checkpoint (a full sync from the start).")

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let action = args.positionals[0]
        guard action == "show" || action == "reset" else {
            throw CommandFailure(code: ExitCode.usage, message: "error: unknown action '\(action)' (use show or reset)\nusage: \(spec.usage)")
        }
        let registry = try Common.loadRegistry(args)
        let (connection, type) = try Common.connectionAndType(registry, id: args.positionals[1], type: args.value("type"))
        let store = try Common.openStore(registry)
        do {
            if action == "show" {
                let checkpoint = try store.checkpoint(connectionId: connection.id, taskType: type)
                if args.flag("json") {
                    Common.emit((checkpoint ?? .null).serialized())
                } else {
                    Common.emit(checkpoint.map { "\(connection.id)/\(type):\n\($0.serialized(pretty: true))" } ?? "\(connection.id)/\(type): no checkpoint")
                }
            } else {
                let removed = try store.resetCheckpoint(connectionId: connection.id, taskType: type)
                Common.emit(removed ? "\(connection.id)/\(type): checkpoint reset" : "\(connection.id)/\(type): had no checkpoint")
            }
        } catch {
            throw .store(error)
        }
        return ExitCode.success
    }
}
