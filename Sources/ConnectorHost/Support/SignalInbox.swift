#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Delivers SIGTERM, SIGINT, SIGHUP and SIGUSR1 to async code as values. The signals are ignored
/// at the process level and observed through dispatch sources, so a handler never runs in signal
/// context; agents are spawned with default dispositions regardless.
public final class SignalInbox: @unchecked Sendable {
    public static let handled: [Int32] = [SIGTERM, SIGINT, SIGHUP, SIGUSR1]
    private var sources: [DispatchSourceSignal] = []
    private let lock = NSLock()
    private var pending: [Int32] = []
    private var waiter: CheckedContinuation<Int32?, Never>?

    public init(signals: [Int32] = SignalInbox.handled) {
        let queue = DispatchQueue(label: "connector-host.signals")
        for number in signals {
            signal(number, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: number, queue: queue)
            source.setEventHandler { [weak self] in self?.deliver(number) }
            source.resume()
            sources.append(source)
        }
    }

    deinit { for source in sources { source.cancel() } }

    private func deliver(_ number: Int32) {
        lock.lock()
        if let waiter {
            self.waiter = nil
            lock.unlock()
            waiter.resume(returning: number)
        } else {
            pending.append(number)
            lock.unlock()
        }
    }

    /// The next signal, or nil when the calling task is cancelled. One waiter at a time.
    public func next() async -> Int32? {
        await withTaskCancellationHandler {
            await withCheckedContinuation { (continuation: CheckedContinuation<Int32?, Never>) in
                lock.lock()
                if !pending.isEmpty {
                    let number = pending.removeFirst()
                    lock.unlock()
                    continuation.resume(returning: number)
                } else if Task.isCancelled {
                    lock.unlock()
                    continuation.resume(returning: nil)
                } else {
                    waiter = continuation
                    lock.unlock()
                }
            }
        } onCancel: {
            lock.lock()
            let w = waiter
            waiter = nil
            lock.unlock()
            w?.resume(returning: nil)
        }
    }
}
