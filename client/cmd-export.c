/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl export NAME [-o FILE|-] [--force]: Instance.OpenBackup gives a read-only descriptor of the
 * zip; we copy it into FILE (through a temporary file renamed into place, so FILE is never half written)
 * or to stdout. */

#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>

#include "bus-client.h"
#include "cmd-export.h"
#include "options.h"
#include "output.h"
#include "util.h"

static int copy_fd(int from, int to, uint64_t *ret_size) {
        static char buf[1 << 17];
        uint64_t total = 0;

        for (;;) {
                ssize_t k = read(from, buf, sizeof(buf));
                int r;

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return -errno;
                if (k == 0)
                        break;
                r = write_all(to, buf, (size_t) k);
                if (r < 0)
                        return r;
                total += (uint64_t) k;
        }
        *ret_size = total;
        return 0;
}

/* Writes into a hidden temporary file next to path, then renames it over path (or, without force, only
 * if path does not exist). The result is there completely or not at all. */
static int export_to_file(int from, const char *path, bool force, uint64_t *ret_size) {
        _cleanup_free_ char *dir_copy = strdup(path), *base_copy = strdup(path), *tmp = NULL;
        _cleanup_close_ int fd = -1, dir_fd = -1;
        const char *dir, *base;
        int r;

        if (!dir_copy || !base_copy)
                return -ENOMEM;
        dir = dirname(dir_copy);
        base = basename(base_copy);
        if (asprintf(&tmp, "%s/.%s.XXXXXX", dir, base) < 0) {
                tmp = NULL;
                return -ENOMEM;
        }
        /* 0600 like mkostemp makes it: a backup holds password hashes and API keys. */
        fd = mkostemp(tmp, O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = copy_fd(from, fd, ret_size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && close(TAKE_FD(fd)) < 0)
                r = -errno;
        if (r >= 0) {
                if (force)
                        r = rename(tmp, path) < 0 ? -errno : 0;
                else {
                        /* link() refuses to replace: no window where an existing file could be lost. */
                        r = link(tmp, path) < 0 ? -errno : 0;
                        if (r >= 0)
                                (void) unlink(tmp);
                }
        }
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dir_fd >= 0)
                (void) fsync(dir_fd);
        return 0;
}

/* What can be said before anything is copied. Returns an exit code. */
static int check_args(const Ctl *ctl, const char *name, const char *path, bool to_stdout) {
        if (!ctl->output && strchr(name, '/')) {
                fprintf(stderr, "'%s' is not a backup name (see 'opbackupctl list').\n", name);
                print_see_help("export");
                return EXIT_USAGE;
        }
        if (to_stdout && ctl->json) {
                fprintf(stderr, "With -o - the zip goes to standard output: --json cannot go there too.\n");
                print_see_help("export");
                return EXIT_USAGE;
        }
        if (to_stdout && isatty(STDOUT_FILENO)) {
                fprintf(stderr, "Refusing to write a zip archive to a terminal: redirect stdout or use -o FILE.\n");
                return EXIT_USAGE;
        }
        /* Checked before the copy as well as at the end: no point in copying a large file first. */
        if (!to_stdout && !ctl->force && access(path, F_OK) == 0) {
                fprintf(stderr, "Cannot export %s: %s exists already: use --force to replace it, or -o another "
                        "file.\n", name, path);
                return EXIT_FAIL;
        }
        return 0;
}

int cmd_export(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *instance_path = NULL;
        const char *name = argv[1], *path = ctl->output ?: name;
        bool to_stdout = streq_ptr(ctl->output, "-");
        uint64_t size = 0;
        char buf[32];
        int r, fd;

        r = check_args(ctl, name, path, to_stdout);
        if (r != 0)
                return r;
        ctl_set_doing(ctl, "export %s", name);

        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "OpenBackup", &reply, "s", name);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return ctl_report_error(ctl, NULL, NULL, r);

        if (to_stdout)
                r = copy_fd(fd, STDOUT_FILENO, &size);
        else
                r = export_to_file(fd, path, ctl->force, &size);
        if (r == -EEXIST) {
                fprintf(stderr, "Cannot export %s: %s exists already: use --force to replace it, or -o another "
                        "file.\n", name, path);
                return EXIT_FAIL;
        }
        if (r < 0) {
                fprintf(stderr, "Cannot export %s to %s: %s\n", name, to_stdout ? "stdout" : path, strerror(-r));
                return EXIT_FAIL;
        }

        if (ctl->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(name));
                json_object_object_add(o, "file", json_object_new_string(path));
                json_object_object_add(o, "size", json_object_new_uint64(size));
                ctl_json_print(o);
                json_object_put(o);
        } else if (!ctl->quiet)
                /* stdout may carry the zip: the note goes to stderr then. */
                fprintf(to_stdout ? stderr : stdout, "Exported %s to %s (%s).\n", name,
                        to_stdout ? "stdout" : path, format_bytes(buf, sizeof(buf), size));
        return 0;
}
