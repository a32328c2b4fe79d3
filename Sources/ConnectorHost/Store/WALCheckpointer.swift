import CSQLite
import CSupport
import Foundation

/// Copies the state file's write-ahead log back into the database on a thread of its own.
///
/// SQLite's automatic checkpoint runs inside the commit that crosses 1,000 WAL pages: that
/// commit then waits for two fdatasyncs and the page copy, with the store's lock held and, for a
/// task's completion, with its slot idle. On 1,000 no-op tasks that was about 90 syncs and 70 ms
/// of a one-second run. Here the commit only notes the WAL's size; a checkpointer thread with its
/// own connection does a PASSIVE checkpoint (it never blocks writers) while tasks go on.
///
/// Durability is the same: the WAL is the durable record either way, and the checkpointer uses
/// the connection's `synchronous` setting. If it falls far behind (a reader holding an old
/// snapshot, a slow disk), the committing connection checkpoints itself past `inlineFrames`, so
/// the WAL cannot grow without bound.
final class WALCheckpointer: @unchecked Sendable {
    /// Four times SQLite's own threshold: a page that many commits change (an index's hot leaf)
    /// is copied back once per checkpoint, so fewer checkpoints copy fewer pages in all (a
    /// 10,000-task fan-out: half the checkpointer's time). The WAL grows to about 16 MB between them.
    static let frames: Int32 = 4000
    static let inlineFrames: Int32 = 10_000

    private let path: String
    private let synchronous: String
    // Guarded by `condition`.
    private let condition = NSCondition()
    private var requested = false
    private var stopped = false
    private var running = false

    init(path: String, synchronous: String) {
        self.path = path
        self.synchronous = synchronous
    }

    /// Turns the connection's automatic checkpoint off and reports its commits to this object,
    /// which must outlive the hook (`uninstall` before the connection closes).
    func install(on handle: OpaquePointer?) {
        sqlite3_wal_autocheckpoint(handle, 0)
        sqlite3_wal_hook(handle, { context, db, schema, pages in
            let checkpointer = Unmanaged<WALCheckpointer>.fromOpaque(context!).takeUnretainedValue()
            if pages >= WALCheckpointer.inlineFrames {
                sqlite3_wal_checkpoint_v2(db, schema, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            } else if pages >= WALCheckpointer.frames {
                checkpointer.request()
            }
            return SQLITE_OK
        }, Unmanaged.passUnretained(self).toOpaque())
    }

    func uninstall(from handle: OpaquePointer?) {
        sqlite3_wal_hook(handle, nil, nil)
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func request() {
        condition.lock()
        defer { condition.unlock() }
        guard !stopped else { return }
        requested = true
        if running {
            condition.signal()
        } else {
            // Started on the first request: most commands never write 1,000 pages.
            running = true
            Thread { [self] in work() }.start()
        }
    }

    private func work() {
        ch_name_thread("ch-checkpoint")
        var db: OpaquePointer?
        if sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, nil) == SQLITE_OK {
            sqlite3_busy_timeout(db, 10_000)
            sqlite3_exec(db, "PRAGMA synchronous = \(synchronous)", nil, nil, nil)
        } else {
            // Nothing to checkpoint with, and no point starting a thread per commit to find that
            // out again: the committing connection checkpoints past inlineFrames instead.
            sqlite3_close(db)
            db = nil
            condition.lock()
            stopped = true
            condition.unlock()
        }
        condition.lock()
        while !stopped {
            if !requested {
                condition.wait()
                continue
            }
            requested = false
            condition.unlock()
            sqlite3_wal_checkpoint_v2(db, nil, SQLITE_CHECKPOINT_PASSIVE, nil, nil)
            condition.lock()
        }
        running = false
        condition.unlock()
        sqlite3_close(db)
    }
}
