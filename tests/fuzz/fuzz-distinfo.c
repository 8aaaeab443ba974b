/* SPDX-License-Identifier: GPL-2.0-or-later */
/* A venv's dist-info as opbackup reads it (service/instance/distinfo.c): METADATA, PKG-INFO and
 * entry_points.txt. distinfo.c reads below a directory fd, so the input becomes the files of a small
 * site-packages, made once and rewritten for each input: the input is split at "\n--\n" into, in order,
 *   OctoPrint-1.11.8.dist-info/METADATA
 *   OctoPrint_Plugin-1.0.dist-info/METADATA
 *   OctoPrint_Plugin-1.0.dist-info/entry_points.txt
 *   plugin_old-0.1.egg-info/PKG-INFO
 *   plugin_old-0.1.egg-info/entry_points.txt
 *   the version in the name of a second OctoPrint-<version>.dist-info folder, without METADATA
 * (missing parts are empty files). */

#include <fcntl.h>
#include <sys/stat.h>

#include "fuzz-util.h"
#include "instance/distinfo.h"

#define SEPARATOR "\n--\n"

static const char *const files[] = {
        "OctoPrint-1.11.8.dist-info/METADATA",
        "OctoPrint_Plugin-1.0.dist-info/METADATA",
        "OctoPrint_Plugin-1.0.dist-info/entry_points.txt",
        "plugin_old-0.1.egg-info/PKG-INFO",
        "plugin_old-0.1.egg-info/entry_points.txt",
};
#define N_FILES (sizeof(files) / sizeof(files[0]))

static int sp_fd = -1;
static int file_fds[N_FILES];

static void setup(void) {
        static const char *const dirs[] = {
                "OctoPrint-1.11.8.dist-info", "OctoPrint_Plugin-1.0.dist-info", "plugin_old-0.1.egg-info",
        };
        char *dir = fuzz_mkdtemp("fuzz-distinfo");

        sp_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        free(dir);
        if (sp_fd < 0)
                abort();
        for (size_t i = 0; i < sizeof(dirs) / sizeof(dirs[0]); i++)
                if (mkdirat(sp_fd, dirs[i], 0700) < 0)
                        abort();
        for (size_t i = 0; i < N_FILES; i++) {
                file_fds[i] = openat(sp_fd, files[i], O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (file_fds[i] < 0)
                        abort();
        }
}

static void put(size_t i, const uint8_t *data, size_t size) {
        if (ftruncate(file_fds[i], 0) < 0 || pwrite(file_fds[i], data, size, 0) != (ssize_t) size)
                abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        const uint8_t *p = data, *end = data + size;
        _cleanup_free_ char *version = NULL, *extra = NULL;
        PluginInfo *plugins = NULL;
        char *bundled[] = { (char *) "file_check", (char *) "pi_support", NULL };
        size_t n = 0;

        if (sp_fd < 0)
                setup();
        for (size_t i = 0; i < N_FILES; i++) {
                const uint8_t *sep = p < end ? memmem(p, end - p, SEPARATOR, strlen(SEPARATOR)) : NULL;
                const uint8_t *e = sep ?: end;

                put(i, p, e - p);
                p = sep ? sep + strlen(SEPARATOR) : end;
        }
        /* The rest names a folder; only names a file system takes. */
        if (p < end && end - p < 200 && !memchr(p, '/', end - p) && !memchr(p, 0, end - p)) {
                if (asprintf(&extra, "OctoPrint-%.*s.dist-info", (int) (end - p), (const char *) p) < 0)
                        abort();
                if (mkdirat(sp_fd, extra, 0700) < 0) {
                        free(extra);
                        extra = NULL;
                }
        }

        (void) distinfo_octoprint_version(sp_fd, &version);
        if (distinfo_plugin_list(sp_fd, bundled, &plugins, &n) >= 0) {
                free(plugin_list_to_json(plugins, n));
                plugin_info_array_free(plugins, n);
        }
        if (extra && unlinkat(sp_fd, extra, AT_REMOVEDIR) < 0)
                abort();
        return 0;
}
