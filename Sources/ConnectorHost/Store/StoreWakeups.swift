#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CPostgreSQL
import Foundation

/// Wakes an idle host when any host queues work: a `LISTEN` connection of its own, watched by one
/// thread that blocks in poll(2). Notifications that arrive together wake the host once; after
/// the connection is lost and re-made the host is woken too, since it may have missed some.
public final class StoreWakeups: @unchecked Sendable {
    private let url: PostgresURL
    private let lock = NSLock()
    private var pending = false
    private var closed = false
    private var waiter: CheckedContinuation<Bool, Never>?
    private let stopPipe: (read: Int32, write: Int32)

    init(url: PostgresURL) throws(StoreError) {
        self.url = url
        let connection = try Self.listen(url)
        var fds: [Int32] = [0, 0]
        guard pipe(&fds) == 0 else {
            PQfinish(connection)
            throw StoreError(kind: .other, message: "cannot make a pipe: \(String(cString: strerror(errno)))", path: url.description)
        }
        stopPipe = (fds[0], fds[1])
        // The connection moves to the thread, which alone uses it from here on.
        let handed = HandedOver(connection: connection)
        let thread = Thread { [self] in watch(handed.connection) }
        thread.name = "connector-host.listen"
        thread.start()
    }

    deinit { close() }

    private static func listen(_ url: PostgresURL) throws(StoreError) -> OpaquePointer {
        let connection = try PostgresDatabase.connect(url)
        let result = PQexec(connection, "LISTEN \(PostgresDatabase.workChannel)")
        defer { PQclear(result) }
        guard PQresultStatus(result) == PGRES_COMMAND_OK else {
            let message = String(cString: PQerrorMessage(connection))
            PQfinish(connection)
            throw StoreError(kind: .cannotOpen, message: "LISTEN: \(message)", path: url.description)
        }
        return connection
    }

    /// Waits for the next wake-up. False once closed, or when the calling task is cancelled.
    public func next() async -> Bool {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Bool, Never>) in
                lock.lock()
                if pending || closed || Task.isCancelled {
                    let woken = pending && !closed && !Task.isCancelled
                    pending = false
                    lock.unlock()
                    continuation.resume(returning: woken)
                } else {
                    waiter = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            resume(false)
        }
    }

    public func close() {
        lock.lock()
        let first = !closed
        closed = true
        lock.unlock()
        guard first else { return }
        resume(false)
        var byte: UInt8 = 1
        _ = write(stopPipe.write, &byte, 1)
    }

    private func resume(_ value: Bool) {
        lock.lock()
        let waiting = waiter
        waiter = nil
        if waiting == nil && value { pending = true }
        lock.unlock()
        waiting?.resume(returning: value)
    }

    /// The watching thread: one poll(2) on the connection and the stop pipe, no timeout.
    private func watch(_ initial: OpaquePointer) {
        var connection: OpaquePointer? = initial
        defer {
            PQfinish(connection)
            Glibc.close(stopPipe.read)
            Glibc.close(stopPipe.write)
        }
        while true {
            guard let current = connection else {
                // Re-connecting after a loss, once a second, until stopped.
                var stop = pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)
                if poll(&stop, 1, 1000) > 0 { return }
                connection = try? Self.listen(url)
                if connection != nil { resume(true) }
                continue
            }
            var fds = [pollfd(fd: PQsocket(current), events: Int16(POLLIN), revents: 0), pollfd(fd: stopPipe.read, events: Int16(POLLIN), revents: 0)]
            let ready = poll(&fds, 2, -1)
            if ready < 0 && errno == EINTR { continue }
            if fds[1].revents != 0 { return }
            guard PQconsumeInput(current) == 1, PQstatus(current) == CONNECTION_OK else {
                PQfinish(current)
                connection = nil
                continue
            }
            var woken = false
            while let notification = PQnotifies(current) {
                // Work this host queued itself is already in its loop's view.
                if notification.pointee.extra == nil || String(cString: notification.pointee.extra) != HostIdentity.current.id { woken = true }
                PQfreemem(notification)
            }
            if woken { resume(true) }
        }
    }
}

private struct HandedOver: @unchecked Sendable {
    let connection: OpaquePointer
}
