#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CSupport
import Foundation

/// One `run` or `daemon` per state file: an fcntl lock on `<state>.lock`, held for the life of the
/// process and released by the kernel however the process ends, so a crash never leaves a stale
/// lock. fcntl (rather than flock) because the kernel reports the holder's pid.
public final class InstanceLock: Sendable {
    public let path: String
    private let fd: Int32

    public enum Failure: Error, Sendable, CustomStringConvertible {
        case held(path: String, holder: Int32)
        case timedOut(path: String, holder: Int32, seconds: Double)
        case cannotOpen(path: String, code: Int32)

        public var description: String {
            switch self {
            case .held(let path, let holder):
                "another connector-host (pid \(holder)) holds the state lock \(path); wait for it, or pass --wait-lock SECONDS"
            case .timedOut(let path, let holder, let seconds):
                "waited \(Int(seconds))s for the state lock \(path), still held by pid \(holder)"
            case .cannotOpen(let path, let code):
                "cannot open lock file \(path): \(String(cString: strerror(code))) (the state's directory must be writable: check its permissions and mount, or pass --state; the state was not touched)"
            }
        }

        /// The sysexits code: 74 when the lock file cannot even be opened (an I/O problem), 75
        /// when another instance holds it (try again later).
        public var exitCode: Int32 {
            if case .cannotOpen = self { return 74 }
            return 75
        }
    }

    private init(path: String, fd: Int32) {
        self.path = path
        self.fd = fd
    }

    deinit { _ = closeDescriptor(fd) }

    static func open(_ path: String) throws(Failure) -> Int32 {
        let directory = (path as NSString).deletingLastPathComponent
        try? FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw .cannotOpen(path: path, code: errno) }
        return fd
    }

    /// Takes the lock now, or fails naming the holder.
    public static func acquire(statePath: String) throws(Failure) -> InstanceLock {
        let path = statePath + ".lock"
        let fd = try open(path)
        guard ch_lock_try(fd) == 0 else {
            let holder = ch_lock_holder(fd)
            _ = closeDescriptor(fd)
            throw .held(path: path, holder: holder)
        }
        return InstanceLock(path: path, fd: fd)
    }

    /// Waits up to `seconds` for the lock. The wait blocks a dedicated thread in F_SETLKW (woken
    /// by the kernel when the lock is free), never the async pool.
    public static func acquire(statePath: String, waitingUpTo seconds: Double) async throws(Failure) -> InstanceLock {
        if let lock = try? acquire(statePath: statePath) { return lock }
        let path = statePath + ".lock"
        let fd = try open(path)
        let acquired: Bool = await withCheckedContinuation { continuation in
            let once = ResumeOnce(continuation)
            Thread.detachNewThread {
                if ch_lock_wait(fd) == 0 { once.resume(true) }
            }
            DispatchQueue.global().asyncAfter(deadline: .now() + seconds) { once.resume(false) }
        }
        guard acquired else {
            // The waiting thread still blocks on this descriptor; the process is about to exit
            // with the error, so it is left open rather than closed under the thread.
            throw .timedOut(path: path, holder: ch_lock_holder(fd), seconds: seconds)
        }
        return InstanceLock(path: path, fd: fd)
    }

    /// The pid holding the lock, if any (for `status` and for waking a daemon).
    public static func holder(statePath: String) -> Int32? {
        let fd = Glibc.open(statePath + ".lock", O_RDWR | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { _ = closeDescriptor(fd) }
        let pid = ch_lock_holder(fd)
        return pid > 0 ? pid : nil
    }
}

/// Resumes a continuation exactly once, whichever of several events comes first.
final class ResumeOnce<T: Sendable>: @unchecked Sendable {
    private var continuation: CheckedContinuation<T, Never>?
    private let lock = NSLock()
    init(_ continuation: CheckedContinuation<T, Never>) { self.continuation = continuation }
    func resume(_ value: T) {
        lock.lock()
        let c = continuation
        continuation = nil
        lock.unlock()
        c?.resume(returning: value)
    }
}
