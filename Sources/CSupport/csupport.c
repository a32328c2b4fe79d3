#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "csupport.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <malloc.h>
#include <sys/syscall.h>
#include <sys/random.h>
#include <pthread.h>
#include <stdint.h>
#endif

// The raw sigaction below assumes the kernel's struct layout of these two architectures.
#if defined(__linux__) && (defined(__x86_64__) || defined(__aarch64__))
#include <sched.h>

/// What the child of `ch_spawn` needs; it shares the parent's memory until it execs.
struct spawn_child {
    const char *path;
    char *const *argv;
    char *const *envp;
    const char *cwd;
    int fds[3];
    /// Set by the child when a step fails: the errno ch_spawn returns.
    volatile int error;
};

/// Signals some process may set to SIG_IGN (which survives exec) or handle: reset in every
/// child, whatever the snapshot below saw.
static const int usually_changed[] = {
    SIGHUP, SIGINT, SIGQUIT, SIGPIPE, SIGTERM, SIGUSR1, SIGUSR2, SIGCHLD, SIGALRM, SIGTSTP,
    SIGTTIN, SIGTTOU, SIGXFSZ, SIGXCPU, SIGURG, SIGWINCH, SIGIO, SIGVTALRM, SIGPROF,
};
/// The signals every child resets: `usually_changed` and those the snapshot found changed.
static int reset_signals[_NSIG];
static int reset_count;
static pthread_once_t changed_once = PTHREAD_ONCE_INIT;

/// The kernel's sigaction, for the raw system call: glibc's wrapper refuses the two signals it
/// keeps for itself (32 and 33), which a process can still inherit as ignored.
struct kernel_sigaction {
    void (*handler)(int);
    unsigned long flags;
    void (*restorer)(void);
    uint64_t mask;
};

static int raw_sigaction(int sig, const struct kernel_sigaction *action, struct kernel_sigaction *old) {
    return (int)syscall(SYS_rt_sigaction, sig, action, old, sizeof(uint64_t));
}

/// The signals to reset, worked out at the first spawn: `usually_changed` and those whose
/// disposition is not the default then: what the process inherited (glibc's posix_spawn leaves
/// 32 and 33 ignored in its children, and a parent may ignore more) and what the runtime
/// installed before main. Read once: asking all 64 per spawn was a sixth of the child's work.
static void snapshot_changed_signals(void) {
    uint64_t reset = 0;
    for (size_t i = 0; i < sizeof usually_changed / sizeof usually_changed[0]; i++) reset |= (uint64_t)1 << (usually_changed[i] - 1);
    for (int sig = 1; sig < _NSIG; sig++) {
        struct kernel_sigaction current;
        if (sig == SIGKILL || sig == SIGSTOP || raw_sigaction(sig, NULL, &current) != 0) continue;
        if (current.handler != SIG_DFL) reset |= (uint64_t)1 << (sig - 1);
    }
    reset_count = 0;
    for (int sig = 1; sig < _NSIG; sig++) {
        if (reset >> (sig - 1) & 1) reset_signals[reset_count++] = sig;
    }
}

static int spawn_child_main(void *argument) {
    struct spawn_child *child = argument;
    // Default dispositions before anything can unblock a signal: until it execs, a handler
    // would run here on the parent's memory. (An ignored signal would also stay ignored in the
    // agent, SIGPIPE above all.)
    struct kernel_sigaction defaults;
    memset(&defaults, 0, sizeof defaults);
    defaults.handler = SIG_DFL;
    for (int i = 0; i < reset_count; i++) raw_sigaction(reset_signals[i], &defaults, NULL);
    if (setpgid(0, 0) != 0) goto fail;
    for (int target = 0; target < 3; target++) {
        int fd = child->fds[target];
        if (fd == target) {
            // dup2 onto itself would keep close-on-exec set.
            int flags = fcntl(fd, F_GETFD);
            if (flags < 0 || fcntl(fd, F_SETFD, flags & ~FD_CLOEXEC) != 0) goto fail;
        } else if (dup2(fd, target) < 0) {
            goto fail;
        }
    }
    if (syscall(SYS_close_range, 3U, ~0U, 0U) != 0) {
        long limit = sysconf(_SC_OPEN_MAX);
        for (long fd = 3; fd < (limit > 0 ? limit : 65536); fd++) close((int)fd);
    }
    if (child->cwd != NULL && chdir(child->cwd) != 0) goto fail;
    uint64_t none = 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &none, NULL, sizeof none);
    execve(child->path, child->argv, child->envp);
fail:
    child->error = errno != 0 ? errno : ECHILD;
    _exit(127);
}

/// posix_spawn's steps, done the way glibc's posix_spawn does them (clone with CLONE_VM and
/// CLONE_VFORK, every signal blocked meanwhile), minus what cost a task more than it bought:
/// the child's stack is a buffer on this thread's stack, not a fresh mapping (whose unmapping
/// interrupted the other cores to flush their TLBs), the dispositions reset are the ones that
/// can differ (not all 64, each a system call), and no file-actions bookkeeping (which asked
/// for the fd limit six times per spawn).
int ch_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
             int stdin_fd, int stdout_fd, int stderr_fd, pid_t *pid) {
    pthread_once(&changed_once, snapshot_changed_signals);
    struct spawn_child child = {
        .path = path, .argv = argv, .envp = envp, .cwd = cwd, .fds = {stdin_fd, stdout_fd, stderr_fd}, .error = 0,
    };

    // Raw, so that glibc's own signals are blocked too (its sigset functions leave them out).
    uint64_t all = ~(uint64_t)0, previous = 0;
    syscall(SYS_rt_sigprocmask, SIG_BLOCK, &all, &previous, sizeof all);
    // The calling thread is suspended until the child execs or exits (CLONE_VFORK), so its
    // frame, and this buffer in it, outlives every use the child makes of it.
    _Alignas(16) char stack[32 * 1024];
    pid_t child_pid = clone(spawn_child_main, stack + sizeof stack, CLONE_VM | CLONE_VFORK | SIGCHLD, &child);
    int rc = child_pid < 0 ? errno : 0;
    syscall(SYS_rt_sigprocmask, SIG_SETMASK, &previous, NULL, sizeof previous);
    if (rc != 0) return rc;
    if (child.error != 0) {
        // The child failed before exec and has exited: reap it, report why.
        int status;
        while (waitpid(child_pid, &status, 0) < 0 && errno == EINTR) {}
        return child.error;
    }
    *pid = child_pid;
    return 0;
}
#else
int ch_spawn(const char *path, char *const argv[], char *const envp[], const char *cwd,
             int stdin_fd, int stdout_fd, int stderr_fd, pid_t *pid) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    int rc = posix_spawnattr_init(&attr);
    if (rc != 0) return rc;
    rc = posix_spawn_file_actions_init(&actions);
    if (rc != 0) { posix_spawnattr_destroy(&attr); return rc; }

    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    short flags = POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK;
#ifdef __APPLE__
    flags |= POSIX_SPAWN_CLOEXEC_DEFAULT;
#endif
    if ((rc = posix_spawnattr_setflags(&attr, flags)) != 0) goto done;
    if ((rc = posix_spawnattr_setpgroup(&attr, 0)) != 0) goto done;
    if ((rc = posix_spawnattr_setsigdefault(&attr, &all)) != 0) goto done;
    if ((rc = posix_spawnattr_setsigmask(&attr, &none)) != 0) goto done;

    if ((rc = posix_spawn_file_actions_adddup2(&actions, stdin_fd, 0)) != 0) goto done;
    if ((rc = posix_spawn_file_actions_adddup2(&actions, stdout_fd, 1)) != 0) goto done;
    if ((rc = posix_spawn_file_actions_adddup2(&actions, stderr_fd, 2)) != 0) goto done;
#ifdef __linux__
    if ((rc = posix_spawn_file_actions_addclosefrom_np(&actions, 3)) != 0) goto done;
#endif
    if (cwd != NULL) {
        if ((rc = posix_spawn_file_actions_addchdir_np(&actions, cwd)) != 0) goto done;
    }
    rc = posix_spawn(pid, path, &actions, &attr, argv, envp);
done:
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    return rc;
}

#endif

int ch_pidfd_open(pid_t pid) {
#if defined(__linux__) && defined(SYS_pidfd_open)
    return (int)syscall(SYS_pidfd_open, pid, 0);
#else
    (void)pid;
    errno = ENOSYS;
    return -1;
#endif
}

int ch_is_memory_filesystem(const char *path) {
#ifdef __linux__
    struct statfs info;
    if (statfs(path, &info) != 0) return 0;
    return info.f_type == 0x01021994 /* TMPFS_MAGIC */ || info.f_type == (typeof(info.f_type))0x858458f6 /* RAMFS_MAGIC */;
#else
    (void)path;
    return 0;
#endif
}

void ch_set_malloc_trim_threshold(int bytes) {
#ifdef __GLIBC__
    mallopt(M_TRIM_THRESHOLD, bytes);
#else
    (void)bytes;
#endif
}

void ch_name_thread(const char *name) {
#ifdef __linux__
    prctl(PR_SET_NAME, (unsigned long)name, 0, 0, 0);
#else
    (void)name;
#endif
}

void ch_unblock_child_signal(void) {
    sigset_t child;
    sigemptyset(&child);
    sigaddset(&child, SIGCHLD);
    pthread_sigmask(SIG_UNBLOCK, &child, NULL);
}

int ch_set_child_subreaper(void) {
#ifdef __linux__
    return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0);
#else
    errno = ENOSYS;
    return -1;
#endif
}

int ch_wait(pid_t pid, int reap, int block, int *exit_code, int *signal) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    int options = WEXITED;
    if (!reap) options |= WNOWAIT;
    if (!block) options |= WNOHANG;
    int rc;
    do {
        rc = waitid(P_PID, (id_t)pid, &info, options);
    } while (rc == -1 && errno == EINTR);
    if (rc == -1) return -1;
    if (info.si_pid == 0) return 0;
    *exit_code = -1;
    *signal = -1;
    if (info.si_code == CLD_EXITED) {
        *exit_code = info.si_status;
    } else {
        *signal = info.si_status;
    }
    return 1;
}

int ch_pipe_cloexec(int fds[2]) {
#ifdef __linux__
    return pipe2(fds, O_CLOEXEC);
#else
    if (pipe(fds) != 0) return -1;
    fcntl(fds[0], F_SETFD, FD_CLOEXEC);
    fcntl(fds[1], F_SETFD, FD_CLOEXEC);
    return 0;
#endif
}

static void whole_file(struct flock *lock, short type) {
    memset(lock, 0, sizeof *lock);
    lock->l_type = type;
    lock->l_whence = SEEK_SET;
}

int ch_lock_try(int fd) {
    struct flock lock;
    whole_file(&lock, F_WRLCK);
    return fcntl(fd, F_SETLK, &lock);
}

int ch_lock_wait(int fd) {
    struct flock lock;
    whole_file(&lock, F_WRLCK);
    int rc;
    do { rc = fcntl(fd, F_SETLKW, &lock); } while (rc == -1 && errno == EINTR);
    return rc;
}

pid_t ch_lock_holder(int fd) {
    struct flock lock;
    whole_file(&lock, F_WRLCK);
    if (fcntl(fd, F_GETLK, &lock) == -1) return 0;
    return lock.l_type == F_UNLCK ? 0 : lock.l_pid;
}

int ch_random_bytes(void *buf, size_t len) {
#ifdef __APPLE__
    arc4random_buf(buf, len);
    return 0;
#else
    unsigned char *p = buf;
    while (len > 0) {
        ssize_t n = getrandom(p, len, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
#endif
}
