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

/* A state file's name: PREFIX INSTANCE SUFFIX. */
typedef struct Pattern {
        const char *prefix, *suffix;
} Pattern;

static bool configured(Daemon *d, const char *name) {
        for (size_t k = 0; k < d->n_instances; k++)
                if (streq(d->instances[k]->name, name))
                        return true;
        return false;
}

/* The instance a file of the state directory belongs to by one of the patterns (NULL: none; not ours). */
static char *owner(const char *file, const Pattern *patterns) {
        size_t n = strlen(file);

        for (const Pattern *pt = patterns; pt->prefix; pt++) {
                size_t p = strlen(pt->prefix), s = strlen(pt->suffix);
                _cleanup_free_ char *name = NULL;

                if (n <= p + s || strncmp(file, pt->prefix, p) != 0 || !streq(file + n - s, pt->suffix))
                        continue;
                name = strndup(file + p, n - p - s);
                if (name && instance_name_is_valid(name))
                        return TAKE_PTR(name);
        }
        return NULL;
}

/* Removes the files of `dirfd` (named `where` in messages) that belong to no configured instance. */
static void prune_dir(Daemon *d, int dirfd, const char *where, const Pattern *patterns) {
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

                if (de->d_type != DT_REG && de->d_type != DT_UNKNOWN)
                        continue;
                name = owner(de->d_name, patterns);
                if (!name || configured(d, name))
                        continue;
                if (unlinkat(dirfd, de->d_name, 0) < 0 && errno != ENOENT)
                        log_warning_errno(errno, "Cannot remove %s/%s: %m", where, de->d_name);
                else
                        log_info("Removed %s/%s: instance %s is no longer configured.", where, de->d_name, name);
        }
        closedir(dir);
}

void state_prune(Daemon *d, bool instances_configured) {
        /* Saved listings (and the file one is written into), files caches and the next one being written. */
        static const Pattern listings[] = { { "list-", ".cache" }, { "list-", ".cache.tmp" }, {} };
        static const Pattern caches[] = { { "", "" }, { ".", ".new" }, {} };
        _cleanup_free_ char *cache_dir = NULL;
        _cleanup_close_ int state = -1, dir = -1;

        if (!instances_configured)
                return;
        state = open(d->state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (state < 0)
                return;
        prune_dir(d, state, d->state_dir, listings);
        dir = openat(state, "files-cache", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (dir < 0 || asprintf(&cache_dir, "%s/files-cache", d->state_dir) < 0)
                return;
        prune_dir(d, dir, cache_dir, caches);
}
