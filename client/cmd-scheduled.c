/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl scheduled-backup: what opbackup-backup.service runs from its timer, as the system user
 * opbackup-scheduler. For each instance (or -i INSTANCE), all at once in a child each: a backup without
 * the instance's [Schedule] Exclude= folders that waits while the printer prints ("when-idle"), then
 * pruning to its Keep= — only backups named the way OctoPrint and opbackup name them, never one a
 * person named. */

#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <sys/wait.h>

#include "ctl.h"
#include "util.h"

/* {prefix}-backup-{YYYYmmdd-HHMMSS}.zip (opbackupd(8), ARCHIVE FORMAT): what Keep= counts and prunes. */
#define GENERATED_NAME_GLOB "*-backup-[0-9][0-9][0-9][0-9][0-9][0-9][0-9][0-9]-[0-9][0-9][0-9][0-9][0-9][0-9].zip"

typedef struct ScheduledInstance {
        char *name;
        char *path;
        bool usable;
        char *unusable_reason;
        uint32_t keep;
        char **excludes;
} ScheduledInstance;

static void scheduled_instance_done(ScheduledInstance *s) {
        free(s->name);
        free(s->path);
        free(s->unusable_reason);
        strv_free(s->excludes);
        *s = (ScheduledInstance) {};
}

static void help(void) {
        printf("Usage: opbackupctl [-i INSTANCE] scheduled-backup\n\n"
               "Back up every instance (or INSTANCE) as scheduled: leaving out the folders of its\n"
               "[Schedule] Exclude=, waiting while its printer prints, then deleting all but the newest\n"
               "Keep= backups with generated names. Run by opbackup-backup.service from its timer.\n\n"
               "  -h --help   Show this help\n\n"
               "A backup skipped because the printer kept printing is reported, not a failure. Exit\n"
               "status: 0 when every instance was backed up or skipped, else that of the first failure.\n");
}

static int parse_args(Ctl *ctl, int argc, char *argv[]) {
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "scheduled-backup takes no arguments (unexpected '%s').\n", argv[optind]);
                return -EXIT_USAGE;
        }
        if (ctl->json) {
                fprintf(stderr, "scheduled-backup has no --json output: it reports to the journal.\n");
                return -EXIT_USAGE;
        }
        return 1;
}

static int read_properties(sd_bus_message *reply, ScheduledInstance *s) {
        const char *key, *contents, *str;
        int r, b;

        r = sd_bus_message_enter_container(reply, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "sv")) > 0) {
                r = sd_bus_message_read(reply, "s", &key);
                if (r >= 0)
                        r = sd_bus_message_peek_type(reply, NULL, &contents);
                if (r < 0)
                        return r;
                if (streq(key, "Usable") && streq(contents, "b")) {
                        r = sd_bus_message_read(reply, "v", "b", &b);
                        s->usable = b;
                } else if (streq(key, "UnusableReason") && streq(contents, "s")) {
                        r = sd_bus_message_read(reply, "v", "s", &str);
                        if (r >= 0 && free_and_strdup(&s->unusable_reason, str) < 0)
                                r = -ENOMEM;
                } else if (streq(key, "Keep") && streq(contents, "u"))
                        r = sd_bus_message_read(reply, "v", "u", &s->keep);
                else if (streq(key, "ScheduleExcludes") && streq(contents, "as")) {
                        r = sd_bus_message_enter_container(reply, 'v', "as");
                        if (r >= 0)
                                r = sd_bus_message_read_strv(reply, &s->excludes);
                        if (r >= 0)
                                r = sd_bus_message_exit_container(reply);
                } else
                        r = sd_bus_message_skip(reply, "v");
                if (r < 0)
                        return r;
                r = sd_bus_message_exit_container(reply);
                if (r < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

static int load_instance(Ctl *ctl, const char *name, const char *path, ScheduledInstance *ret) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        int r;

        *ret = (ScheduledInstance) {};
        ret->name = strdup(name);
        ret->path = strdup(path);
        if (!ret->name || !ret->path)
                return ctl_report_error("scheduled-backup", NULL, -ENOMEM);
        r = ctl_call(ctl, path, "org.freedesktop.DBus.Properties", "GetAll", &reply, "s", INSTANCE_INTERFACE);
        if (r != 0)
                return r;
        r = read_properties(reply, ret);
        return r < 0 ? ctl_report_error("Reading the instance's properties", NULL, r) : 0;
}

/* The instances to back up: -i INSTANCE, or all of them. */
static int list_instances(Ctl *ctl, ScheduledInstance **ret, size_t *ret_n) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        ScheduledInstance *l = NULL;
        const char *name, *path;
        size_t n = 0;
        int r;

        if (ctl->instance) {
                _cleanup_free_ char *p = NULL;

                r = ctl_instance_path(ctl, &p);
                if (r != 0)
                        return r;
                l = calloc(1, sizeof(*l));
                if (!l)
                        return ctl_report_error("scheduled-backup", NULL, -ENOMEM);
                *ret = l;
                *ret_n = 1;
                return load_instance(ctl, ctl->instance, p, &l[0]);
        }
        r = ctl_call(ctl, OBJECT_ROOT, MANAGER_INTERFACE, "ListInstances", &reply, NULL);
        if (r != 0)
                return r;
        r = sd_bus_message_enter_container(reply, 'a', "(so)");
        while (r >= 0 && (r = sd_bus_message_read(reply, "(so)", &name, &path)) > 0) {
                ScheduledInstance *t = reallocarray(l, n + 1, sizeof(*l));

                if (!t) {
                        r = -ENOMEM;
                        break;
                }
                l = t;
                r = load_instance(ctl, name, path, &l[n++]);
                if (r != 0) {
                        *ret = l;
                        *ret_n = n;
                        return r;
                }
        }
        *ret = l;
        *ret_n = n;
        return r < 0 ? ctl_report_error("ListInstances", NULL, r) : 0;
}

static int prune(Ctl *ctl, const ScheduledInstance *s) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_strv_free_ char **deleted = NULL;
        int r;

        r = ctl_call(ctl, s->path, INSTANCE_INTERFACE, "PruneBackups", &reply, "us", s->keep, GENERATED_NAME_GLOB);
        if (r != 0)
                return r;
        r = sd_bus_message_read_strv(reply, &deleted);
        if (r < 0)
                return ctl_report_error("PruneBackups", NULL, r);
        STRV_FOREACH(d, deleted)
                printf("%s: deleted %s (Keep=%u).\n", s->name, *d, s->keep);
        return 0;
}

static int back_up_one(Ctl *ctl, const ScheduledInstance *s) {
        _cleanup_free_ char *excluded = NULL;
        BackupArgs a = { .excludes = s->excludes, .when_idle = true };
        int r;

        if (!s->usable) {
                fprintf(stderr, "%s: not backed up: %s\n", s->name, strempty(s->unusable_reason));
                return EXIT_FAIL;
        }
        STRV_FOREACH(e, s->excludes) {
                char *t;
                if (asprintf(&t, "%s%s%s", strempty(excluded), excluded ? " " : "", *e) < 0)
                        return ctl_report_error("scheduled-backup", NULL, -ENOMEM);
                free(excluded);
                excluded = t;
        }
        printf("%s: backing up%s%s.\n", s->name, excluded ? " without " : "", strempty(excluded));
        fflush(stdout);
        r = backup_instance(ctl, s->path, &a);
        if (r == EXIT_BUSY) {
                /* Printing (or a restore) now: the next run will catch up. Nothing new to prune for. */
                printf("%s: skipped.\n", s->name);
                return EXIT_OK;
        }
        if (r != EXIT_OK)
                return r;
        if (s->keep > 0)
                r = prune(ctl, s);
        return r;
}

/* In a child of its own, with a bus connection of its own: while one printer prints, the others are
 * backed up. Not interactive: SIGINT and SIGTERM cancel the backup. */
static pid_t start_one(Ctl *ctl, const ScheduledInstance *s) {
        pid_t pid;
        int fd, r;

        fflush(stdout);
        fflush(stderr);
        pid = fork();
        if (pid != 0)
                return pid;

        /* The parent's connection (closed there) is not ours to use. */
        ctl->bus = NULL;
        ctl->ask_password = false;
        fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (fd < 0 || dup2(fd, STDIN_FILENO) < 0)
                _exit(EXIT_FAIL);
        setvbuf(stdout, NULL, _IOLBF, 0);
        r = ctl_connect(ctl);
        if (r == 0)
                r = back_up_one(ctl, s);
        fflush(stdout);
        fflush(stderr);
        _exit(r);
}

int cmd_scheduled_backup(Ctl *ctl, int argc, char *argv[]) {
        ScheduledInstance *l = NULL;
        _cleanup_free_ pid_t *pids = NULL;
        size_t n = 0;
        sigset_t ss;
        int r, first_failure = EXIT_OK;

        r = parse_args(ctl, argc, argv);
        if (r <= 0)
                return -r;
        r = list_instances(ctl, &l, &n);
        if (r == 0 && n == 0)
                printf("No OctoPrint instance to back up.\n");
        pids = calloc(n ?: 1, sizeof(pid_t));
        if (r == 0 && !pids)
                r = ctl_report_error("scheduled-backup", NULL, -ENOMEM);
        if (r == 0 && n > 0) {
                /* Ctrl-C or systemd's SIGTERM reaches the children, which cancel their jobs; we stay to
                 * collect them. */
                sigemptyset(&ss);
                sigaddset(&ss, SIGINT);
                sigaddset(&ss, SIGTERM);
                sigprocmask(SIG_BLOCK, &ss, NULL);
                ctl->bus = sd_bus_flush_close_unref(ctl->bus);
        }
        for (size_t k = 0; r == 0 && k < n; k++) {
                pids[k] = start_one(ctl, &l[k]);
                if (pids[k] < 0) {
                        fprintf(stderr, "%s: cannot start its backup: %m\n", l[k].name);
                        first_failure = first_failure ?: EXIT_FAIL;
                }
        }
        for (size_t k = 0; r == 0 && k < n; k++) {
                int status, q;

                if (pids[k] <= 0)
                        continue;
                while (waitpid(pids[k], &status, 0) < 0 && errno == EINTR)
                        ;
                q = WIFEXITED(status) ? WEXITSTATUS(status) : EXIT_FAIL;
                /* One broken instance does not cost the others their backup, nor hide its failure. */
                if (q != EXIT_OK && first_failure == EXIT_OK)
                        first_failure = q;
        }
        for (size_t k = 0; k < n; k++)
                scheduled_instance_done(&l[k]);
        free(l);
        return r != 0 ? r : first_failure;
}
