/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <sys/stat.h>
#include <syslog.h>
#include <time.h>

#include "restore/restore-extract.h"
#include "restore/restore-inflate.h"
#include "archive-validate.h"
#include "util.h"

#define PROGRESS_INTERVAL_USEC 100000ULL

/* ---- extraction ---- */

typedef struct OutFile {
        const ArchiveItem *item;
        int fd;
        bool direct;                    /* fd is O_DIRECT */
} OutFile;

typedef struct Extractor {
        const ArchivePlan *plan;
        int staging_fd;
        const BackupCallbacks *cb;
        char **ret_error;
        EntryReader *reader;

        /* The folder the last entry went to, kept open: an archive lists a folder's files together. */
        char *dir_path;                 /* relative to staging; "" is staging itself */
        int dir_fd;

        /* The file each reader lane is giving out, being written. */
        OutFile out[ENTRY_READER_LANES_MAX];

        uint64_t done, total, last_progress;
} Extractor;

#define EXTRACTOR_NULL ((Extractor) { .dir_fd = -1, .out = { [0 ... ENTRY_READER_LANES_MAX - 1] = { .fd = -1 } } })

static void extractor_done(Extractor *x) {
        /* The reader's threads first: they use the plan's zip. */
        entry_reader_free(x->reader);
        free(x->dir_path);
        if (x->dir_fd >= 0)
                close(x->dir_fd);
        for (size_t i = 0; i < ENTRY_READER_LANES_MAX; i++)
                if (x->out[i].fd >= 0)
                        close(x->out[i].fd);
}

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

/* Bytes written: by the writer, and by the reader's lanes (large files). */
static uint64_t done_bytes(Extractor *x) {
        return x->done + (x->reader ? entry_reader_written(x->reader) : 0);
}

static int report(Extractor *x, bool force) {
        uint64_t now = now_usec();

        if (!force && now - x->last_progress < PROGRESS_INTERVAL_USEC)
                return 0;
        x->last_progress = now;
        if (backup_progress(x->cb, "extracting", done_bytes(x), x->total) < 0) {
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


static int set_times(int fd, const ArchiveItem *it) {
        struct timespec ts[2];

        if (!it->has_mtime)
                return 0;
        ts[0] = ts[1] = (struct timespec) { .tv_sec = (time_t) it->mtime };
        return futimens(fd, ts) < 0 ? -errno : 0;
}

/* Creates the file a lane's entry goes to. A file the lane writes itself (direct: the large ones) is
 * opened with O_DIRECT: its data goes to the disk, not through the page cache. Copying into freshly
 * allocated page cache costs about as much CPU as inflating (more on VMs that give freed memory back to
 * the host), and the data has to reach the disk before the swap anyway. */
static int open_file(Extractor *x, OutFile *o, const ArchiveItem *it, bool direct) {
        const char *slash = memrchr(it->path, '/', it->path_len);
        const char *base = slash ? slash + 1 : it->path;
        int flags = O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_NOCTTY | O_CLOEXEC, r;

        if (!component_ok(base))
                return write_failed(x, EINVAL, "create the file", it->name);
        r = enter_dir(x, it->name, it->path, slash ? (size_t) (slash - it->path) : 0);
        if (r < 0)
                return r;
        /* Duplicates were resolved before: a file that exists already was not made by us. */
        o->item = it;
        o->direct = direct;
        o->fd = openat(x->dir_fd, base, flags | (o->direct ? O_DIRECT : 0), 0600);
        if (o->fd < 0 && o->direct && errno == EINVAL) {
                /* No O_DIRECT here (older tmpfs): the file was not created. */
                o->direct = false;
                o->fd = openat(x->dir_fd, base, flags, 0600);
        }
        if (o->fd < 0)
                return write_failed(x, errno, "create the file", it->name);
        return 0;
}

static int finish_file(Extractor *x, OutFile *o) {
        const ArchiveItem *it = o->item;
        int r;

        /* No setuid, setgid or sticky bit from an archive. */
        if (fchmod(o->fd, it->has_mode ? it->mode & 0777 : 0644) < 0)
                return write_failed(x, errno, "set the file's mode", it->name);
        r = set_times(o->fd, it);
        if (r < 0)
                return write_failed(x, r, "set the file's time", it->name);
        r = close(o->fd);
        o->fd = -1;
        if (r < 0 && errno != EINTR)
                return write_failed(x, errno, "write the file", it->name);
        return 0;
}

/* Writes the files as their pieces come, from whichever reader lane has one, and creates those the
 * lanes write themselves. */
static int extract_files(Extractor *x) {
        for (;;) {
                EntryPiece piece;
                OutFile *o;
                int r;

                r = entry_reader_next(x->reader, &piece, x->ret_error);
                if (r < 0 && !*x->ret_error && piece.item)
                        return write_failed(x, r, "write the file", piece.item->name);
                if (r <= 0)
                        return r;
                if (r == 2) {
                        r = report(x, false);
                        if (r < 0)
                                return r;
                        continue;
                }
                o = &x->out[piece.lane];
                if (piece.open) {
                        r = open_file(x, o, piece.item, true);
                        if (r < 0)
                                return r;
                        entry_reader_attach(x->reader, &piece, TAKE_FD(o->fd), o->direct);
                        continue;
                }
                if (piece.fd >= 0) {
                        /* Written (and counted) by the lane, size and CRC checked. */
                        o->fd = piece.fd;
                        o->item = piece.item;
                } else {
                        if (piece.first) {
                                r = open_file(x, o, piece.item, false);
                                if (r < 0)
                                        return r;
                        }
                        if (o->fd < 0 || o->item != piece.item)
                                return write_failed(x, EPROTO, "write the file", piece.item->name);
                        r = write_all(o->fd, piece.data, piece.size);
                        if (r < 0)
                                return write_failed(x, r, "write the file", piece.item->name);
                }
                x->done += piece.size;
                r = report(x, false);
                if (r < 0)
                        return r;
                if (piece.last) {
                        r = finish_file(x, o);
                        if (r < 0)
                                return r;
                }
        }
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
        _cleanup_free_ const ArchiveItem **files = NULL;
        _cleanup_(extractor_done) Extractor x = EXTRACTOR_NULL;
        size_t n_files = 0;
        int r;

        *ret_error = NULL;
        r = archive_plan_open(zip_fd, RESTORE_ENTRIES_MAX, &p, ret_error);
        if (r < 0)
                return r;
        x.plan = &p;
        x.staging_fd = staging_fd;
        x.cb = cb;
        x.ret_error = ret_error;
        x.total = p.total_size;
        files = calloc(p.n_files ?: 1, sizeof(ArchiveItem *));
        if (!files)
                return -ENOMEM;
        for (size_t i = 0; i < p.n_items; i++)
                if (p.items[i].kind == ITEM_FILE && !p.items[i].superseded)
                        files[n_files++] = &p.items[i];
        r = entry_reader_start(p.zip, zip_fd, files, n_files, &x.reader);
        if (r < 0)
                return r;
        r = report(&x, true);
        if (r < 0)
                return r;

        /* The folders first (also the empty ones), while the readers start on the files. */
        for (size_t i = 0; i < p.n_items; i++) {
                const ArchiveItem *it = &p.items[i];

                if (it->kind != ITEM_DIR || it->superseded)
                        continue;
                r = enter_dir(&x, it->name, it->path, it->path_len);
                if (r < 0)
                        return r;
        }
        r = extract_files(&x);
        if (r < 0)
                return r;
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
        if (backup_progress(cb, "syncing", done_bytes(&x), x.total) < 0) {
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
