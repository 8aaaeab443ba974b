/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl import FILE: the client opens FILE (with its own rights, never the daemon's) and passes the
 * descriptor to Instance.ImportBackup, which copies it into the backup folder. */

#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "ctl.h"
#include "names.h"
#include "util.h"

/* The daemon copies the whole file before it answers. */
#define IMPORT_TIMEOUT_USEC (6ULL * 3600 * 1000000)

static void help(void) {
        printf("Usage: opbackupctl [OPTIONS] import FILE\n\n"
               "Copy a backup zip (made by opbackup or by OctoPrint) into the instance's backup folder.\n"
               "It keeps its file name if that is a valid backup name and free (else NAME.1.zip, ...).\n\n"
               "     --json   Machine-readable output\n"
               "  -h --help   Show this help\n");
}

static int parse_args(Ctl *ctl, int argc, char *argv[]) {
        return ctl_parse_json_only(ctl, argc, argv, help, 1, "import needs exactly one FILE. See 'opbackupctl import --help'.");
}

int cmd_import(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *instance_path = NULL;
        _cleanup_close_ int fd = -1;
        const char *file, *base, *stored;
        struct stat st;
        int r;

        r = parse_args(ctl, argc, argv);
        if (r <= 0)
                return -r;
        file = argv[optind];
        fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                fprintf(stderr, "Cannot open %s: %s\n", file, strerror(errno));
                return errno == ENOENT ? EXIT_NOT_FOUND : EXIT_FAIL;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                fprintf(stderr, "%s is not a regular file.\n", file);
                return EXIT_FAIL;
        }
        /* The file's own name if it can be a backup's name; else the service makes one up. */
        base = strrchr(file, '/');
        base = base ? base + 1 : file;
        if (!backup_name_is_valid(base))
                base = "";

        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        r = sd_bus_message_new_method_call(ctl->bus, &m, BUS_NAME, instance_path, INSTANCE_INTERFACE,
                                           "ImportBackup");
        if (r >= 0)
                r = sd_bus_message_append(m, "hs", fd, base);
        if (r < 0)
                return ctl_report_error("ImportBackup", NULL, r);
        r = ctl_call_message(ctl, m, IMPORT_TIMEOUT_USEC, &reply);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "s", &stored);
        if (r < 0)
                return ctl_report_error("ImportBackup", NULL, r);

        if (ctl->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "file", json_object_new_string(file));
                json_object_object_add(o, "name", json_object_new_string(stored));
                ctl_json_print(o);
                json_object_put(o);
        } else
                printf("Imported as %s\n", stored);
        return 0;
}
