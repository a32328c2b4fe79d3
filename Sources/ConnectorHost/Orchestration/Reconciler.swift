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
        // Two reads, then writes only for what differs: a restart with an unchanged config of
        // 1,000 connections costs two queries, not 2,000 transactions (each a few round trips
        // on PostgreSQL). A write re-checks under its own lock, so a host racing this one is safe.
        let stored = try store.connections(includeDeleted: true)
        let storedById = Dictionary(stored.map { ($0.id, $0) }, uniquingKeysWith: { first, _ in first })
        let storedSchedules = Dictionary(grouping: try store.schedules(), by: \.connectionId)
        var changes: [Change] = []
        for connection in registry.connections.values.sorted(by: { $0.id < $1.id }) {
            let lifecycle = registry.handlers[connection.handler]?.lifecycle ?? false
            let form = storedForm(of: connection)
            if let existing = storedById[connection.id], existing.deletedAt == nil, existing.configHash == form.configHash {
                // Unchanged: saveConnection would return nil without writing.
            } else if let event = try store.saveConnection(form, deliver: lifecycle, now: now) {
                changes.append(Change(connectionId: connection.id, event: event))
            }
            // Compared by type and spec first: the root task's id (a SHA-1) and the first due
            // time are worked out only for schedules that are written.
            let specs = connection.tasks.map { (type: $0.type, spec: $0.schedule.description) }
            if !sameSpecs(specs, storedSchedules[connection.id] ?? []) {
                let desired = connection.tasks.map { task in
                    StoredSchedule(
                        connectionId: connection.id, taskType: task.type,
                        rootTaskId: DeterministicID.rootTaskId(appId: store.appId, connectionId: connection.id, taskType: task.type),
                        spec: task.schedule.description, nextDueAt: task.schedule.firstDue(now: now), lastDueAt: nil)
                }
                try store.saveSchedules(connectionId: connection.id, desired, now: now)
            }
        }
        for existing in stored where existing.deletedAt == nil && registry.connections[existing.id] == nil {
            try store.deleteConnection(existing.id, deliver: registry.handlers[existing.handler]?.lifecycle ?? false, now: now)
            changes.append(Change(connectionId: existing.id, event: .deleted))
        }
        return changes
    }

    /// The same task types with the same schedules: saveSchedules would write nothing.
    static func sameSpecs(_ desired: [(type: String, spec: String)], _ existing: [StoredSchedule]) -> Bool {
        guard desired.count == existing.count else { return false }
        let specs = Dictionary(existing.map { ($0.taskType, $0.spec) }, uniquingKeysWith: { first, _ in first })
        return desired.allSatisfy { specs[$0.type] == $0.spec }
    }
}
