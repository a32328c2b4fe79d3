import ConnectorHost
import Foundation

enum ResumeCommand {
    static let spec = CommandSpec(
        name: "resume", abstract: "Resume a connection paused by an auth failure (needs re-auth).",
        arguments: [ArgumentSpec(name: "connection", help: "The connection.")],
        options: [Common.config, Common.state],
        discussion: "A change to the connection's config also resumes it.")

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args)
        let id = args.positionals[0]
        _ = try Common.connectionAndType(registry, id: id, type: nil)
        let store = try Common.openStore(registry)
        do {
            _ = try Reconciler.reconcile(registry, store: store, now: Date())
            guard let stored = try store.connections(includeDeleted: false).first(where: { $0.id == id }) else { return ExitCode.failure }
            guard stored.state == .needsReauth else {
                Common.emit("\(id): not paused (state \(stored.state.rawValue))")
                return ExitCode.success
            }
            try store.setConnectionState(id, registry.connections[id]!.enabled ? .active : .disabled, reason: "resumed by hand", now: Date())
            _ = try store.resolveAlert(rule: .needsReauth, connectionId: id, taskType: "", now: Date())
            Common.emit("\(id): resumed; its schedules run again")
        } catch {
            throw .store(error)
        }
        return ExitCode.success
    }
}
