/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Commands run as an instance's user, watched by the event loop (command.h). */

#include <signal.h>
#include <sys/wait.h>

#include "log.h"
#include "util.h"
#include "worker/command.h"
#include "worker/privs.h"
#include "worker/worker-pipe.h"

struct Command {
        pid_t pid;
        sd_event_source *child, *timer;
        bool timed_out;
        command_done_fn done;
        void *userdata;
};

Command *command_free(Command *c) {
        if (!c)
                return NULL;
        /* What the command started in its group goes with it. The child itself is killed and reaped by
         * its event source, which owns it. */
        if (c->pid > 0)
                (void) kill(-c->pid, SIGKILL);
        sd_event_source_unref(c->timer);
        sd_event_source_unref(c->child);
        free(c);
        return NULL;
}

static int on_command_exit(sd_event_source *s, const siginfo_t *si, void *userdata) {
        Command *c = userdata;

        c->pid = 0;
        (void) sd_event_source_set_enabled(c->timer, SD_EVENT_OFF);
        c->done(c->timed_out ? -ETIMEDOUT : 0, si->si_code, si->si_status, c->userdata);
        return 0;
}

static int on_command_timeout(sd_event_source *s, uint64_t usec, void *userdata) {
        Command *c = userdata;

        /* The end is reported when the child is gone, which SIGKILL makes immediate. */
        c->timed_out = true;
        if (c->pid > 0)
                (void) kill(-c->pid, SIGKILL);
        return 0;
}

static _Noreturn void command_child(uid_t uid, gid_t gid, char *const argv[]) {
        close_all_fds_except(NULL, 0);
        /* A group of its own, so that a command that hangs is stopped with whatever it started. */
        if (setpgid(0, 0) < 0)
                _exit(127);
        if (drop_privileges(uid, gid) < 0)
                _exit(127);
        execv(argv[0], argv);
        _exit(127);
}

int command_start(sd_event *e, uid_t uid, gid_t gid, char *const argv[], unsigned timeout_sec,
                  command_done_fn done, void *userdata, Command **ret) {
        Command *c;
        int r;

        if (uid == 0)
                return -EPERM;
        c = calloc(1, sizeof(*c));
        if (!c)
                return -ENOMEM;
        *c = (Command) { .done = done, .userdata = userdata };
        privs_groups_prepare(uid, gid);
        r = fork_worker("opbackup-exec", &c->pid);
        if (r < 0) {
                free(c);
                return r;
        }
        if (r == 0)
                command_child(uid, gid, argv);
        /* Also here, against the race with the child's own setpgid(): the group exists before a timeout
         * can signal it. */
        (void) setpgid(c->pid, c->pid);
        r = sd_event_add_child(e, &c->child, c->pid, WEXITED, on_command_exit, c);
        if (r < 0) {
                (void) kill(c->pid, SIGKILL);
                (void) waitpid(c->pid, NULL, 0);
                free(c);
                return r;
        }
        (void) sd_event_source_set_child_process_own(c->child, true);
        r = sd_event_add_time_relative(e, &c->timer, CLOCK_MONOTONIC, (uint64_t) timeout_sec * 1000000ULL, 0,
                                       on_command_timeout, c);
        if (r < 0) {
                command_free(c);
                return r;
        }
        *ret = c;
        return 0;
}
