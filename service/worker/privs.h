/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <sys/types.h>

/* Becomes uid/gid for good: supplementary groups of the user, then gid, then uid (saved ids too), and
 * verifies that root cannot be regained. Re-arms fork_worker()'s parent-death signal, which the uid
 * change clears. To be called in a freshly forked child only. */
int drop_privileges(uid_t uid, gid_t gid);
/* In the daemon, before forking a child that will call drop_privileges(uid, gid): looks up the user's
 * supplementary groups (again only when /etc/passwd or /etc/group changed, or after a minute), so that
 * the child does not. */
void privs_groups_prepare(uid_t uid, gid_t gid);

/* Lowest CPU and I/O priority, so a running print is not disturbed (opbackupd(8), DESCRIPTION). */
void become_idle_priority(void);

/* Forks a child that dies with the parent. Returns 0 in the child, the pid in the parent. */
int fork_worker(const char *name, pid_t *ret_pid);

/* Resolves a user name or numeric id. */
int resolve_user(const char *user, uid_t *ret_uid, gid_t *ret_gid, char **ret_name);
int resolve_user_by_uid(uid_t uid, uid_t *ret_uid, gid_t *ret_gid, char **ret_name);
