/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <grp.h>
#include <pwd.h>
#include <sched.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "log.h"
#include "util.h"
#include "worker/privs.h"

#define GROUPS_MAX 256
#define GROUPS_USERS_MAX 16
#define GROUPS_TTL_USEC (60U * 1000000U)

/* The supplementary groups of the users workers become, looked up by the daemon (privs_groups_prepare())
 * and found by the child in its copy of the daemon's memory: a lookup after fork() would cost each short
 * worker a pass through NSS (reading /etc/passwd and /etc/group, or asking another service) — 2-4 ms. A
 * lookup is redone when /etc/passwd or /etc/group changed, or after a minute (for other NSS sources). */
typedef struct UserGroups {
        uid_t uid;
        gid_t gid;
        int n;
        gid_t groups[GROUPS_MAX];
        uint64_t when;                  /* CLOCK_MONOTONIC, µs */
} UserGroups;

static UserGroups user_groups[GROUPS_USERS_MAX];
static size_t n_user_groups;
static struct timespec files_mtime[2];

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000U + (uint64_t) ts.tv_nsec / 1000U;
}

static void lookup_groups(uid_t uid, gid_t gid, gid_t *groups, int *n) {
        struct passwd *pw = getpwuid(uid);

        *n = GROUPS_MAX;
        if (!pw || getgrouplist(pw->pw_name, gid, groups, n) < 0)
                *n = 1, groups[0] = gid;
}

static UserGroups *find_groups(uid_t uid, gid_t gid) {
        for (size_t k = 0; k < n_user_groups; k++)
                if (user_groups[k].uid == uid && user_groups[k].gid == gid)
                        return &user_groups[k];
        return NULL;
}

void privs_groups_prepare(uid_t uid, gid_t gid) {
        static const char *const files[2] = { "/etc/passwd", "/etc/group" };
        uint64_t now = now_usec();
        UserGroups *u;

        for (size_t k = 0; k < 2; k++) {
                struct stat st;
                struct timespec m = {};

                if (stat(files[k], &st) == 0)
                        m = st.st_mtim;
                if (m.tv_sec != files_mtime[k].tv_sec || m.tv_nsec != files_mtime[k].tv_nsec) {
                        n_user_groups = 0;      /* a user or group changed: look them all up again */
                        files_mtime[k] = m;
                }
        }
        u = find_groups(uid, gid);
        if (u && now - u->when < GROUPS_TTL_USEC)
                return;
        if (!u) {
                if (n_user_groups == GROUPS_USERS_MAX)
                        n_user_groups = 0;
                u = &user_groups[n_user_groups++];
        }
        u->uid = uid;
        u->gid = gid;
        u->when = now;
        lookup_groups(uid, gid, u->groups, &u->n);
}

int drop_privileges(uid_t uid, gid_t gid) {
        pid_t parent = getppid();
        const UserGroups *u = find_groups(uid, gid);
        gid_t lookup[GROUPS_MAX];
        const gid_t *groups = lookup;
        int n;

        if (u) {
                groups = u->groups;
                n = u->n;
        } else
                lookup_groups(uid, gid, lookup, &n);

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
