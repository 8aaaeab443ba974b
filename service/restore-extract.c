/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "restore-archive-internal.h"

#define CHUNK_SIZE (256U * 1024U)
#define PROGRESS_INTERVAL_USEC 100000ULL
#define RM_RF_OPEN_MAX 32U

/* ---- extraction ---- */

typedef struct Extractor {
        const ArchivePlan *plan;
        int staging_fd;
        const BackupCallbacks *cb;
        char **ret_error;
        uint8_t *buf;

        /* The folder the last entry went to, kept open: an archive lists a folder's files together. */
        char *dir_path;                 /* relative to staging; "" is staging itself */
        int dir_fd;

        const ArchiveItem *item;        /* the file being written */
        int fd;

        uint64_t done, total, last_progress;
} Extractor;

static void extractor_done(Extractor *x) {
        free(x->buf);
        free(x->dir_path);
        if (x->dir_fd >= 0)
                close(x->dir_fd);
        if (x->fd >= 0)
                close(x->fd);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static int report(Extractor *x, bool force) {
        uint64_t now = now_usec();

        if (!force && now - x->last_progress < PROGRESS_INTERVAL_USEC)
                return 0;
        x->last_progress = now;
        if (backup_progress(x->cb, "extracting", x->done, x->total) < 0) {
                free(*x->ret_error);
                *x->ret_error = strdup("Canceled");
                return -ECANCELED;
        }
        return 0;
}

/* A failure to write into staging, with a message that says what to do about it. */
static int write_failed(Extractor *x, int error, const char *what, const char *name) {
        _cleanup_free_ char *shown = archive_name_for_message(name);
        int k;

        error = -abs(error);
        free(*x->ret_error);
        if (error == -ENOSPC || error == -EDQUOT)
                k = asprintf(x->ret_error, "Not enough space to restore the backup: the disk%s filled up while "
                             "extracting '%s'. Free some space, then try again",
                             error == -EDQUOT ? " quota" : "", strempty(shown));
        else
                k = asprintf(x->ret_error, "Extracting '%s' failed: cannot %s in the staging directory: %s",
                             strempty(shown), what, strerror(-error));
        if (k < 0)
                *x->ret_error = NULL;
        return error;
}

/* Names were checked before; this keeps a slip of that check from becoming a walk out of staging. */
static bool component_ok(const char *c) {
        return *c && !streq(c, ".") && !streq(c, "..") && !strchr(c, '/');
}

/* Makes `path` (len bytes, relative to staging, no trailing '/') the current folder, creating what is
 * missing. Every step is an openat() of one component with O_NOFOLLOW: a symlink anywhere (put there by
 * whoever else runs as this user) stops the walk instead of leading out of staging. */
static int enter_dir(Extractor *x, const char *name, const char *path, size_t len) {
        _cleanup_free_ char *p = strndup(path, len);
        size_t cur = x->dir_path ? strlen(x->dir_path) : 0;
        const char *rest = p;
        int fd;

        if (!p)
                return -ENOMEM;
        if (x->dir_path && streq(x->dir_path, p))
                return 0;
        /* Going deeper from the current folder saves walking from the top. */
        if (x->dir_path && cur > 0 && cur < len && memcmp(p, x->dir_path, cur) == 0 && p[cur] == '/') {
                fd = fcntl(x->dir_fd, F_DUPFD_CLOEXEC, 3);
                rest = p + cur + 1;
        } else
                fd = fcntl(x->staging_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return write_failed(x, errno, "open a folder", name);

        for (char *s = (char *) rest; *s;) {
                char *e = strchrnul(s, '/');
                bool last = !*e, created;
                int nfd;

                *e = 0;
                if (!component_ok(s)) {
                        close(fd);
                        return write_failed(x, EINVAL, "create a folder", name);
                }
                nfd = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                created = false;
                if (nfd < 0 && errno == ENOENT) {
                        created = mkdirat(fd, s, 0700) >= 0;
                        if (!created && errno != EEXIST) {
                                close(fd);
                                return write_failed(x, errno, "create a folder", name);
                        }
                        nfd = openat(fd, s, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                }
                close(fd);
                if (nfd < 0)
                        return write_failed(x, errno, "open a folder", name);
                /* Folders without an entry of their own: 0755 whatever the umask. */
                if (created && fchmod(nfd, 0755) < 0) {
                        close(nfd);
                        return write_failed(x, errno, "set a folder's mode", name);
                }
                fd = nfd;
                if (last)
                        break;
                /* p becomes dir_path: it must stay the whole path, not end at the first component. */
                *e = '/';
                s = e + 1;
        }
        if (x->dir_fd >= 0)
                close(x->dir_fd);
        x->dir_fd = fd;
        free(x->dir_path);
        x->dir_path = TAKE_PTR(p);
        return 0;
}

static int write_sink(const void *data, size_t n, void *userdata) {
        Extractor *x = userdata;
        int k;

        k = write_all(x->fd, data, n);
        if (k < 0)
                return write_failed(x, k, "write the file", x->item->name);
        x->done += n;
        return report(x, false);
}

static int set_times(int fd, const ArchiveItem *it) {
        struct timespec ts[2];

        if (!it->has_mtime)
                return 0;
        ts[0] = ts[1] = (struct timespec) { .tv_sec = (time_t) it->mtime };
        return futimens(fd, ts) < 0 ? -errno : 0;
}

static int extract_file(Extractor *x, const ArchiveItem *it) {
        const char *slash = memrchr(it->path, '/', it->path_len);
        const char *base = slash ? slash + 1 : it->path;
        int r;

        if (!component_ok(base))
                return write_failed(x, EINVAL, "create the file", it->name);
        r = enter_dir(x, it->name, it->path, slash ? (size_t) (slash - it->path) : 0);
        if (r < 0)
                return r;
        /* Duplicates were resolved before: a file that exists already was not made by us. */
        x->fd = openat(x->dir_fd, base, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, 0600);
        if (x->fd < 0)
                return write_failed(x, errno, "create the file", it->name);
        x->item = it;
        r = archive_item_stream(x->plan->zip, it, x->buf, CHUNK_SIZE, write_sink, x, x->ret_error);
        if (r < 0)
                return r;
        /* No setuid, setgid or sticky bit from an archive. */
        if (fchmod(x->fd, it->has_mode ? it->mode & 0777 : 0644) < 0)
                return write_failed(x, errno, "set the file's mode", it->name);
        r = set_times(x->fd, it);
        if (r < 0)
                return write_failed(x, r, "set the file's time", it->name);
        r = close(x->fd);
        x->fd = -1;
        if (r < 0 && errno != EINTR)
                return write_failed(x, errno, "write the file", it->name);
        return 0;
}

/* Folder entries get their mode and time last: writing into a folder changes its mtime. */
static int finish_dirs(Extractor *x) {
        for (size_t i = 0; i < x->plan->n_items; i++) {
                const ArchiveItem *it = &x->plan->items[i];
                int r;

                if (it->kind != ITEM_DIR || it->superseded)
                        continue;
                r = enter_dir(x, it->name, it->path, it->path_len);
                if (r < 0)
                        return r;
                /* The user must be able to manage what is restored: u+rwx always. */
                if (fchmod(x->dir_fd, it->has_mode ? (it->mode & 0777) | 0700 : 0755) < 0)
                        return write_failed(x, errno, "set a folder's mode", it->name);
                r = set_times(x->dir_fd, it);
                if (r < 0)
                        return write_failed(x, r, "set a folder's time", it->name);
        }
        return 0;
}

int restore_archive_extract(int zip_fd, int staging_fd, const BackupCallbacks *cb, char **ret_error) {
        _cleanup_(archive_plan_done) ArchivePlan p = {};
        _cleanup_(extractor_done) Extractor x = { .dir_fd = -1, .fd = -1 };
        int r;

        *ret_error = NULL;
        r = archive_plan_open(zip_fd, RESTORE_ENTRIES_MAX, &p, ret_error);
        if (r < 0)
                return r;
        x = (Extractor) {
                .plan = &p,
                .staging_fd = staging_fd,
                .cb = cb,
                .ret_error = ret_error,
                .buf = malloc(CHUNK_SIZE),
                .dir_fd = -1,
                .fd = -1,
                .total = p.total_size,
        };
        if (!x.buf)
                return -ENOMEM;
        r = report(&x, true);
        if (r < 0)
                return r;

        for (size_t i = 0; i < p.n_items; i++) {
                const ArchiveItem *it = &p.items[i];

                if (it->superseded)
                        continue;
                if (it->kind == ITEM_FILE)
                        r = extract_file(&x, it);
                else if (it->kind == ITEM_DIR)
                        r = enter_dir(&x, it->name, it->path, it->path_len);
                if (r < 0)
                        return r;
        }
        r = report(&x, true);
        if (r < 0)
                return r;
        r = finish_dirs(&x);
        if (r < 0)
                return r;

        /* One syncfs() instead of an fsync() per file and folder: a restore writes thousands of small
         * files, often to an SD card, where a journal commit per file costs minutes (starting each file's
         * writeback early measured slower too). It covers data and folders alike and reports writeback
         * errors since staging_fd was opened (Linux >= 5.8). */
        if (backup_progress(cb, "syncing", x.done, x.total) < 0) {
                *ret_error = strdup("Canceled");
                return -ECANCELED;
        }
        if (syncfs(staging_fd) < 0) {
                r = -errno;
                if (asprintf(ret_error, "Syncing the restored files to disk failed: %s", strerror(-r)) < 0)
                        *ret_error = NULL;
                return r;
        }
        return 0;
}

/* ---- rm_rf_at ---- */

typedef struct RmLevel {
        char *name;     /* relative to the level above; level 0 relative to the caller's dir_fd */
        DIR *d;         /* NULL while closed to save descriptors: reopened, and read again, when needed */
} RmLevel;

typedef struct RmTree {
        int dir_fd;
        RmLevel *levels;
        size_t n, allocated, n_open;
} RmTree;

static void rm_tree_done(RmTree *t) {
        for (size_t i = 0; i < t->n; i++) {
                free(t->levels[i].name);
                if (t->levels[i].d)
                        closedir(t->levels[i].d);
        }
        free(t->levels);
}

static int parent_fd(RmTree *t, size_t i) {
        return i == 0 ? t->dir_fd : dirfd(t->levels[i - 1].d);
}

/* Adds u+rwx to a folder we own (restored modes, or a user's read-only folder), without following a
 * symlink: glibc's fchmodat() with AT_SYMLINK_NOFOLLOW works on an O_PATH descriptor. */
static int make_accessible(int dir_fd, const char *name) {
        struct stat st;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return -errno;
        if (!S_ISDIR(st.st_mode) || (st.st_mode & 0700) == 0700)
                return -EACCES;
        return fchmodat(dir_fd, name, (st.st_mode & 07777) | 0700, AT_SYMLINK_NOFOLLOW) < 0 ? -errno : 0;
}

static int open_subdir(int dir_fd, const char *name, DIR **ret) {
        int fd;

        for (int attempt = 0;; attempt++) {
                fd = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (fd >= 0 || errno != EACCES || attempt > 0 || make_accessible(dir_fd, name) < 0)
                        break;
        }
        if (fd < 0)
                return -errno;
        *ret = fdopendir(fd);
        if (!*ret) {
                close(fd);
                return -ENOMEM;
        }
        return 0;
}

/* Opens level i, and every closed level above it on the way; keeps at most RM_RF_OPEN_MAX open by
 * closing the shallowest (deeper ones are needed first). */
static int rm_open(RmTree *t, size_t i) {
        size_t j = i;

        while (j > 0 && !t->levels[j - 1].d)
                j--;
        for (; j <= i; j++) {
                int r;

                if (t->levels[j].d)
                        continue;
                r = open_subdir(parent_fd(t, j), t->levels[j].name, &t->levels[j].d);
                if (r < 0)
                        return r;
                t->n_open++;
        }
        for (size_t k = 0; t->n_open > RM_RF_OPEN_MAX && k + 1 < i; k++)
                if (t->levels[k].d) {
                        closedir(t->levels[k].d);
                        t->levels[k].d = NULL;
                        t->n_open--;
                }
        return 0;
}

static int rm_push(RmTree *t, const char *name) {
        if (t->n == t->allocated) {
                size_t na = t->allocated ? t->allocated * 2 : 16;
                RmLevel *l = reallocarray(t->levels, na, sizeof(RmLevel));

                if (!l)
                        return -ENOMEM;
                t->levels = l;
                t->allocated = na;
        }
        t->levels[t->n] = (RmLevel) { .name = strdup(name) };
        if (!t->levels[t->n].name)
                return -ENOMEM;
        t->n++;
        return 0;
}

/* unlinkat() that makes the folder writable once if it has to. */
static int rm_unlink(RmTree *t, size_t level, const char *name, int flags) {
        int fd = dirfd(t->levels[level].d);

        for (int attempt = 0;; attempt++) {
                struct stat st;

                if (unlinkat(fd, name, flags) >= 0 || errno == ENOENT)
                        return 0;
                if ((errno != EACCES && errno != EPERM) || attempt > 0 || fstat(fd, &st) < 0 ||
                    (st.st_mode & 0700) == 0700 || fchmod(fd, (st.st_mode & 07777) | 0700) < 0)
                        return -errno;
        }
}

/* The deepest level is read to the end: remove it from its parent and go up. */
static int rm_pop(RmTree *t) {
        RmLevel *l = &t->levels[t->n - 1];
        int r = 0;

        if (l->d) {
                closedir(l->d);
                l->d = NULL;
                t->n_open--;
        }
        if (t->n == 1) {
                if (unlinkat(t->dir_fd, l->name, AT_REMOVEDIR) < 0 && errno != ENOENT)
                        r = -errno;
        } else {
                r = rm_open(t, t->n - 2);
                if (r >= 0)
                        r = rm_unlink(t, t->n - 2, l->name, AT_REMOVEDIR);
        }
        free(l->name);
        t->n--;
        return r;
}

static int rm_step(RmTree *t) {
        RmLevel *l = &t->levels[t->n - 1];
        struct dirent *de;
        bool is_dir;
        int r;

        if (!l->d) {
                r = rm_open(t, t->n - 1);
                /* Replaced by a non-folder since it was listed: remove it as what it is now. */
                if ((r == -ENOTDIR || r == -ELOOP) && t->n > 1 && rm_open(t, t->n - 2) >= 0) {
                        r = rm_unlink(t, t->n - 2, l->name, 0);
                        free(l->name);
                        t->n--;
                        return r;
                }
                if (r < 0)
                        return r;
        }
        errno = 0;
        de = readdir(l->d);
        if (!de)
                return errno > 0 ? -errno : rm_pop(t);
        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                return 0;
        is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
                struct stat st;

                if (fstatat(dirfd(l->d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? 0 : -errno;
                is_dir = S_ISDIR(st.st_mode);
        }
        if (is_dir)
                return rm_push(t, de->d_name);
        r = rm_unlink(t, t->n - 1, de->d_name, 0);
        /* Became a folder since it was listed. */
        return r == -EISDIR ? rm_push(t, de->d_name) : r;
}

int rm_rf_at(int dir_fd, const char *name) {
        _cleanup_(rm_tree_done) RmTree t = { .dir_fd = dir_fd };
        struct stat st;
        int r;

        if (fstatat(dir_fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        if (!S_ISDIR(st.st_mode))
                return unlinkat(dir_fd, name, 0) < 0 && errno != ENOENT ? -errno : 0;

        r = rm_push(&t, name);
        while (r >= 0 && t.n > 0)
                r = rm_step(&t);
        return r < 0 ? r : 0;
}
