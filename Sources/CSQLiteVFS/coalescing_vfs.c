// A VFS over the default one that writes each commit's WAL frames with one write.
//
// SQLite appends a frame to the WAL as two writes: its 24-byte header, then the page. A task's
// completion commits about 13 pages, so 26 writes, each a system call and, since a frame is
// 4,120 bytes, each page spread over two file-system blocks: about a fifth of the host's CPU per
// task went to ext4's write path. Here writes that continue where the previous one ended are
// gathered in memory and written as one when the commit frame's page arrives.
//
// Why it is safe. The invariant: the gathered bytes are one contiguous run, and they reach the
// file before anything could read or depend on them.
// - Every other operation on the WAL file (read, sync, truncate, size, lock, close, file
//   control) writes them first; a write elsewhere in the file writes them first too.
// - A commit becomes visible to other connections only when SQLite rewrites the WAL index
//   header in shared memory, and it calls xShmBarrier on the database file between the two
//   copies of that header: the barrier writes any frames still gathered before readers can see
//   the new header. In practice the commit frame has been written by then (below), so the
//   barrier finds nothing.
// - The commit frame (a frame header whose "database size after commit" field is not zero, as
//   the WAL format defines it) is written before its write returns, so a full disk fails the
//   commit itself, as it would without this VFS.
// - A host killed with frames gathered loses only frames of a transaction that had not
//   committed, which recovery would have discarded anyway (their commit frame is missing).
// Locks, shared memory and everything else are the default VFS's own, so connections on this
// VFS and on the default one share a database as usual.

#include "coalescing_vfs.h"

#include <pthread.h>
#include <string.h>

enum {
    // A WAL frame header's size; bytes 4..7 hold the database size after a commit, or 0.
    walFrameHeaderSize = 24,
    // Gathered bytes past this are written out first (a commit adding thousands of child tasks):
    // the default VFS writes at most 128 KiB - 1 bytes a call (seekAndWriteFd masks the size),
    // and a longer write would come back short, as a full disk.
    maxPendingBytes = 124 * 1024,
    // sqlite3_file_control opcode for ch_coalescing_vfs_wal_writes (outside SQLite's range).
    walWritesControl = 0x43480001,
};

typedef struct CoalescingFile CoalescingFile;
struct CoalescingFile {
    sqlite3_file base;
    // The default VFS's file, in the memory right after this struct.
    sqlite3_file *real;
    int isWAL;
    // A WAL: its database's file (the barrier lives there). A database: its open WAL.
    CoalescingFile *database;
    CoalescingFile *wal;
    // A WAL's gathered writes: `pendingLength` bytes that belong at `pendingOffset`.
    unsigned char *pending;
    int pendingLength;
    sqlite3_int64 pendingOffset;
    // The last gathered write was a frame header; `commitFrame`: it marks a commit.
    int afterFrameHeader;
    int commitFrame;
    // A write at a barrier failed, where it could not be reported: the next call reports it.
    int deferredError;
    // A database's counters for its WAL (ch_coalescing_vfs_wal_writes).
    sqlite3_int64 requestedWrites;
    sqlite3_int64 issuedWrites;
};

static sqlite3_vfs *defaultVFS;

static sqlite3_io_methods const *realMethods(CoalescingFile *file) { return file->real->pMethods; }

static void countWrite(CoalescingFile *wal, int issued) {
    if (wal->database == NULL) return;
    if (issued) {
        wal->database->issuedWrites++;
    } else {
        wal->database->requestedWrites++;
    }
}

static int writeThrough(CoalescingFile *file, const void *data, int amount, sqlite3_int64 offset) {
    if (file->isWAL) countWrite(file, 1);
    return realMethods(file)->xWrite(file->real, data, amount, offset);
}

// Writes the gathered bytes. Called before any other use of the file.
static int flushPending(CoalescingFile *wal) {
    int rc = wal->deferredError;
    wal->deferredError = SQLITE_OK;
    if (rc == SQLITE_OK && wal->pendingLength > 0) rc = writeThrough(wal, wal->pending, wal->pendingLength, wal->pendingOffset);
    wal->pendingLength = 0;
    wal->afterFrameHeader = 0;
    wal->commitFrame = 0;
    return rc;
}

// The buffer, allocated at the WAL's first write. 0: out of memory (writes then go through).
static int allocatePending(CoalescingFile *wal) {
    if (wal->pending == NULL) wal->pending = sqlite3_malloc(maxPendingBytes);
    return wal->pending != NULL;
}

static int walWrite(CoalescingFile *wal, const void *data, int amount, sqlite3_int64 offset) {
    countWrite(wal, 0);
    int rc;
    int continues = wal->pendingLength > 0 && offset == wal->pendingOffset + wal->pendingLength;
    if ((wal->pendingLength > 0 && !continues) || wal->deferredError != SQLITE_OK) {
        if ((rc = flushPending(wal)) != SQLITE_OK) return rc;
    }
    if (wal->pendingLength + amount > maxPendingBytes) {
        // Full: written out, but a page still follows its header (a commit frame's page must
        // still be written before its write returns).
        int afterFrameHeader = wal->afterFrameHeader, commitFrame = wal->commitFrame;
        if ((rc = flushPending(wal)) != SQLITE_OK) return rc;
        wal->afterFrameHeader = afterFrameHeader;
        wal->commitFrame = commitFrame;
    }
    if (amount > maxPendingBytes || !allocatePending(wal)) {
        if ((rc = flushPending(wal)) != SQLITE_OK) return rc;
        return writeThrough(wal, data, amount, offset);
    }
    if (wal->pendingLength == 0) wal->pendingOffset = offset;
    memcpy(wal->pending + wal->pendingLength, data, (size_t)amount);
    wal->pendingLength += amount;
    if (amount == walFrameHeaderSize && !wal->afterFrameHeader) {
        const unsigned char *header = data;
        wal->afterFrameHeader = 1;
        wal->commitFrame = (header[4] | header[5] | header[6] | header[7]) != 0;
        return SQLITE_OK;
    }
    int commits = wal->afterFrameHeader && wal->commitFrame;
    wal->afterFrameHeader = 0;
    wal->commitFrame = 0;
    return commits ? flushPending(wal) : SQLITE_OK;
}

// The io methods: a WAL file writes its gathered bytes before anything else; a database
// file flushes its WAL at each shared-memory barrier. The rest is the default VFS's.

#define FLUSH_FIRST(file)                                                          \
    do {                                                                           \
        if ((file)->isWAL) {                                                       \
            int flushed = flushPending(file);                                      \
            if (flushed != SQLITE_OK) return flushed;                              \
        }                                                                          \
    } while (0)

static int fileClose(sqlite3_file *base) {
    CoalescingFile *file = (CoalescingFile *)base;
    int rc = SQLITE_OK;
    if (file->isWAL) {
        rc = flushPending(file);
        if (file->database != NULL) file->database->wal = NULL;
        sqlite3_free(file->pending);
        file->pending = NULL;
    } else if (file->wal != NULL) {
        file->wal->database = NULL;
    }
    int closed = realMethods(file)->xClose(file->real);
    return rc != SQLITE_OK ? rc : closed;
}

static int fileRead(sqlite3_file *base, void *data, int amount, sqlite3_int64 offset) {
    CoalescingFile *file = (CoalescingFile *)base;
    FLUSH_FIRST(file);
    return realMethods(file)->xRead(file->real, data, amount, offset);
}

static int fileWrite(sqlite3_file *base, const void *data, int amount, sqlite3_int64 offset) {
    CoalescingFile *file = (CoalescingFile *)base;
    if (file->isWAL) return walWrite(file, data, amount, offset);
    return realMethods(file)->xWrite(file->real, data, amount, offset);
}

static int fileTruncate(sqlite3_file *base, sqlite3_int64 size) {
    CoalescingFile *file = (CoalescingFile *)base;
    FLUSH_FIRST(file);
    return realMethods(file)->xTruncate(file->real, size);
}

static int fileSync(sqlite3_file *base, int flags) {
    CoalescingFile *file = (CoalescingFile *)base;
    FLUSH_FIRST(file);
    return realMethods(file)->xSync(file->real, flags);
}

static int fileSize(sqlite3_file *base, sqlite3_int64 *size) {
    CoalescingFile *file = (CoalescingFile *)base;
    FLUSH_FIRST(file);
    return realMethods(file)->xFileSize(file->real, size);
}

static int fileLock(sqlite3_file *base, int level) {
    CoalescingFile *file = (CoalescingFile *)base;
    FLUSH_FIRST(file);
    return realMethods(file)->xLock(file->real, level);
}

static int fileUnlock(sqlite3_file *base, int level) {
    CoalescingFile *file = (CoalescingFile *)base;
    FLUSH_FIRST(file);
    return realMethods(file)->xUnlock(file->real, level);
}

static int fileCheckReservedLock(sqlite3_file *base, int *reserved) {
    CoalescingFile *file = (CoalescingFile *)base;
    return realMethods(file)->xCheckReservedLock(file->real, reserved);
}

static int fileControl(sqlite3_file *base, int op, void *argument) {
    CoalescingFile *file = (CoalescingFile *)base;
    if (op == walWritesControl && !file->isWAL) {
        sqlite3_int64 *counts = argument;
        counts[0] = file->requestedWrites;
        counts[1] = file->issuedWrites;
        return SQLITE_OK;
    }
    FLUSH_FIRST(file);
    return realMethods(file)->xFileControl(file->real, op, argument);
}

static int fileSectorSize(sqlite3_file *base) {
    CoalescingFile *file = (CoalescingFile *)base;
    return realMethods(file)->xSectorSize(file->real);
}

static int fileDeviceCharacteristics(sqlite3_file *base) {
    CoalescingFile *file = (CoalescingFile *)base;
    return realMethods(file)->xDeviceCharacteristics(file->real);
}

static int fileShmMap(sqlite3_file *base, int region, int size, int extend, void volatile **memory) {
    CoalescingFile *file = (CoalescingFile *)base;
    if (realMethods(file)->iVersion < 2) return SQLITE_IOERR;
    return realMethods(file)->xShmMap(file->real, region, size, extend, memory);
}

static int fileShmLock(sqlite3_file *base, int offset, int count, int flags) {
    CoalescingFile *file = (CoalescingFile *)base;
    if (realMethods(file)->iVersion < 2) return SQLITE_IOERR;
    return realMethods(file)->xShmLock(file->real, offset, count, flags);
}

static void fileShmBarrier(sqlite3_file *base) {
    CoalescingFile *file = (CoalescingFile *)base;
    // Frames must be in the file before the WAL index header that counts them is published.
    if (file->wal != NULL && file->wal->pendingLength > 0) {
        int rc = flushPending(file->wal);
        if (rc != SQLITE_OK) file->wal->deferredError = rc;
    }
    if (realMethods(file)->iVersion >= 2) realMethods(file)->xShmBarrier(file->real);
}

static int fileShmUnmap(sqlite3_file *base, int deleteFlag) {
    CoalescingFile *file = (CoalescingFile *)base;
    if (realMethods(file)->iVersion < 2) return SQLITE_OK;
    return realMethods(file)->xShmUnmap(file->real, deleteFlag);
}

static int fileFetch(sqlite3_file *base, sqlite3_int64 offset, int amount, void **pointer) {
    CoalescingFile *file = (CoalescingFile *)base;
    *pointer = NULL;
    FLUSH_FIRST(file);
    if (realMethods(file)->iVersion < 3) return SQLITE_OK;
    return realMethods(file)->xFetch(file->real, offset, amount, pointer);
}

static int fileUnfetch(sqlite3_file *base, sqlite3_int64 offset, void *pointer) {
    CoalescingFile *file = (CoalescingFile *)base;
    if (realMethods(file)->iVersion < 3) return SQLITE_OK;
    return realMethods(file)->xUnfetch(file->real, offset, pointer);
}

static const sqlite3_io_methods coalescingMethods = {
    3, fileClose, fileRead, fileWrite, fileTruncate, fileSync, fileSize, fileLock, fileUnlock, fileCheckReservedLock,
    fileControl, fileSectorSize, fileDeviceCharacteristics, fileShmMap, fileShmLock, fileShmBarrier, fileShmUnmap,
    fileFetch, fileUnfetch,
};

// The VFS: opening wraps the default VFS's file; every other call is the default VFS's.

static int vfsOpen(sqlite3_vfs *vfs, const char *name, sqlite3_file *base, int flags, int *outFlags) {
    (void)vfs;
    CoalescingFile *file = (CoalescingFile *)base;
    memset(file, 0, sizeof(*file));
    file->real = (sqlite3_file *)(file + 1);
    int rc = defaultVFS->xOpen(defaultVFS, name, file->real, flags, outFlags);
    // SQLite calls xClose only when pMethods is set; the default VFS leaves it NULL on failure.
    if (file->real->pMethods == NULL) return rc;
    file->base.pMethods = &coalescingMethods;
    if ((flags & SQLITE_OPEN_WAL) && name != NULL) {
        file->isWAL = 1;
        sqlite3_file *database = sqlite3_database_file_object(name);
        if (database != NULL && database->pMethods == &coalescingMethods) {
            file->database = (CoalescingFile *)database;
            file->database->wal = file;
        }
    }
    return rc;
}

static int vfsDelete(sqlite3_vfs *vfs, const char *name, int syncDirectory) {
    (void)vfs;
    return defaultVFS->xDelete(defaultVFS, name, syncDirectory);
}

static int vfsAccess(sqlite3_vfs *vfs, const char *name, int flags, int *result) {
    (void)vfs;
    return defaultVFS->xAccess(defaultVFS, name, flags, result);
}

static int vfsFullPathname(sqlite3_vfs *vfs, const char *name, int size, char *out) {
    (void)vfs;
    return defaultVFS->xFullPathname(defaultVFS, name, size, out);
}

static void *vfsDlOpen(sqlite3_vfs *vfs, const char *name) {
    (void)vfs;
    return defaultVFS->xDlOpen(defaultVFS, name);
}

static void vfsDlError(sqlite3_vfs *vfs, int size, char *message) {
    (void)vfs;
    defaultVFS->xDlError(defaultVFS, size, message);
}

static void (*vfsDlSym(sqlite3_vfs *vfs, void *library, const char *symbol))(void) {
    (void)vfs;
    return defaultVFS->xDlSym(defaultVFS, library, symbol);
}

static void vfsDlClose(sqlite3_vfs *vfs, void *library) {
    (void)vfs;
    defaultVFS->xDlClose(defaultVFS, library);
}

static int vfsRandomness(sqlite3_vfs *vfs, int size, char *out) {
    (void)vfs;
    return defaultVFS->xRandomness(defaultVFS, size, out);
}

static int vfsSleep(sqlite3_vfs *vfs, int microseconds) {
    (void)vfs;
    return defaultVFS->xSleep(defaultVFS, microseconds);
}

static int vfsCurrentTime(sqlite3_vfs *vfs, double *now) {
    (void)vfs;
    return defaultVFS->xCurrentTime(defaultVFS, now);
}

static int vfsGetLastError(sqlite3_vfs *vfs, int size, char *message) {
    (void)vfs;
    return defaultVFS->xGetLastError ? defaultVFS->xGetLastError(defaultVFS, size, message) : 0;
}

static int vfsCurrentTimeInt64(sqlite3_vfs *vfs, sqlite3_int64 *now) {
    (void)vfs;
    if (defaultVFS->iVersion >= 2 && defaultVFS->xCurrentTimeInt64 != NULL) return defaultVFS->xCurrentTimeInt64(defaultVFS, now);
    double days;
    int rc = defaultVFS->xCurrentTime(defaultVFS, &days);
    *now = (sqlite3_int64)(days * 86400000.0);
    return rc;
}

static sqlite3_vfs coalescingVFS;
static int registration = SQLITE_ERROR;

static void registerOnce(void) {
    defaultVFS = sqlite3_vfs_find(NULL);
    if (defaultVFS == NULL) return;
    coalescingVFS = (sqlite3_vfs){
        .iVersion = 2,
        .szOsFile = (int)sizeof(CoalescingFile) + defaultVFS->szOsFile,
        .mxPathname = defaultVFS->mxPathname,
        .zName = CH_COALESCING_VFS_NAME,
        .xOpen = vfsOpen,
        .xDelete = vfsDelete,
        .xAccess = vfsAccess,
        .xFullPathname = vfsFullPathname,
        .xDlOpen = vfsDlOpen,
        .xDlError = vfsDlError,
        .xDlSym = vfsDlSym,
        .xDlClose = vfsDlClose,
        .xRandomness = vfsRandomness,
        .xSleep = vfsSleep,
        .xCurrentTime = vfsCurrentTime,
        .xGetLastError = vfsGetLastError,
        .xCurrentTimeInt64 = vfsCurrentTimeInt64,
    };
    registration = sqlite3_vfs_register(&coalescingVFS, 0);
}

int ch_coalescing_vfs_register(void) {
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pthread_once(&once, registerOnce);
    return registration;
}

int ch_coalescing_vfs_wal_writes(sqlite3 *db, sqlite3_int64 *requested, sqlite3_int64 *issued) {
    sqlite3_int64 counts[2] = {0, 0};
    int rc = sqlite3_file_control(db, "main", walWritesControl, counts);
    *requested = counts[0];
    *issued = counts[1];
    return rc;
}
