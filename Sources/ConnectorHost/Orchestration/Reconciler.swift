import Foundation

/// Brings the store in line with the config: a new connection is CREATED, a changed one UPDATED,
/// a removed one DELETED (its schedules and queued tasks go; history stays). Runs at every
/// `run`/`daemon` start and reload, over all connections whatever the filters, so running one
/// environment never deletes another's.
public enum Reconciler {
    public struct Change: Sendable, Equatable {
        public var connectionId: String
        public var event: LifecycleEvent
    }

    public static func storedForm(of connection: Connection) -> StoredConnection {
        let json = connection.configJSON.canonical.serialized()
        return StoredConnection(
            id: connection.id, handler: connection.handler, environment: connection.environment, configHash: SHA1.hex(json), configJSON: json,
            enabled: connection.enabled, state: connection.enabled ? .active : .disabled, stateReason: nil, deletedAt: nil)
    }

    public static func reconcile(_ registry: Registry, store: any Store, now: Date) throws(StoreError) -> [Change] {
        var changes: [Change] = []
        for connection in registry.connections.values.sorted(by: { $0.id < $1.id }) {
            let lifecycle = registry.handlers[connection.handler]?.lifecycle ?? false
            if let event = try store.saveConnection(storedForm(of: connection), deliver: lifecycle, now: now) {
                changes.append(Change(connectionId: connection.id, event: event))
            }
            let desired = connection.tasks.map { task in
                StoredSchedule(
                    connectionId: connection.id, taskType: task.type,
                    rootTaskId: DeterministicID.rootTaskId(appId: store.appId, connectionId: connection.id, taskType: task.type),
                    spec: task.schedule.description, nextDueAt: task.schedule.firstDue(now: now), lastDueAt: nil)
            }
            try store.saveSchedules(connectionId: connection.id, desired, now: now)
        }
        for stored in try store.connections(includeDeleted: false) where registry.connections[stored.id] == nil {
            try store.deleteConnection(stored.id, deliver: registry.handlers[stored.handler]?.lifecycle ?? false, now: now)
            changes.append(Change(connectionId: stored.id, event: .deleted))
        }
        return changes
    }
}
