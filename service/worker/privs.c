/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>

#include "log.h"
#include "util.h"
#include "worker/privs.h"

#define GROUPS_MAX 256

int drop_privileges(uid_t uid, gid_t gid) {
        pid_t parent = getppid();
        struct passwd *pw;
        gid_t groups[GROUPS_MAX];
        int n = GROUPS_MAX;

        pw = getpwuid(uid);
        if (pw) {
                if (getgrouplist(pw->pw_name, gid, groups, &n) < 0)
                        n = 1, groups[0] = gid;
        } else
                n = 1, groups[0] = gid;

        if (setgroups(n, groups) < 0)
                return -errno;
        if (setresgid(gid, gid, gid) < 0)
                return -errno;
        if (setresuid(uid, uid, uid) < 0)
                return -errno;

        /* Paranoia: if any of this could be undone, the drop did not happen. */
        if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
                return -EPERM;
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0)
                return -errno;
        /* The kernel clears the parent-death signal fork_worker() set when the euid changes: set it
         * again, or a worker outlives a killed daemon. If the daemon died meanwhile, give up. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL, 0, 0, 0) < 0)
                return -errno;
        if (getppid() != parent)
                return -ESRCH;
        return 0;
}

void become_idle_priority(void) {
        struct sched_param p = {};
        /* ioprio_set(IOPRIO_WHO_PROCESS, 0, IOPRIO_CLASS_IDLE << 13): glibc has no wrapper. */
        const int ioprio_class_idle = 3, ioprio_class_shift = 13, ioprio_who_process = 1;

        if (setpriority(PRIO_PROCESS, 0, 19) < 0)
                log_debug("setpriority failed: %m");
        if (sched_setscheduler(0, SCHED_IDLE, &p) < 0)
                log_debug("SCHED_IDLE failed: %m");
        if (syscall(SYS_ioprio_set, ioprio_who_process, 0, ioprio_class_idle << ioprio_class_shift) < 0)
                log_debug("ioprio_set failed: %m");
}

int fork_worker(const char *name, pid_t *ret_pid) {
        pid_t parent = getpid(), pid;

        fflush(stderr);
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid > 0) {
                *ret_pid = pid;
                return 1;
        }

        /* A worker must never outlive the daemon: it holds half-written files the daemon cleans up. */
        (void) prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
                _exit(EXIT_FAILURE);
        if (name)
                (void) prctl(PR_SET_NAME, name);
        /* The daemon may have blocked signals for sd-event; a worker starts clean. */
        sigset_t ss;
        sigemptyset(&ss);
        (void) sigprocmask(SIG_SETMASK, &ss, NULL);
        signal(SIGPIPE, SIG_DFL);
        *ret_pid = 0;
        return 0;
}

int resolve_user(const char *user, uid_t *ret_uid, gid_t *ret_gid, char **ret_name) {
        struct passwd *pw;
        char *end;
        unsigned long u;

        errno = 0;
        u = strtoul(user, &end, 10);
        if (*user && !*end && errno == 0)
                pw = getpwuid((uid_t) u);
        else
                pw = getpwnam(user);
        if (!pw)
                return errno > 0 ? -errno : -ESRCH;
        if (ret_name) {
                *ret_name = strdup(pw->pw_name);
                if (!*ret_name)
                        return -ENOMEM;
        }
        *ret_uid = pw->pw_uid;
        *ret_gid = pw->pw_gid;
        return 0;
}

int resolve_user_by_uid(uid_t uid, uid_t *ret_uid, gid_t *ret_gid, char **ret_name) {
        char buf[32];

        snprintf(buf, sizeof(buf), "%u", (unsigned) uid);
        return resolve_user(buf, ret_uid, ret_gid, ret_name);
}
