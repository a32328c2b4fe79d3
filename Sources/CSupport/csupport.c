#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "csupport.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#ifdef __linux__
#include <sys/prctl.h>
#include <sys/vfs.h>
#include <malloc.h>
#include <sys/syscall.h>
#endif

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
