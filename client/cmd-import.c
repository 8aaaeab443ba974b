/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl import FILE: the client opens FILE (with its own rights, never the daemon's) and passes the
 * descriptor to Instance.ImportBackup, which copies it into the backup folder. */

#include <fcntl.h>
#include <json-c/json.h>
#include <sys/stat.h>

#include "bus-client.h"
#include "cmd-import.h"
#include "names.h"
#include "output.h"
#include "util.h"

/* The daemon copies the whole file before it answers. */
#define IMPORT_TIMEOUT_USEC (6ULL * 3600 * 1000000)

int cmd_import(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *instance_path = NULL;
        _cleanup_close_ int fd = -1;
        const char *file, *base, *stored;
        struct stat st;
        int r;

        file = argv[1];
        ctl_set_doing(ctl, "import %s", file);
        fd = open(file, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (fd < 0) {
                r = -errno;
                ctl_report_error(ctl, NULL, NULL, r);
                return r == -ENOENT ? EXIT_NOT_FOUND : EXIT_FAIL;
        }
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                fprintf(stderr, "Cannot import %s: not a regular file.\n", file);
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
                return ctl_report_error(ctl, NULL, NULL, r);
        r = ctl_call_message(ctl, m, IMPORT_TIMEOUT_USEC, &reply);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "s", &stored);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);

        if (ctl->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "file", json_object_new_string(file));
                json_object_object_add(o, "name", json_object_new_string(stored));
                ctl_json_print(o);
                json_object_put(o);
        } else
                /* Even with -q: the stored name is what was asked for. */
                printf("Imported as %s\n", stored);
        return 0;
}
