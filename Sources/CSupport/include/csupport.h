#ifndef CSUPPORT_H
#define CSUPPORT_H

#include <sys/types.h>

/// Spawns `path` in a new process group with default signal dispositions, an empty signal
/// mask, fds 0/1/2 taken from the given descriptors and every other descriptor closed.
/// Returns 0 and sets *pid, or an errno value (exec failures included: the child reports them
/// before it exits, and is reaped).
int ch_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
             int stdin_fd, int stdout_fd, int stderr_fd, pid_t *pid);

/// A descriptor that becomes readable when `pid` exits, or -1 with errno set.
int ch_pidfd_open(pid_t pid);

/// Makes orphaned descendants re-parent to this process instead of init. 0 or -1.
int ch_set_child_subreaper(void);

/// 1 when `path` is on a file system kept in memory (tmpfs, ramfs), 0 otherwise or on error.
int ch_is_memory_filesystem(const char *path);

/// mallopt(M_TRIM_THRESHOLD): freed memory at the top of the heap that glibc keeps instead of
/// returning it to the kernel (a no-op elsewhere).
void ch_set_malloc_trim_threshold(int bytes);

/// Names the calling thread for `top -H`, `ps -L` and `perf` (Linux; a no-op elsewhere).
void ch_name_thread(const char *name);

/// Unblocks SIGCHLD in the calling thread, so that its children's exits are discarded when they
/// are sent (SIGCHLD's default action is to ignore it) instead of queued for another thread.
void ch_unblock_child_signal(void);

/// waitid(P_PID) for an exited child. `reap`: 0 leaves it a zombie (WNOWAIT), 1 reaps it.
/// `block`: 0 returns at once. Returns 1 when it exited (with *exited_code or *signal set; the
/// other is -1), 0 when it is still running, -1 with errno on error.
int ch_wait(pid_t pid, int reap, int block, int *exit_code, int *signal);

/// Fills `buf` with `len` bytes from the kernel's random generator (getrandom on Linux,
/// arc4random_buf on macOS). 0, or -1 with errno set.
int ch_random_bytes(void *buf, size_t len);

/// pipe2(O_CLOEXEC). 0 or -1.
int ch_pipe_cloexec(int fds[2]);

/// fcntl lock helpers on a whole file: try an exclusive lock (0 ok, -1 errno), block for it,
/// or report the pid holding a conflicting lock (0 when none).
int ch_lock_try(int fd);
int ch_lock_wait(int fd);
pid_t ch_lock_holder(int fd);

#endif
