/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "daemon/state-prune.h"
#include "instance/instance.h"
#include "log.h"
#include "names.h"
#include "util.h"

static bool configured(Daemon *d, const char *name, size_t len) {
        for (size_t k = 0; k < d->n_instances; k++)
                if (strlen(d->instances[k]->name) == len && strncmp(d->instances[k]->name, name, len) == 0)
                        return true;
        return false;
}

/* The instance a state file belongs to: "prefix" NAME "suffix" (a suffix among those given), else NULL. */
static const char *owner(const char *file, const char *prefix, const char *const *suffixes, size_t *ret_len) {
        size_t n = strlen(file), p = strlen(prefix);

        if (strncmp(file, prefix, p) != 0)
                return NULL;
        for (const char *const *s = suffixes; *s; s++) {
                size_t l = strlen(*s);

                if (n > p + l && strcmp(file + n - l, *s) == 0) {
                        *ret_len = n - p - l;
                        return file + p;
                }
        }
        return NULL;
}

static void prune_dir(Daemon *d, int dirfd, const char *where, const char *prefix, const char *const *suffixes) {
        struct dirent *de;
        DIR *dir;
        int fd;

        fd = openat(dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return;
        dir = fdopendir(fd);
        if (!dir) {
                close(fd);
                return;
        }
        while ((de = readdir(dir))) {
                _cleanup_free_ char *name = NULL;
                const char *start;
                size_t len;

                if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
                        continue;
                start = owner(de->d_name, prefix, suffixes, &len);
                if (!start || configured(d, start, len))
                        continue;
                name = strndup(start, len);
                if (!name || !instance_name_is_valid(name))
                        continue;       /* not a file of ours */
                if (unlinkat(dirfd, de->d_name, 0) < 0 && errno != ENOENT)
                        log_warning_errno(errno, "Cannot remove %s/%s: %m", where, de->d_name);
                else
                        log_info("Removed %s/%s: instance %s is no longer configured.", where, de->d_name, name);
        }
        closedir(dir);
}

void state_prune(Daemon *d, bool instances_configured) {
        static const char *const list_suffixes[] = { ".cache", ".cache.tmp", NULL };
        static const char *const cache_suffixes[] = { "", NULL };
        static const char *const next_suffixes[] = { ".new", NULL };
        _cleanup_free_ char *cache_dir = NULL;
        _cleanup_close_ int state = -1, caches = -1;

        if (!instances_configured)
                return;
        state = open(d->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (state < 0)
                return;
        prune_dir(d, state, d->state_dir, "list-", list_suffixes);
        caches = openat(state, "files-cache", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (caches < 0)
                return;
        if (asprintf(&cache_dir, "%s/files-cache", d->state_dir) < 0)
                return;
        prune_dir(d, caches, cache_dir, "", cache_suffixes);
        prune_dir(d, caches, cache_dir, ".", next_suffixes);
}
