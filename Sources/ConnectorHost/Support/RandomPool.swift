import CSupport
import Synchronization

/// Random bytes for new ids, drawn from the kernel's generator a page at a time.
///
/// Every `getrandom` call makes the kernel derive fresh per-call generator state
/// (`crng_make_state`), most of what a 16-byte draw costs: two calls per id, as
/// `SystemRandomNumberGenerator` makes them, were a sixth of the CPU of opening a batch of scans
/// (`perf`) and two system calls of every task. The bytes are still the kernel's, and each is handed out once;
/// only the number of calls changes.
enum RandomPool {
    private static let pageSize = 4096
    private static let pool = Mutex(Page())

    private struct Page {
        var bytes = [UInt8](repeating: 0, count: RandomPool.pageSize)
        /// Bytes at the front already handed out (the whole page before the first fill).
        var used = RandomPool.pageSize
    }

    /// Sixteen random bytes as two words.
    static func twoWords() -> (UInt64, UInt64) {
        pool.withLock { page in
            if page.used + 16 > page.bytes.count {
                refill(&page.bytes)
                page.used = 0
            }
            let offset = page.used
            page.used += 16
            return page.bytes.withUnsafeBytes { raw in
                (raw.loadUnaligned(fromByteOffset: offset, as: UInt64.self), raw.loadUnaligned(fromByteOffset: offset + 8, as: UInt64.self))
            }
        }
    }

    private static func refill(_ bytes: inout [UInt8]) {
        let filled = bytes.withUnsafeMutableBytes { ch_random_bytes($0.baseAddress, $0.count) == 0 }
        if filled { return }
        // getrandom refused (a seccomp filter, a kernel before 3.17): the standard library's
        // generator, which falls back to /dev/urandom.
        var generator = SystemRandomNumberGenerator()
        bytes.withUnsafeMutableBytes { raw in
            for offset in stride(from: 0, to: raw.count, by: 8) { raw.storeBytes(of: generator.next() as UInt64, toByteOffset: offset, as: UInt64.self) }
        }
    }
}
