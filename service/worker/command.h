/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <sys/types.h>
#include <systemd/sd-event.h>

/* A program run as a user (never root) and watched from the event loop, with a time limit: the restart
 * command of a restored instance. */

typedef struct Command Command;

/* Called once, when the command is gone: r is 0 and si_code/status say how it ended (CLD_EXITED and the
 * exit status, or CLD_KILLED/CLD_DUMPED and the signal), or r is -ETIMEDOUT when it was killed at the
 * time limit, or another negative errno. done may free the Command. */
typedef void (*command_done_fn)(int r, int si_code, int status, void *userdata);

/* Forks a child that becomes uid/gid (uid 0 is refused) in a process group of its own and executes argv
 * (argv[0] a path). After timeout_sec the whole group is killed. */
int command_start(sd_event *e, uid_t uid, gid_t gid, char *const argv[], unsigned timeout_sec,
                  command_done_fn done, void *userdata, Command **ret);
/* Kills a command still running (its process group); done is not called then. */
Command *command_free(Command *c);
