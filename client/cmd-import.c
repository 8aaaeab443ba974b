/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl import FILE|-: the client opens FILE (with its own rights, never the daemon's) and passes the
 * descriptor to Instance.ImportBackup, which copies it into the backup folder. With "-", standard input (a
 * pipe: the Cockpit page's upload streams into it) is first copied into an unnamed file of the client's,
 * whose descriptor goes to the service as a file's would: the service still reads only what it is passed. */

#include <errno.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bus-client.h"
#include "cmd-import.h"
#include "names.h"
#include "output.h"
#include "util.h"

/* The daemon copies the whole file before it answers. */
#define IMPORT_TIMEOUT_USEC (6ULL * 3600 * 1000000)

/* An unnamed file holding all of standard input, at offset 0: O_TMPFILE in $TMPDIR (or /var/tmp: on disk,
 * backups can be large), or a sealed memfd where the file system has no O_TMPFILE. Returns the fd or -errno. */
static int stdin_to_unnamed_file(void) {
        _cleanup_close_ int fd = -1;
        const char *dir = getenv("TMPDIR");
        bool sealable = false;
        char buf[128 * 1024];

        fd = open(dir && *dir ? dir : "/var/tmp", O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd < 0) {
                fd = memfd_create("opbackupctl-import", MFD_CLOEXEC | MFD_ALLOW_SEALING);
                if (fd < 0)
                        return -errno;
                sealable = true;
        }
        for (;;) {
                ssize_t n = read(STDIN_FILENO, buf, sizeof(buf));
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (n == 0)
                        break;
                int r = write_all(fd, buf, (size_t) n);
                if (r < 0)
                        return r;
        }
        /* Nothing can change it any more, not even through this fd. */
        if (sealable && fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) < 0)
                return -errno;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return TAKE_FD(fd);
}

int cmd_import(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *m = NULL, *reply = NULL;
        _cleanup_free_ char *instance_path = NULL;
        _cleanup_close_ int fd = -1;
        const char *file, *base, *stored;
        struct stat st;
        int r;

        file = argv[1];
        if (file[0] == '-' && file[1] == '\0') {
                ctl_set_doing(ctl, "import from standard input");
                if (isatty(STDIN_FILENO)) {
                        fprintf(stderr, "Cannot import from standard input: it is a terminal. Pipe the zip in "
                                        "(opbackupctl import - < backup.zip).\n");
                        return EXIT_USAGE;
                }
                fd = stdin_to_unnamed_file();
                if (fd < 0) {
                        fprintf(stderr, "Cannot import from standard input: %s.\n", strerror(-fd));
                        return EXIT_FAIL;
                }
                base = "";
        } else {
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
        }
        if (ctl->name)
                base = ctl->name;

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
