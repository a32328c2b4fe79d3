#include <sqlite3.h>

/// Turns off SQLite's memory statistics before its first use. They take a process-wide mutex
/// around every allocation and free; the host reads none of them (no soft heap limit, no
/// sqlite3_memory_used). sqlite3_config is variadic, which Swift cannot call, hence this shim.
/// Returns SQLITE_MISUSE if SQLite was already initialised (the setting then stays as it was).
static inline int ch_sqlite3_disable_memory_statistics(void) {
    return sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
}
