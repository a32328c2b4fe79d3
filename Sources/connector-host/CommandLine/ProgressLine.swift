#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import ConnectorHost
import Foundation
import Synchronization

/// `run`'s progress. On a terminal: one line redrawn in place on every change and once a second
/// (so elapsed time moves while an agent works). Otherwise: a plain line at most every 10 s, so a
/// short pass under cron prints nothing but its summary.
final class ProgressLine: Sendable {
    private struct State {
        var last: PassProgress?
        var printedAt = 0.0
        var drawn = false
    }

    private let interactive = isatty(1) == 1
    private let state = Mutex(State())
    /// Redraws the line once a second on a terminal: a clock, not a stand-in for an event.
    private let ticker = Mutex<Task<Void, Never>?>(nil)
    static let plainInterval = 10.0

    init() {
        guard interactive else { return }
        let task = Task { [weak self] in
            while !Task.isCancelled {
                try? await Task.sleep(for: .seconds(1))
                self?.tick()
            }
        }
        ticker.withLock { $0 = task }
    }

    func update(_ progress: PassProgress) {
        state.withLock { s in
            s.last = progress
            if interactive {
                draw(progress, &s)
            } else if progress.elapsed - s.printedAt >= Self.plainInterval {
                s.printedAt = progress.elapsed
                Common.emit("progress: " + Self.text(progress))
            }
        }
    }

    private func tick() {
        state.withLock { s in
            guard var p = s.last else { return }
            p.elapsed += 1
            s.last = p
            draw(p, &s)
        }
    }

    private func draw(_ p: PassProgress, _ s: inout State) {
        s.drawn = true
        let line = "\r\u{1B}[K" + Self.text(p)
        _ = line.utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) }
    }

    /// Clears the line before the summary.
    func finish() {
        ticker.withLock { $0?.cancel() }
        state.withLock { s in
            if s.drawn { _ = "\r\u{1B}[K".utf8CString.withUnsafeBufferPointer { write(1, $0.baseAddress, $0.count - 1) } }
            s.drawn = false
            s.last = nil
        }
    }

    static func text(_ p: PassProgress) -> String {
        "running \(p.running) · queued \(p.queued) · done \(p.done) · failed \(p.failed) · \(Int(p.elapsed))s"
    }
}
