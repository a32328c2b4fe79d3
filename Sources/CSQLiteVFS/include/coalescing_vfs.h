#ifndef COALESCING_VFS_H
#define COALESCING_VFS_H

#include <sqlite3.h>

/// The name `ch_coalescing_vfs_register` registers: pass it to sqlite3_open_v2.
#define CH_COALESCING_VFS_NAME "connector-host"

/// Registers, once per process, a VFS that wraps the default one and writes each commit's WAL
/// frames with one write instead of two per page (coalescing_vfs.c says how and why it is safe).
/// Not made the default. Returns SQLITE_OK, or SQLite's error if there is no default VFS.
int ch_coalescing_vfs_register(void);

/// For tests: the write calls this connection's WAL file received from SQLite (`requested`) and
/// the ones that reached the file system (`issued`), since the connection opened. Returns
/// SQLITE_OK, or SQLITE_NOTFOUND when the connection is not on this VFS.
int ch_coalescing_vfs_wal_writes(sqlite3 *db, sqlite3_int64 *requested, sqlite3_int64 *issued);

#endif
