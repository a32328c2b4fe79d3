#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Keeps this host's claims alive and, on a shared (PostgreSQL) state, takes back the claims of
/// hosts that stopped heart-beating: their tasks are queued again for any host, without waiting
/// for their agents. A heartbeat every third of the lease, on a timer and queue of its own, so a
/// store call blocked on the database never holds a thread of the async pool.
public final class LeaseKeeper: @unchecked Sendable {
    public let host: HostIdentity
    public let leaseSeconds: Double
    private let store: any Store
    private let payloads: PayloadFiles
    private let logger: Logger
    private let queue = DispatchQueue(label: "connector-host.leases")
    private var timer: DispatchSourceTimer?

    /// Registers the host (what `status` lists) under `command` (run, daemon or exec).
    public init(store: any Store, command: String, leaseSeconds: Double, payloads: PayloadFiles, logger: Logger, host: HostIdentity = .current) throws(StoreError) {
        self.store = store
        self.host = host
        self.leaseSeconds = leaseSeconds
        self.payloads = payloads
        self.logger = logger
        try store.registerHost(host, command: command, now: Date())
    }

    deinit { timer?.cancel() }

    public func start() {
        let interval = max(0.2, leaseSeconds / 3)
        let timer = DispatchSource.makeTimerSource(queue: queue)
        timer.schedule(deadline: .now() + interval, repeating: interval, leeway: .milliseconds(Int(interval * 100)))
        timer.setEventHandler { [weak self] in self?.beat() }
        timer.resume()
        self.timer = timer
    }

    /// Stops the heartbeat and records the host as stopped. Its leases run out on their own if it
    /// left tasks running (it does not: run and daemon re-queue theirs on the way out).
    public func stop() {
        timer?.cancel()
        timer = nil
        queue.sync {}
        try? store.hostStopped(hostId: host.id, now: Date())
    }

    private func beat() {
        let now = Date()
        do {
            try store.renewLeases(hostId: host.id, until: now.addingTimeInterval(leaseSeconds), now: now)
            guard store.isShared else { return }
            for task in try store.expiredLeases(now: now) where task.owner?.hostId != host.id {
                try takeBack(task, now: now)
            }
        } catch {
            logger.warning("lease", "heartbeat failed (retrying in \(Int(leaseSeconds / 3))s): \(error)")
        }
    }

    /// Queues the task again; if its host ran on this machine, its agent (if still alive) is killed
    /// and its payload file removed, by the same code as recovery at start.
    func takeBack(_ task: StoredTask, now: Date) throws(StoreError) {
        guard let executionId = task.executionId else { return }
        let owner = task.owner
        let name = owner?.hostId ?? "pid \(owner?.hostPid ?? 0)"
        let note = "host \(name) stopped renewing its lease; re-queued"
        guard try store.requeueExpired(taskId: task.id, executionId: executionId, note: note, now: now) else { return }
        let killed = owner?.machine == host.machine ? Recovery.stopLeftovers(of: owner, executionId: executionId, payloads: payloads) : 0
        logger.warning("lease", "re-queued task \(task.id) of \(task.connectionId): its host \(name) stopped renewing its lease" + (killed > 0 ? "; killed its agent" : ""))
    }
}
