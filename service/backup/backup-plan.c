/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <pwd.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>

#include "backup/backup-plan.h"
#include "log.h"
#include "names.h"

typedef struct DevIno {
        dev_t dev;
        ino_t ino;
} DevIno;

/* A folder a symlink target may or may not lead into; the deepest one holding the target decides. */
typedef struct Root {
        char *path;
        bool allowed;
} Root;

typedef struct Walker {
        const PlanRequest *req;
        const BackupCallbacks *cb;
        Plan *plan;
        int current;                       /* the folder id being walked, -1 for the rest of basedir */

        DevIno loc[_FOLDER_MAX];
        bool loc_valid[_FOLDER_MAX];
        char *archive_prefix[_FOLDER_MAX]; /* "basedir/timelapse/tmp" */
        DevIno backup;
        DevIno basedir;
        char **skip;                       /* "basedir/data/<plugin>[/<path>]", sorted */
        size_t n_skip;
        Root *roots;
        size_t n_roots;

        DevIno stack[PLAN_DEPTH_MAX];
        unsigned depth;
        uint64_t last_progress;
        char *error;
} Walker;

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static bool devino_eq(DevIno a, DevIno b) {
        return a.dev == b.dev && a.ino == b.ino;
}

static DevIno devino(const struct stat *st) {
        return (DevIno) { st->st_dev, st->st_ino };
}

static int set_error(Walker *w, int error, const char *format, ...) _printf_(3, 4);
static int set_error(Walker *w, int error, const char *format, ...) {
        va_list ap;

        free(w->error);
        errno = abs(error);
        va_start(ap, format);
        if (vasprintf(&w->error, format, ap) < 0)
                w->error = NULL;
        va_end(ap);
        return -abs(error);
}

static bool path_inside(const char *path, const char *root) {
        const char *rest;

        if (streq(root, "/"))
                return path[0] == '/';
        rest = startswith(path, root);
        return rest && (*rest == 0 || *rest == '/');
}

void plan_done(Plan *p) {
        for (size_t i = 0; i < p->n_entries; i++) {
                free(p->entries[i].name);
                free(p->entries[i].path);
        }
        free(p->entries);
        *p = (Plan) {};
}

int plan_folder_locations(const char *basedir, const OctoConfig *octo, char *ret[_FOLDER_MAX]) {
        char *l[_FOLDER_MAX] = {};

        for (int i = 0; i < _FOLDER_MAX; i++) {
                const char *o = octo ? octo->folders[i] : NULL;
                const char *home, *rest;
                int k;

                if (isempty(o))
                        k = asprintf(&l[i], "%s/%s", basedir, folder_default_relpath(i));
                else if (o[0] == '/')
                        k = asprintf(&l[i], "%s", o);
                else if ((rest = startswith(o, "~/")) || streq(o, "~")) {
                        struct passwd *pw = getpwuid(geteuid());

                        home = getenv("HOME") ?: pw ? pw->pw_dir : "/";
                        k = asprintf(&l[i], "%s/%s", home, rest ?: "");
                } else
                        k = asprintf(&l[i], "%s/%s", basedir, o);
                if (k < 0) {
                        for (int j = 0; j < i; j++)
                                free(l[j]);
                        return -ENOMEM;
                }
        }
        memcpy(ret, l, sizeof(l));
        return 0;
}

int open_no_symlinks(const char *path, int flags) {
        struct open_how how = {
                .flags = (uint64_t) (flags | O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY),
                .resolve = RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS,
        };
        _cleanup_free_ char *proc = NULL;
        char buf[PATH_MAX + 1];
        ssize_t n;
        int fd;

        fd = (int) syscall(SYS_openat2, AT_FDCWD, path, &how, sizeof(how));
        if (fd >= 0)
                return fd;
        if (errno != ENOSYS && errno != EPERM)     /* EPERM: a seccomp filter that does not know openat2 */
                return -errno;

        /* Without openat2, O_NOFOLLOW guards only the last component: check where the fd really is. */
        fd = open(path, (int) how.flags);
        if (fd < 0)
                return -errno;
        if (asprintf(&proc, "/proc/self/fd/%d", fd) < 0) {
                close(fd);
                return -ENOMEM;
        }
        n = readlink(proc, buf, sizeof(buf) - 1);
        if (n >= 0) {
                buf[n] = 0;
                if (!streq(buf, path)) {
                        close(fd);
                        return -ELOOP;
                }
        }
        return fd;
}

static bool utf8_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        while (*p) {
                unsigned c = *p, n;
                uint32_t cp;

                if (c < 0x80) {
                        p++;
                        continue;
                }
                if (c >= 0xc2 && c <= 0xdf)
                        n = 1, cp = c & 0x1f;
                else if (c >= 0xe0 && c <= 0xef)
                        n = 2, cp = c & 0x0f;
                else if (c >= 0xf0 && c <= 0xf4)
                        n = 3, cp = c & 0x07;
                else
                        return false;
                for (unsigned i = 1; i <= n; i++) {
                        if ((p[i] & 0xc0) != 0x80)
                                return false;
                        cp = (cp << 6) | (p[i] & 0x3f);
                }
                if ((n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) || cp > 0x10ffff ||
                    (cp >= 0xd800 && cp <= 0xdfff))
                        return false;
                p += n + 1;
        }
        return true;
}

bool plan_name_component_ok(const char *name) {
        for (const char *p = name; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f || *p == '\\')
                        return false;
        return utf8_valid(name);
}

/* ".<valid backup name>": the temporary file of a backup being written, here or by OctoPrint. */
static bool is_backup_temp_file(const char *name) {
        return name[0] == '.' && backup_name_is_valid(name + 1);
}

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

static bool skipped_by_plugin(Walker *w, const char *archive) {
        return w->n_skip > 0 && bsearch(&archive, w->skip, w->n_skip, sizeof(char *), cmp_strp);
}

static bool symlink_target_allowed(Walker *w, const char *target) {
        const Root *best = NULL;

        for (size_t i = 0; i < w->n_roots; i++)
                if (path_inside(target, w->roots[i].path) &&
                    (!best || strlen(w->roots[i].path) > strlen(best->path)))
                        best = &w->roots[i];
        return best && best->allowed;
}

static int plan_add(Walker *w, const char *name, const char *path, const struct stat *st) {
        Plan *p = w->plan;
        PlanEntry *e;

        if (p->n_entries >= PLAN_ENTRIES_MAX)
                return set_error(w, EFBIG, "The instance has more than %u files to back up; a restore would refuse "
                                 "such a backup. Exclude folders or remove files.", PLAN_ENTRIES_MAX);
        if (ARRAY_RESERVE(p->entries, p->n_allocated, p->n_entries + 1) < 0)
                return -ENOMEM;
        e = &p->entries[p->n_entries];
        *e = (PlanEntry) {
                .name = strdup(name),
                .path = strdup(path),
                .size = (uint64_t) st->st_size,
                .mtime = st->st_mtime,
                .mode = st->st_mode,
                .stamp = file_stamp_from_stat(st),
        };
        if (!e->name || !e->path) {
                free(e->name);
                free(e->path);
                return -ENOMEM;
        }
        p->n_entries++;
        p->total_size += e->size;
        p->names_size += strlen(name);
        return 0;
}

static int report(Walker *w) {
        uint64_t now = now_usec();

        if (now - w->last_progress < 100000)
                return 0;
        w->last_progress = now;
        return backup_progress(w->cb, "scanning", w->plan->n_entries, 0);
}

static int walk_dir(Walker *w, int fd, const char *archive, const char *real);

/* fd: an open regular file (ownership taken) reached as `archive`, readable at `real`. */
static int add_file(Walker *w, int fd, const char *archive, const char *real) {
        _cleanup_close_ int ffd = fd;
        const char *leaf = strrchr(archive, '/') + 1;
        struct stat st;

        if (fstat(ffd, &st) < 0)
                return 0;
        if (!S_ISREG(st.st_mode)) {
                backup_log(w->cb, LOG_WARNING, "Skipping %s: not a regular file", real);
                return 0;
        }
        if (w->current < 0 && streq(archive, "basedir/config.yaml"))
                return 0;     /* stored from the configured config file already */
        if (is_backup_temp_file(leaf))
                return 0;
        if (skipped_by_plugin(w, archive)) {
                backup_log(w->cb, LOG_INFO, "Leaving out %s (excluded by its plugin)", archive + strlen("basedir/"));
                return 0;
        }
        return plan_add(w, archive, real, &st);
}

/* shown: what to name in messages (the symlink, when one led here). */
static int enter_dir(Walker *w, int fd, const char *archive, const char *real, const char *shown) {
        _cleanup_close_ int dfd = fd;
        struct stat st;
        DevIno di;
        int r;

        if (fstat(dfd, &st) < 0)
                return 0;
        di = devino(&st);
        if (devino_eq(di, w->backup))
                return 0;     /* the backup folder: never in a backup */
        /* Another folder id's location, however reached: that id's files (or excluded with it). */
        for (int i = 0; i < _FOLDER_MAX; i++)
                if (i != w->current && w->loc_valid[i] && devino_eq(di, w->loc[i]))
                        return 0;
        if (skipped_by_plugin(w, archive)) {
                backup_log(w->cb, LOG_INFO, "Leaving out %s/ (excluded by its plugin)", archive + strlen("basedir/"));
                return 0;
        }
        for (unsigned i = 0; i < w->depth; i++)
                if (devino_eq(di, w->stack[i])) {
                        backup_log(w->cb, LOG_WARNING, "Skipping %s: a symlink loop leads back to a folder "
                                   "already being backed up", shown);
                        return 0;
                }
        if (w->depth >= PLAN_DEPTH_MAX) {
                backup_log(w->cb, LOG_WARNING, "Skipping %s: folders nested deeper than %u levels", shown,
                           PLAN_DEPTH_MAX);
                return 0;
        }
        w->stack[w->depth++] = di;
        r = walk_dir(w, TAKE_FD(dfd), archive, real);
        w->depth--;
        return r;
}

static int walk_symlink(Walker *w, const char *archive, const char *real) {
        _cleanup_free_ char *target = NULL;
        struct stat st;
        int fd;

        target = realpath(real, NULL);
        if (!target) {
                if (errno == ENOMEM)
                        return -ENOMEM;
                backup_log(w->cb, LOG_WARNING, "Skipping symlink %s: its target cannot be resolved: %m", real);
                return 0;
        }
        if (!symlink_target_allowed(w, target)) {
                backup_log(w->cb, LOG_WARNING, "Skipping symlink %s: it points to %s, outside the instance's "
                           "folders (or into one that is not backed up)", real, target);
                return 0;
        }
        if (stat(target, &st) < 0)
                return 0;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
                backup_log(w->cb, LOG_WARNING, "Skipping symlink %s: its target is not a regular file or folder",
                           real);
                return 0;
        }
        fd = open_no_symlinks(target, S_ISDIR(st.st_mode) ? O_DIRECTORY : 0);
        if (fd < 0) {
                backup_log(w->cb, LOG_WARNING, "Skipping symlink %s: cannot open %s: %s", real, target,
                           strerror(-fd));
                return 0;
        }
        return S_ISDIR(st.st_mode) ? enter_dir(w, fd, archive, target, real) : add_file(w, fd, archive, target);
}

static int walk_node(Walker *w, int dfd, const char *archive, const char *real, const char *name);

static int walk_entry(Walker *w, int dfd, const char *archive_dir, const char *real_dir, const char *name) {
        _cleanup_free_ char *archive = NULL, *real = NULL;
        int r;

        r = report(w);
        if (r < 0)
                return r;
        if (asprintf(&archive, "%s/%s", archive_dir, name) < 0 || asprintf(&real, "%s/%s", real_dir, name) < 0)
                return -ENOMEM;
        if (!plan_name_component_ok(name)) {
                backup_log(w->cb, LOG_WARNING, "Skipping %s: its name is not valid UTF-8 or contains a control "
                           "character or backslash, which a restore would refuse", real);
                return 0;
        }
        if (strlen(archive) > PLAN_NAME_MAX) {
                backup_log(w->cb, LOG_WARNING, "Skipping %s: its path is longer than %u bytes", real, PLAN_NAME_MAX);
                return 0;
        }
        /* The place of another folder id in the archive (e.g. basedir/uploads, timelapse/tmp): stored from
         * that id's configured location, whatever is here (a stale folder, a symlink to it). The tmp/ of
         * timelapse's own folder comes later, next to timelapse_tmp (walk_timelapse_tmp()). */
        for (int i = 0; i < _FOLDER_MAX; i++)
                if (i != w->current && streq(archive, w->archive_prefix[i]))
                        return 0;
        return walk_node(w, dfd, archive, real, name);
}

/* dfd/name, stored as `archive`: a file added, a folder walked, a symlink followed where the rules allow. */
static int walk_node(Walker *w, int dfd, const char *archive, const char *real, const char *name) {
        struct stat st;
        int fd;

        if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return 0;     /* gone since the folder was listed */

        if (S_ISLNK(st.st_mode))
                return walk_symlink(w, archive, real);
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode)) {
                backup_log(w->cb, LOG_WARNING, "Skipping %s: not a regular file (FIFO, socket or device)", real);
                return 0;
        }
        fd = openat(dfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY |
                    (S_ISDIR(st.st_mode) ? O_DIRECTORY : 0));
        if (fd < 0) {
                if (errno == ENOENT)
                        return 0;
                backup_log(w->cb, LOG_WARNING, "Skipping %s: %m", real);
                return 0;
        }
        return S_ISDIR(st.st_mode) ? enter_dir(w, fd, archive, real, real) : add_file(w, fd, archive, real);
}

static int list_names(int fd, char ***ret) {
        _cleanup_strv_free_ char **names = NULL;
        size_t n = 0, allocated = 0;
        DIR *d;
        int r;

        r = opendir_fd(fd, &d);
        if (r < 0)
                return r;
        for (struct dirent *de; (de = readdir(d));) {
                if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                        continue;
                if (ARRAY_RESERVE(names, allocated, n + 2) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
                names[n] = strdup(de->d_name);
                if (!names[n]) {
                        closedir(d);
                        return -ENOMEM;
                }
                names[++n] = NULL;
        }
        closedir(d);
        if (names)
                qsort(names, n, sizeof(char *), cmp_strp);
        *ret = TAKE_PTR(names);
        return 0;
}

/* Entries of each folder sorted by name: the same tree always gives the same archive. */
static int walk_dir(Walker *w, int fd, const char *archive, const char *real) {
        _cleanup_close_ int dfd = fd;
        _cleanup_strv_free_ char **names = NULL;
        int r;

        r = list_names(dfd, &names);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                backup_log(w->cb, LOG_WARNING, "Skipping %s: cannot list it: %s", real, strerror(-r));
                return 0;
        }
        STRV_FOREACH(n, names) {
                r = walk_entry(w, dfd, archive, real, *n);
                if (r < 0)
                        return r;
        }
        return 0;
}

static void walker_done(Walker *w) {
        for (int i = 0; i < _FOLDER_MAX; i++)
                free(w->archive_prefix[i]);
        for (size_t i = 0; i < w->n_roots; i++)
                free(w->roots[i].path);
        free(w->roots);
        strv_free(w->skip);
        free(w->error);
}

/* A folder symlinks may lead into (allowed) or not. Folders that do not exist need no entry. */
static int add_root(Walker *w, const char *path, bool allowed) {
        char *real;
        Root *t;

        real = realpath(path, NULL);
        if (!real)
                return errno == ENOMEM ? -ENOMEM : 0;
        t = reallocarray(w->roots, w->n_roots + 1, sizeof(Root));
        if (!t) {
                free(real);
                return -ENOMEM;
        }
        w->roots = t;
        w->roots[w->n_roots++] = (Root) { .path = real, .allowed = allowed };
        return 0;
}

static int walker_init(Walker *w) {
        const PlanRequest *r = w->req;
        struct stat st;
        int k;

        if (stat(r->backup_folder, &st) < 0)
                return asprintf(&w->error, "Cannot open the backup folder %s: %m", r->backup_folder) < 0 ? -ENOMEM : -errno;
        w->backup = devino(&st);
        if (stat(r->basedir, &st) < 0)
                return asprintf(&w->error, "Cannot open the basedir %s: %m", r->basedir) < 0 ? -ENOMEM : -errno;
        w->basedir = devino(&st);

        if ((k = add_root(w, r->basedir, true)) < 0 || (k = add_root(w, r->backup_folder, false)) < 0)
                return k;
        for (int i = 0; i < _FOLDER_MAX; i++) {
                if (asprintf(&w->archive_prefix[i], "basedir/%s", folder_default_relpath(i)) < 0)
                        return -ENOMEM;
                if (stat(r->locations[i], &st) >= 0 && S_ISDIR(st.st_mode)) {
                        w->loc[i] = devino(&st);
                        w->loc_valid[i] = true;
                }
                k = add_root(w, r->locations[i], !r->excluded[i]);
                if (k < 0)
                        return k;
        }

        w->skip = calloc(1, sizeof(char *));
        if (!w->skip)
                return -ENOMEM;
        STRV_FOREACH(e, r->additional_excludes) {
                _cleanup_free_ char *p = NULL;
                char *name;
                const char *rest = startswith(*e, "data/");

                if (!rest)
                        continue;
                if (asprintf(&name, "basedir/%s", *e) < 0 || strv_consume(&w->skip, name) < 0)
                        return -ENOMEM;
                /* A symlink elsewhere must not bring back what a plugin excluded. */
                if (asprintf(&p, "%s/%s", r->locations[FOLDER_DATA], rest) < 0)
                        return -ENOMEM;
                k = add_root(w, p, false);
                if (k < 0)
                        return k;
        }
        w->n_skip = strv_length(w->skip);
        qsort(w->skip, w->n_skip, sizeof(char *), cmp_strp);
        return 0;
}

/* Entry 2: basedir/config.yaml, from wherever the instance's config file is. */
static int add_config(Walker *w) {
        const char *path = w->req->config_file;
        _cleanup_free_ char *real = NULL;
        struct stat st;
        int fd;

        if (lstat(path, &st) < 0 || !(real = realpath(path, NULL)))
                return set_error(w, errno, "Cannot read the config file %s: %m", path);
        if (S_ISLNK(st.st_mode) && !symlink_target_allowed(w, real))
                return set_error(w, EPERM, "The config file %s is a symlink to %s, outside the instance's folders: "
                                 "refusing to back it up", path, real);
        fd = open_no_symlinks(real, 0);
        if (fd < 0)
                return set_error(w, fd, "Cannot read the config file %s: %s", path, strerror(-fd));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return set_error(w, EINVAL, "The config file %s is not a regular file", path);
        }
        close(fd);
        return plan_add(w, "basedir/config.yaml", real, &st);
}

/* Entry 3: one folder id from its configured location. */
static int walk_folder(Walker *w, FolderId id) {
        const char *loc = w->req->locations[id];
        _cleanup_free_ char *real = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;

        /* The location itself is configuration (config.yaml, the user's own): followed if a symlink. */
        fd = open(loc, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0) {
                if (errno != ENOENT)
                        backup_log(w->cb, LOG_WARNING, "Not backing up %s (%s): %m", folder_id_to_string(id), loc);
                return 0;
        }
        if (fstat(fd, &st) < 0)
                return 0;
        if (devino_eq(devino(&st), w->backup) || devino_eq(devino(&st), w->basedir)) {
                backup_log(w->cb, LOG_WARNING, "Not backing up %s: its folder %s is the %s", folder_id_to_string(id),
                           loc, devino_eq(devino(&st), w->backup) ? "backup folder" : "basedir");
                return 0;
        }
        for (int j = 0; j < (int) id; j++)
                if (w->loc_valid[j] && devino_eq(devino(&st), w->loc[j]))
                        return 0;     /* same folder as an earlier id: stored (or excluded) as that one */
        real = realpath(loc, NULL);
        if (!real)
                return errno == ENOMEM ? -ENOMEM : 0;

        w->current = id;
        w->stack[0] = devino(&st);
        w->depth = 1;
        return walk_dir(w, TAKE_FD(fd), w->archive_prefix[id], real);
}

/* OctoPrint walks timelapse's whole folder, tmp/ included, and stores that tmp/ as basedir/timelapse/tmp,
 * the place of timelapse_tmp in the archive. When one of the two is configured elsewhere, these are other
 * files than timelapse_tmp's, and OctoPrint's backup has them: so does this one. Walked right before
 * timelapse_tmp (the entries stay in folder order); when tmp/ is timelapse_tmp's own folder (the default),
 * enter_dir() leaves it to timelapse_tmp. */
static int walk_timelapse_tmp(Walker *w) {
        const char *loc = w->req->locations[FOLDER_TIMELAPSE];
        _cleanup_free_ char *real = NULL, *real_tmp = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;

        fd = open(loc, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0 || fstat(fd, &st) < 0)
                return 0;     /* walk_folder() said why */
        if (devino_eq(devino(&st), w->backup) || devino_eq(devino(&st), w->basedir))
                return 0;
        w->stack[0] = devino(&st);
        /* A file named tmp would clash with the folder timelapse_tmp's files are stored in. */
        if (fstatat(fd, "tmp", &st, 0) < 0 || !S_ISDIR(st.st_mode))
                return 0;
        real = realpath(loc, NULL);
        if (!real)
                return errno == ENOMEM ? -ENOMEM : 0;
        if (asprintf(&real_tmp, "%s/tmp", real) < 0)
                return -ENOMEM;
        w->current = FOLDER_TIMELAPSE;
        w->depth = 1;
        return walk_node(w, fd, w->archive_prefix[FOLDER_TIMELAPSE_TMP], real_tmp, "tmp");
}

static int cmp_entry_index(const void *a, const void *b, void *userdata) {
        const PlanEntry *e = userdata;
        size_t i = *(const size_t *) a, j = *(const size_t *) b;
        int c = strcmp(e[i].name, e[j].name);

        return c != 0 ? c : i < j ? -1 : i > j;
}

/* Entries [begin, n) with a name stored twice keep the last one only: timelapse's tmp/ and timelapse_tmp
 * both give names under basedir/timelapse/tmp. OctoPrint writes both, and extracting its zip leaves the
 * later one, timelapse_tmp's file, which is what is kept here. */
static int drop_earlier_duplicates(Plan *p, size_t begin) {
        _cleanup_free_ size_t *idx = NULL;
        _cleanup_free_ bool *drop = NULL;
        size_t n = p->n_entries - begin, k = begin;

        if (n < 2)
                return 0;
        idx = calloc(n, sizeof(size_t));
        drop = calloc(n, sizeof(bool));
        if (!idx || !drop)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                idx[i] = begin + i;
        qsort_r(idx, n, sizeof(size_t), cmp_entry_index, p->entries);
        for (size_t i = 0; i + 1 < n; i++)
                if (streq(p->entries[idx[i]].name, p->entries[idx[i + 1]].name))
                        drop[idx[i] - begin] = true;
        for (size_t i = begin; i < p->n_entries; i++) {
                PlanEntry *e = &p->entries[i];

                if (!drop[i - begin]) {
                        p->entries[k++] = *e;
                        continue;
                }
                p->total_size -= e->size;
                p->names_size -= strlen(e->name);
                free(e->name);
                free(e->path);
        }
        p->n_entries = k;
        return 0;
}

/* Entry 4: the rest of basedir. */
static int walk_basedir(Walker *w) {
        _cleanup_free_ char *real = NULL;
        int fd;

        fd = open(w->req->basedir, O_RDONLY | O_DIRECTORY | O_CLOEXEC | O_NONBLOCK);
        if (fd < 0)
                return set_error(w, errno, "Cannot open the basedir %s: %m", w->req->basedir);
        real = realpath(w->req->basedir, NULL);
        if (!real) {
                close(fd);
                return set_error(w, errno, "Cannot resolve the basedir %s: %m", w->req->basedir);
        }
        w->current = -1;
        w->stack[0] = w->basedir;
        w->depth = 1;
        return walk_dir(w, fd, "basedir", real);
}

int plan_build(const PlanRequest *r, const BackupCallbacks *cb, Plan *ret, char **ret_error) {
        Plan plan = {};
        Walker w = {
                .req = r,
                .cb = cb,
                .plan = &plan,
                .current = -1,
        };
        int k;

        k = walker_init(&w);
        if (k >= 0)
                k = add_config(&w);
        for (int i = 0; k >= 0 && i < _FOLDER_MAX; i++) {
                if (i == FOLDER_TIMELAPSE_TMP) {
                        size_t begin = plan.n_entries;

                        if (!r->excluded[FOLDER_TIMELAPSE])
                                k = walk_timelapse_tmp(&w);
                        if (k >= 0 && !r->excluded[i])
                                k = walk_folder(&w, i);
                        if (k >= 0)
                                k = drop_earlier_duplicates(&plan, begin);
                } else if (!r->excluded[i])
                        k = walk_folder(&w, i);
        }
        if (k >= 0)
                k = walk_basedir(&w);
        if (k >= 0)
                k = backup_progress(cb, "scanning", plan.n_entries, 0);
        if (k < 0) {
                if (ret_error && !w.error) {
                        if (k == -ECANCELED)
                                w.error = strdup("Canceled");
                        else if (k == -ENOMEM)
                                w.error = strdup("Out of memory while scanning the instance's files");
                        else
                                (void) asprintf(&w.error, "Scanning the instance's files failed: %s", strerror(-k));
                }
                if (ret_error)
                        *ret_error = TAKE_PTR(w.error);
                plan_done(&plan);
                walker_done(&w);
                return k;
        }
        walker_done(&w);
        *ret = plan;
        return 0;
}
