/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl backup [--exclude ID]... [--name NAME] [--when-idle] [--no-wait]: Instance.CreateBackup, then
 * (unless --no-wait) wait for the job, like OctoPrint's `octoprint plugins backup:backup`. */

#include <getopt.h>
#include <json-c/json.h>

#include "ctl.h"
#include "util.h"

#define EXCLUDES_MAX 64

/* The last BackupCreated the service sent: the one for our job comes right before its JobRemoved. */
typedef struct Created {
        JobWatch *watch;
        char *path;
        char **excludes;
} Created;

static void help(void) {
        printf("Usage: opbackupctl [OPTIONS] backup [--exclude ID]... [--name NAME] [--when-idle] [--no-wait]\n\n"
               "Back up the instance into its backup folder, as OctoPrint's backup plugin does.\n\n"
               "  -e --exclude ID   Leave out a folder: uploads, timelapse, plugins, ... (repeatable)\n"
               "  -n --name NAME    The file name (NAME.zip), instead of PREFIX-backup-DATE-TIME.zip\n"
               "     --when-idle    Wait while the printer prints (needs the instance's OctoPrint API)\n"
               "     --no-wait      Print the job and return at once\n"
               "     --json         Machine-readable output\n"
               "  -h --help         Show this help\n\n"
               "On a terminal a progress bar is shown; Ctrl-C asks whether to cancel the backup or leave\n"
               "it running. Without a terminal, SIGINT and SIGTERM cancel it. A --when-idle backup that is\n"
               "skipped (still printing) exits with 5.\n");
}

static int parse_args(Ctl *ctl, int argc, char *argv[], BackupArgs *a) {
        enum { ARG_NO_WAIT = 0x100, ARG_JSON, ARG_WHEN_IDLE };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "exclude", required_argument, NULL, 'e' },
                { "name", required_argument, NULL, 'n' },
                { "no-wait", no_argument, NULL, ARG_NO_WAIT },
                { "when-idle", no_argument, NULL, ARG_WHEN_IDLE },
                { "json", no_argument, NULL, ARG_JSON },
                {}
        };
        int c;

        optind = 0;     /* a full re-initialization: main() used getopt already */
        while ((c = getopt_long(argc, argv, "he:n:", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'e':
                        if (strv_length(a->excludes) >= EXCLUDES_MAX) {
                                fprintf(stderr, "Too many --exclude options.\n");
                                return -EXIT_USAGE;
                        }
                        if (!strv_contains(a->excludes, optarg) && strv_extend(&a->excludes, optarg) < 0) {
                                fprintf(stderr, "Out of memory.\n");
                                return -EXIT_FAIL;
                        }
                        break;
                case 'n':
                        a->name = optarg;
                        break;
                case ARG_NO_WAIT:
                        a->no_wait = true;
                        break;
                case ARG_WHEN_IDLE:
                        a->when_idle = true;
                        break;
                case ARG_JSON:
                        ctl->json = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (optind < argc) {
                fprintf(stderr, "backup takes no arguments (unexpected '%s'). See 'opbackupctl backup --help'.\n",
                        argv[optind]);
                return -EXIT_USAGE;
        }
        return 1;
}

static int create_backup(Ctl *ctl, const char *instance_path, const BackupArgs *a, uint32_t *ret_id,
                         char **ret_job) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        const char *job;
        int r;

        r = sd_bus_message_new_method_call(ctl->bus, &m, BUS_NAME, instance_path, INSTANCE_INTERFACE,
                                           "CreateBackup");
        if (r >= 0)
                r = sd_bus_message_append_strv(m, a->excludes);
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "{sv}");
        if (r >= 0 && a->name)
                r = sd_bus_message_append(m, "{sv}", "name", "s", a->name);
        if (r >= 0 && a->when_idle)
                r = sd_bus_message_append(m, "{sv}", "when-idle", "b", 1);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r < 0)
                return ctl_report_error("CreateBackup", NULL, r);
        r = ctl_call_message(ctl, m, 0, &reply);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "uo", ret_id, &job);
        if (r < 0)
                return ctl_report_error("CreateBackup", NULL, r);
        *ret_job = strdup(job);
        return *ret_job ? 0 : ctl_report_error("CreateBackup", NULL, -ENOMEM);
}

static int on_backup_created(sd_bus_message *m, void *userdata, sd_bus_error *ret_error) {
        Created *c = userdata;
        _cleanup_strv_free_ char **excludes = NULL;
        const char *instance, *name, *path;

        if (!job_watch_from_service(c->watch, m))
                return 0;
        if (sd_bus_message_read(m, "sss", &instance, &name, &path) < 0 ||
            sd_bus_message_read_strv(m, &excludes) < 0)
                return 0;
        if (free_and_strdup(&c->path, path) < 0)
                return 0;
        strv_free(c->excludes);
        c->excludes = TAKE_PTR(excludes);
        return 0;
}

typedef struct Details {
        char *name, *path;
        uint64_t size;
} Details;

static int detail(sd_bus_message *m, const char *key, const char *contents, void *userdata) {
        Details *d = userdata;
        const char *s;
        int r;

        if ((streq(key, "name") || streq(key, "path")) && streq(contents, "s")) {
                r = sd_bus_message_read(m, "v", "s", &s);
                if (r < 0)
                        return r;
                return free_and_strdup(streq(key, "name") ? &d->name : &d->path, s) < 0 ? -ENOMEM : 1;
        }
        if (streq(key, "size") && streq(contents, "t"))
                return sd_bus_message_read(m, "v", "t", &d->size);
        return 0;
}

static int read_details(sd_bus_message *m, char **ret_name, char **ret_path, uint64_t *ret_size) {
        Details d = { .name = *ret_name, .path = *ret_path, .size = *ret_size };
        int r = ctl_read_dict(m, detail, &d);

        *ret_name = d.name;
        *ret_path = d.path;
        *ret_size = d.size;
        return r;
}

static json_object *strv_to_json(char *const *l) {
        json_object *a = json_object_new_array();

        STRV_FOREACH(s, l)
                json_object_array_add(a, json_object_new_string(*s));
        return a;
}

static int report_done(Ctl *ctl, sd_bus_message *removed, const Created *created, const BackupArgs *a) {
        _cleanup_free_ char *name = NULL, *path = NULL;
        uint64_t size = 0;
        char buf[32];
        int r;

        r = read_details(removed, &name, &path, &size);
        if (r < 0 || !path)
                return ctl_report_error("Reading the result of the backup", NULL, r < 0 ? r : -EBADMSG);
        if (ctl->json) {
                json_object *o = json_object_new_object();
                /* The excludes as recorded in the backup's metadata, when the service told us. */
                bool exact = created->path && streq(created->path, path);

                json_object_object_add(o, "name", json_object_new_string(strempty(name)));
                json_object_object_add(o, "path", json_object_new_string(path));
                json_object_object_add(o, "size", json_object_new_uint64(size));
                json_object_object_add(o, "excludes", strv_to_json(exact ? created->excludes : a->excludes));
                ctl_json_print(o);
                json_object_put(o);
                return 0;
        }
        if (!ctl->quiet)
                printf("Created backup %s (%s).\n", strempty(name), format_bytes(buf, sizeof(buf), size));
        /* OctoPrint's CLI says exactly this; scripts may look for it. */
        printf("Backup located at %s\n", path);
        return 0;
}

int backup_instance(Ctl *ctl, const char *instance_path, const BackupArgs *args) {
        _cleanup_(job_watch_freep) JobWatch *watch = NULL;
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *removed = NULL;
        _cleanup_(sd_bus_slot_unrefp) sd_bus_slot *slot = NULL;
        _cleanup_free_ char *job = NULL;
        const BackupArgs a = *args;
        Created created = {};
        uint32_t id;
        int r;

        if (!a.no_wait) {
                r = job_watch_new(ctl, "backup", false, &watch);
                if (r != 0)
                        return r;
                created.watch = watch;
                r = sd_bus_match_signal(ctl->bus, &slot, BUS_NAME, OBJECT_ROOT, MANAGER_INTERFACE,
                                        "BackupCreated", on_backup_created, &created);
                if (r < 0) {
                        fprintf(stderr, "Cannot watch for BackupCreated: %s\n", strerror(-r));
                        return EXIT_FAIL;
                }
        }

        r = create_backup(ctl, instance_path, &a, &id, &job);
        if (r != 0)
                goto finish;

        if (a.no_wait) {
                if (ctl->json) {
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "id", json_object_new_int64(id));
                        json_object_object_add(o, "job", json_object_new_string(job));
                        ctl_json_print(o);
                        json_object_put(o);
                } else if (ctl->quiet)
                        printf("%u\n", id);
                else
                        printf("Started backup job %u (%s).\n", id, job);
                r = 0;
                goto finish;
        }

        r = job_watch_wait(watch, id, job, &removed);
        if (r == 0 && removed)
                r = report_done(ctl, removed, &created, &a);
finish:
        free(created.path);
        strv_free(created.excludes);
        return r;
}

int cmd_backup(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_free_ char *instance_path = NULL;
        _cleanup_(strv_freep) char **excludes_storage = NULL;
        BackupArgs a = {};
        int r;

        r = parse_args(ctl, argc, argv, &a);
        excludes_storage = a.excludes;
        if (r <= 0)
                return -r;
        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        return backup_instance(ctl, instance_path, &a);
}
