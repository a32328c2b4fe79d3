#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConnectorHost
import Foundation

enum TriggerCommand {
    static let spec = CommandSpec(
        name: "trigger", abstract: "Queue a root task of a connection now; the next pass (or a running daemon) runs it.",
        arguments: [ArgumentSpec(name: "connection", help: "The connection to trigger.")],
        options: [Common.type, Common.config, Common.state],
        discussion: "Exits 0 when queued, 75 when a scan of that connection and type is still running (nothing is queued).")

    static func run(_ args: ParsedArguments) async throws(CommandFailure) -> Int32 {
        let registry = try Common.loadRegistry(args)
        let (connection, type) = try Common.connectionAndType(registry, id: args.positionals[0], type: args.value("type"))
        let store = try Common.openStore(registry)
        do {
            _ = try Reconciler.reconcile(registry, store: store, now: Date())
            let rootTaskId = DeterministicID.rootTaskId(appId: store.appId, connectionId: connection.id, taskType: type)
            switch try store.openScan(
                connectionId: connection.id, taskType: type, handler: connection.handler, rootTaskId: rootTaskId, trigger: .manual, dueAt: nil, nextDue: nil,
                now: Date())
            {
            case .opened(let scanId):
                Common.emit("queued \(connection.id)/\(type) (scan \(scanId))")
            case .alreadyEnqueued:
                Common.emit("queued \(connection.id)/\(type)")
            case .skipped(let open):
                Common.emit("error: a scan of \(connection.id)/\(type) is still running (scan \(open)); nothing queued", to: 2)
                return ExitCode.tempFail
            }
        } catch {
            throw .store(error)
        }
        // A daemon holding the lock sleeps until its next due time: wake it. (On PostgreSQL the
        // scan's NOTIFY wakes every daemon.)
        if case .file = registry.stateLocation, let holder = InstanceLock.holder(statePath: registry.statePath), holder != getpid() {
            _ = kill(holder, SIGUSR1)
        }
        return ExitCode.success
    }
}
