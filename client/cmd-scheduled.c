/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl scheduled-backup: what opbackup-backup.service runs from its timer, as the system user
 * opbackup-scheduler. For each instance (or -i INSTANCE), all at once in a child each: a backup without
 * the instance's [Schedule] Exclude= folders that waits while the printer prints ("when-idle"), then
 * pruning to its Keep= — only backups named the way OctoPrint and opbackup name them, never one a
 * person named — and, for each remote of its CopyTo=, copying every local backup the remote lacks (one
 * that failed before, or was made while the remote was down) and pruning the remote to its own Keep=.
 * With --json, each child hands its outcome to the parent through a pipe, and the parent
 * prints them all as one document. */

#include <fcntl.h>
#include <json-c/json.h>
#include <signal.h>
#include <sys/wait.h>

#include "bus-client.h"
#include "cmd-backup.h"
#include "cmd-scheduled.h"
#include "names.h"
#include "cmd-upload.h"
#include "output.h"
#include "util.h"

/* Keep= counts and prunes only the backups the schedule made (BACKUP_SCHEDULED_GLOB): a backup a person
 * made, named or not, is never deleted by the schedule (opbackupd.conf(5), Keep=): it may be the only one
 * with the timelapses. */

/* What a child may hand its parent: one instance's outcome, with the names it pruned. */
#define OUTCOME_JSON_MAX (16U * 1024U * 1024U)

typedef struct ScheduledInstance {
        char *name;
        char *path;
        int usable;
        char *unusable_reason;
        uint32_t keep;
        char **excludes;
        char **remotes;                 /* CopyTo= */
        pid_t pid;
        int outcome_fd;                 /* --json: the read end of the child's pipe */
} ScheduledInstance;

static void scheduled_instance_done(ScheduledInstance *s) {
        free(s->name);
        free(s->path);
        free(s->unusable_reason);
        strv_free(s->excludes);
        strv_free(s->remotes);
        if (s->outcome_fd >= 0)
                close(s->outcome_fd);
        *s = (ScheduledInstance) { .outcome_fd = -1 };
}

static int instance_property(sd_bus_message *m, const char *key, const char *contents, void *userdata) {
        ScheduledInstance *s = userdata;
        const char *str;
        int r;

        if (streq(key, "Usable") && streq(contents, "b"))
                return sd_bus_message_read(m, "v", "b", &s->usable);
        if (streq(key, "UnusableReason") && streq(contents, "s")) {
                r = sd_bus_message_read(m, "v", "s", &str);
                return r < 0 ? r : free_and_strdup(&s->unusable_reason, str) < 0 ? -ENOMEM : 1;
        }
        if (streq(key, "Keep") && streq(contents, "u"))
                return sd_bus_message_read(m, "v", "u", &s->keep);
        if ((streq(key, "ScheduleExcludes") || streq(key, "Remotes")) && streq(contents, "as")) {
                r = sd_bus_message_enter_container(m, 'v', "as");
                if (r >= 0)
                        r = sd_bus_message_read_strv(m, streq(key, "Remotes") ? &s->remotes : &s->excludes);
                if (r >= 0)
                        r = sd_bus_message_exit_container(m);
                return r < 0 ? r : 1;
        }
        return 0;
}

static int load_instance(Ctl *ctl, const char *name, const char *path, ScheduledInstance *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        *ret = (ScheduledInstance) { .outcome_fd = -1 };
        ret->name = strdup(name);
        ret->path = strdup(path);
        if (!ret->name || !ret->path)
                return ctl_report_error(ctl, NULL, NULL, -ENOMEM);
        r = ctl_call(ctl, path, "org.freedesktop.DBus.Properties", "GetAll", &reply, "s", INSTANCE_INTERFACE);
        if (r != 0)
                return r;
        r = ctl_read_dict(reply, instance_property, ret);
        return r < 0 ? ctl_report_error(ctl, NULL, NULL, r) : 0;
}

/* The instances to back up: -i INSTANCE, or all of them. */
static int list_instances(Ctl *ctl, ScheduledInstance **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ScheduledInstance *l = NULL;
        const char *name, *path;
        size_t n = 0, allocated = 0;
        int r;

        if (ctl->instance) {
                _cleanup_free_ char *p = NULL;

                r = ctl_instance_path(ctl, &p);
                if (r != 0)
                        return r;
                l = calloc(1, sizeof(*l));
                if (!l)
                        return ctl_report_error(ctl, NULL, NULL, -ENOMEM);
                *ret = l;
                *ret_n = 1;
                return load_instance(ctl, ctl->instance, p, &l[0]);
        }
        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "ListInstances", &reply, NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(so)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(so)", &name, &path)) > 0) {
                if (ARRAY_RESERVE(l, allocated, n + 1) < 0) {
                        r = -ENOMEM;
                        break;
                }
                r = load_instance(ctl, name, path, &l[n++]);
                if (r != 0) {
                        *ret = l;
                        *ret_n = n;
                        return r;
                }
        }
        *ret = l;
        *ret_n = n;
        return r < 0 ? ctl_report_error(ctl, NULL, NULL, r) : 0;
}

/* ---- In the child of one instance ---- */

typedef struct Outcome {
        const char *result;             /* "done", "skipped", "failed" */
        BackupResult backup;
        char **pruned;
        json_object *remotes;           /* [{"remote", "uploaded", "failed", "pruned", "error"}] */
        int exit_code;
} Outcome;

static int prune(Ctl *ctl, const ScheduledInstance *s, Outcome *o) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        ctl_set_doing(ctl, "prune the backups of %s", s->name);
        r = ctl_call(ctl, s->path, INSTANCE_INTERFACE, "PruneBackups", &reply, "us", s->keep, BACKUP_SCHEDULED_GLOB);
        if (r != 0)
                return r;
        r = sd_bus_message_read_strv(reply, &o->pruned);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);
        STRV_FOREACH(d, o->pruned)
                if (!ctl->json)
                        printf("%s: deleted %s (Keep=%u).\n", s->name, *d, s->keep);
        return 0;
}

static int names_of(Ctl *ctl, const char *path, const char *member, const char *remote, char ***ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        const char *name;
        int r;

        r = remote ? ctl_call(ctl, path, INSTANCE_INTERFACE, member, &reply, "s", remote) :
                ctl_call(ctl, path, INSTANCE_INTERFACE, member, &reply, NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', remote ? "(stx)" : "(sttxsas)");
        while (r >= 0 && (r = sd_bus_message_enter_container(reply, 'r', remote ? "stx" : "sttxsas")) > 0) {
                r = sd_bus_message_read(reply, "s", &name);
                if (r >= 0)
                        r = strv_extend(ret, name);
                if (r >= 0)
                        r = sd_bus_message_skip(reply, remote ? "tx" : "ttxsas");
                if (r >= 0)
                        r = sd_bus_message_exit_container(reply);
        }
        return r < 0 ? ctl_report_error(ctl, NULL, NULL, r) : 0;
}

/* One remote: what it lacks is uploaded (oldest first), then it is pruned to its Keep=. A remote that
 * cannot be reached fails this run: the next one tries again. */
static int sync_remote(Ctl *ctl, const ScheduledInstance *s, char *const *local, const char *remote, Outcome *o) {
        _cleanup_strv_free_ char **there = NULL, **uploaded = NULL, **pruned = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        json_object *j = json_object_new_object(), *failed = json_object_new_array();
        char *const one[] = { (char *) remote, NULL };
        int r, ret = 0;

        json_object_object_add(j, "remote", json_object_new_string(remote));
        json_object_array_add(o->remotes, j);
        json_object_object_add(j, "failed", failed);
        ctl_set_doing(ctl, "list the backups of %s on %s", s->name, remote);
        r = names_of(ctl, s->path, "ListRemoteBackups", remote, &there);
        if (r != 0) {
                json_object_object_add(j, "error", json_object_new_string("cannot list the remote"));
                return r;
        }
        for (size_t k = strv_length(local); k > 0; k--) {
                const char *name = local[k - 1];
                json_object *uploads = NULL;

                if (strv_contains(there, name))
                        continue;
                ctl_set_doing(ctl, "upload %s to %s", name, remote);
                r = upload_backup(ctl, s->path, name, one, &uploads);
                if (r == 0 && uploads && json_object_array_length(uploads) == 1) {
                        json_object *u = json_object_array_get_idx(uploads, 0), *v;
                        if (json_object_object_get_ex(u, "result", &v) && streq(json_object_get_string(v), "done")) {
                                (void) strv_extend(&uploaded, name);
                                if (!ctl->json)
                                        printf("%s: uploaded %s to %s.\n", s->name, name, remote);
                        } else
                                r = EXIT_FAIL;
                }
                if (r != 0) {
                        json_object *f = json_object_new_object();
                        json_object_object_add(f, "name", json_object_new_string(name));
                        json_object_array_add(failed, f);
                        if (ret == 0)
                                ret = r;
                }
                json_object_put(uploads);
        }
        json_object_object_add(j, "uploaded", strv_to_json(uploaded));
        ctl_set_doing(ctl, "prune the backups of %s on %s", s->name, remote);
        r = ctl_call(ctl, s->path, INSTANCE_INTERFACE, "PruneRemoteBackups", &reply, "s", remote);
        if (r == 0 && sd_bus_message_read_strv(reply, &pruned) < 0)
                r = ctl_report_error(ctl, NULL, NULL, -EBADMSG);
        STRV_FOREACH(d, pruned)
                if (!ctl->json)
                        printf("%s: deleted %s on %s (its Keep=).\n", s->name, *d, remote);
        json_object_object_add(j, "pruned", strv_to_json(pruned));
        return ret ? ret : r;
}

static int sync_remotes(Ctl *ctl, const ScheduledInstance *s, Outcome *o) {
        _cleanup_strv_free_ char **local = NULL;
        int r, ret = 0;

        if (!s->remotes)
                return 0;
        o->remotes = json_object_new_array();
        ctl_set_doing(ctl, "list the backups of %s", s->name);
        /* ListBackups lists the newest first: uploading from the end sends the oldest first, so that a
         * remote's Keep= prunes what it should even when many are missing. */
        r = names_of(ctl, s->path, "ListBackups", NULL, &local);
        if (r != 0)
                return r;
        STRV_FOREACH(remote, s->remotes) {
                r = sync_remote(ctl, s, local, *remote, o);
                if (r != 0 && ret == 0)
                        ret = r;
        }
        return ret;
}

static int back_up_one(Ctl *ctl, const ScheduledInstance *s, Outcome *o) {
        _cleanup_free_ char *excluded = NULL;
        BackupArgs a = { .excludes = s->excludes, .when_idle = true, .scheduled = true };
        int r, q;

        o->result = "failed";
        if (!s->usable) {
                fprintf(stderr, "Cannot back up %s: %s\n", s->name, strempty(s->unusable_reason));
                return EXIT_FAIL;
        }
        STRV_FOREACH(e, s->excludes) {
                char *t;
                if (asprintf(&t, "%s%s%s", strempty(excluded), excluded ? " " : "", *e) < 0)
                        return ctl_report_error(ctl, NULL, NULL, -ENOMEM);
                free(excluded);
                excluded = t;
        }
        if (!ctl->json) {
                printf("%s: backing up%s%s.\n", s->name, excluded ? " without " : "", strempty(excluded));
                fflush(stdout);
        }
        ctl_set_doing(ctl, "back up %s", s->name);
        r = backup_instance(ctl, s->path, &a, &o->backup);
        if (r == EXIT_BUSY) {
                /* Printing (or a restore) now: the next run will catch up. Nothing new to prune for; the
                 * remotes may still lack older backups. */
                if (!ctl->json)
                        printf("%s: skipped.\n", s->name);
                o->result = "skipped";
                return sync_remotes(ctl, s, o);
        }
        if (r != EXIT_OK)
                return r;
        if (!ctl->json)
                backup_result_print(ctl, &o->backup);
        o->result = "done";
        if (s->keep > 0)
                r = prune(ctl, s, o);
        q = sync_remotes(ctl, s, o);
        return r != 0 ? r : q;
}

static json_object *outcome_json(const char *name, const Outcome *o) {
        json_object *j = json_object_new_object();

        json_object_object_add(j, "instance", json_object_new_string(name));
        json_object_object_add(j, "result", json_object_new_string(o->result));
        json_object_object_add(j, "backup", o->backup.path ? backup_result_json(&o->backup, false) : NULL);
        json_object_object_add(j, "pruned", strv_to_json(o->pruned));
        json_object_object_add(j, "remotes", o->remotes ? json_object_get(o->remotes) : json_object_new_array());
        json_object_object_add(j, "exit_status", json_object_new_int(o->exit_code));
        return j;
}

/* In a child of its own, with a bus connection of its own: while one printer prints, the others are
 * backed up. Not interactive: SIGINT and SIGTERM cancel the backup. */
static void start_one(Ctl *ctl, ScheduledInstance *s) {
        Outcome o = {};
        int fds[2] = { -1, -1 }, fd;

        fflush(stdout);
        fflush(stderr);
        if (ctl->json && pipe2(fds, O_CLOEXEC) < 0) {
                s->pid = -errno;
                return;
        }
        s->pid = fork();
        if (s->pid != 0) {
                if (s->pid < 0)
                        s->pid = -errno;
                if (fds[1] >= 0)
                        close(fds[1]);
                s->outcome_fd = fds[0];
                return;
        }

        /* The parent's connection (closed there) is not ours to use. */
        if (fds[0] >= 0)
                close(fds[0]);
        ctl->bus = NULL;
        ctl->ask_password = false;
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                _exit(EXIT_FAIL);
        setvbuf(stdout, NULL, _IOLBF, 0);
        o.exit_code = ctl_connect(ctl);
        if (o.exit_code == 0)
                o.exit_code = back_up_one(ctl, s, &o);
        else
                o.result = "failed";
        if (fds[1] >= 0) {
                json_object *j = outcome_json(s->name, &o);
                const char *text = json_object_to_json_string_ext(j, JSON_C_TO_STRING_PLAIN |
                                                                        JSON_C_TO_STRING_NOSLASHESCAPE);
                (void) write_all(fds[1], text, strlen(text));
                json_object_put(j);
        }
        fflush(stdout);
        fflush(stderr);
        _exit(o.exit_code);
}

/* ---- In the parent ---- */

/* The child's outcome (--json), read to its end before the child is waited for: a child blocked on a full
 * pipe would never exit. Without one (the child died), an outcome that says so. */
static json_object *read_outcome(const ScheduledInstance *s) {
        _cleanup_free_ char *text = NULL;
        json_object *j = NULL;

        if (s->outcome_fd >= 0 && read_full_fd(s->outcome_fd, OUTCOME_JSON_MAX, &text, NULL) >= 0)
                j = json_tokener_parse(text);
        if (!j || !json_object_is_type(j, json_type_object)) {
                Outcome o = { .result = "failed", .exit_code = EXIT_FAIL };
                json_object_put(j);
                j = outcome_json(s->name, &o);
        }
        return j;
}

/* Waits for every child; returns the exit status of the first that failed, else 0. */
static int collect(Ctl *ctl, ScheduledInstance *l, size_t n) {
        json_object *outcomes = ctl->json ? json_object_new_array() : NULL;
        int first_failure = EXIT_OK;

        for (size_t k = 0; k < n; k++) {
                json_object *j = outcomes ? read_outcome(&l[k]) : NULL;
                int status = 0, q = EXIT_FAIL, w;

                if (l[k].pid > 0) {
                        while ((w = waitpid(l[k].pid, &status, 0)) < 0 && errno == EINTR)
                                ;
                        if (w > 0 && WIFEXITED(status))
                                q = WEXITSTATUS(status);
                } else
                        fprintf(stderr, "Cannot back up %s: cannot start its backup: %s\n", l[k].name,
                                strerror(-l[k].pid));
                /* One broken instance does not cost the others their backup, nor hide its failure. */
                if (q != EXIT_OK && first_failure == EXIT_OK)
                        first_failure = q;
                if (j) {
                        json_object_object_add(j, "exit_status", json_object_new_int(q));
                        json_object_array_add(outcomes, j);
                }
        }
        if (outcomes) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "instances", outcomes);
                ctl_json_print(o);
                json_object_put(o);
        }
        return first_failure;
}

int cmd_scheduled_backup(Ctl *ctl, int argc, char *argv[]) {
        ScheduledInstance *l = NULL;
        size_t n = 0;
        sigset_t ss;
        int r;

        r = list_instances(ctl, &l, &n);
        if (r == 0 && n == 0 && !ctl->json)
                printf("No OctoPrint instance to back up.\n");
        if (r == 0) {
                /* Ctrl-C or systemd's SIGTERM reaches the children, which cancel their jobs; we stay to
                 * collect them. */
                sigemptyset(&ss);
                sigaddset(&ss, SIGINT);
                sigaddset(&ss, SIGTERM);
                sigprocmask(SIG_BLOCK, &ss, NULL);
                ctl->bus = sd_bus_flush_close_unref(ctl->bus);
                for (size_t k = 0; k < n; k++)
                        start_one(ctl, &l[k]);
                r = collect(ctl, l, n);
        }
        for (size_t k = 0; k < n; k++)
                scheduled_instance_done(&l[k]);
        free(l);
        return r;
}
