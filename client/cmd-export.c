/* SPDX-License-Identifier: GPL-2.0-or-later */

/* opbackupctl export NAME [-o FILE|-] [--force]: Instance.OpenBackup gives a read-only descriptor of the
 * zip; we copy it into FILE (through a temporary file renamed into place, so FILE is never half written)
 * or to stdout. */

#include <fcntl.h>
#include <getopt.h>
#include <json-c/json.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>

#include "ctl.h"
#include "util.h"

typedef struct ExportArgs {
        const char *name;
        const char *output;     /* NULL: ./NAME; "-": stdout */
        bool force;
} ExportArgs;

static void help(void) {
        printf("Usage: opbackupctl [OPTIONS] export NAME [-o FILE|-] [--force]\n\n"
               "Copy a backup out of the backup folder.\n\n"
               "  -o --output FILE   Where to write it (default: ./NAME; '-' for stdout)\n"
               "  -f --force         Replace FILE if it exists\n"
               "  -h --help          Show this help\n");
}

static int parse_args(Ctl *ctl, int argc, char *argv[], ExportArgs *a) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "output", required_argument, NULL, 'o' },
                { "force", no_argument, NULL, 'f' },
                { "json", no_argument, NULL, ARG_JSON },
                {}
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:f", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'o':
                        a->output = optarg;
                        break;
                case 'f':
                        a->force = true;
                        break;
                case ARG_JSON:
                        ctl->json = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (argc - optind != 1) {
                fprintf(stderr, "export needs exactly one backup name. See 'opbackupctl export --help'.\n");
                return -EXIT_USAGE;
        }
        a->name = argv[optind];
        if (!a->output && strchr(a->name, '/')) {
                fprintf(stderr, "'%s' is not a backup name (see 'opbackupctl list').\n", a->name);
                return -EXIT_USAGE;
        }
        return 1;
}

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

int cmd_export(Ctl *ctl, int argc, char *argv[]) {
        _cleanup_(sd_bus_message_unrefp) sd_bus_message *reply = NULL;
        _cleanup_free_ char *instance_path = NULL;
        ExportArgs a = {};
        const char *path;
        uint64_t size = 0;
        bool to_stdout;
        char buf[32];
        int r, fd;

        r = parse_args(ctl, argc, argv, &a);
        if (r <= 0)
                return -r;
        to_stdout = streq_ptr(a.output, "-");
        path = a.output ?: a.name;
        if (to_stdout && isatty(STDOUT_FILENO)) {
                fprintf(stderr, "Refusing to write a zip archive to a terminal: redirect stdout or use -o FILE.\n");
                return EXIT_USAGE;
        }
        /* Checked before the copy as well as at the end: no point in copying a large file first. */
        if (!to_stdout && !a.force && access(path, F_OK) == 0) {
                fprintf(stderr, "%s exists already: use --force to replace it, or -o another file.\n", path);
                return EXIT_FAIL;
        }

        r = ctl_instance_path(ctl, &instance_path);
        if (r != 0)
                return r;
        r = ctl_call(ctl, instance_path, INSTANCE_INTERFACE, "OpenBackup", &reply, "s", a.name);
        if (r != 0)
                return r;
        r = sd_bus_message_read(reply, "h", &fd);
        if (r < 0)
                return ctl_report_error("OpenBackup", NULL, r);

        if (to_stdout)
                r = copy_fd(fd, STDOUT_FILENO, &size);
        else
                r = export_to_file(fd, path, a.force, &size);
        if (r < 0) {
                if (r == -EEXIST)
                        fprintf(stderr, "%s exists already: use --force to replace it, or -o another file.\n", path);
                else
                        fprintf(stderr, "Cannot export %s to %s: %s\n", a.name, to_stdout ? "stdout" : path,
                                strerror(-r));
                return EXIT_FAIL;
        }

        if (ctl->json && !to_stdout) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "name", json_object_new_string(a.name));
                json_object_object_add(o, "file", json_object_new_string(path));
                json_object_object_add(o, "size", json_object_new_uint64(size));
                ctl_json_print(o);
                json_object_put(o);
        } else if (!ctl->quiet)
                /* stdout may carry the zip: the note goes to stderr then. */
                fprintf(to_stdout ? stderr : stdout, "Exported %s to %s (%s).\n", a.name,
                        to_stdout ? "stdout" : path, format_bytes(buf, sizeof(buf), size));
        return 0;
}
