/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>

#include "restore/rm-rf.h"
#include "util.h"

#define RM_RF_OPEN_MAX 32U

/* Unlinking a file can wait for the device: where the file system discards freed blocks at once (ext4
 * mounted with -o discard, common on VMs and SSDs), each unlink waits for the discard of the file's
 * blocks, ~0.5 ms. A restore's old basedir has thousands of files: removed one by one, that was a second
 * or more, longer than extracting them. The waits overlap well (the directory lock is not held while the
 * inode is freed), so the files of the folder being read are unlinked by a few threads, started only
 * while the queue is not kept empty. */
#define RM_THREADS_MAX 8U
#define RM_QUEUE_MAX 64U
#define RM_THREAD_STACK (64U * 1024U)

typedef struct RmQueue {
        pthread_mutex_t lock;
        pthread_cond_t work;            /* to the threads: a name was queued, or stop */
        pthread_cond_t progress;        /* to the walker: a name was taken or unlinked */
        int dir_fd;                     /* the folder of every queued name: the queue is drained before
                                         * the walker leaves a folder or closes a descriptor */
        char *names[RM_QUEUE_MAX];      /* a ring */
        size_t head, n_queued, n_busy, n_idle;
        int error;                      /* the first failure */
        bool rescan;                    /* an entry became a folder since it was listed */
        bool stop;
        pthread_t threads[RM_THREADS_MAX];
        size_t n_threads;
} RmQueue;

typedef struct RmLevel {
        char *name;     /* relative to the level above; level 0 relative to the caller's dir_fd */
        DIR *d;         /* NULL while closed to save descriptors: reopened, and read again, when needed */
} RmLevel;

typedef struct RmTree {
        int dir_fd;
        RmLevel *levels;
        size_t n, allocated, n_open;
        RmQueue q;
        bool q_ready;
} RmTree;

/* unlinkat() that makes the folder writable once if it has to. Thread-safe: the folder's mode is only
 * ever raised to u+rwx, whoever does it first. */
static int unlink_in(int fd, const char *name, int flags) {
        for (int attempt = 0;; attempt++) {
                struct stat st;

                if (unlinkat(fd, name, flags) >= 0 || errno == ENOENT)
                        return 0;
                if ((errno != EACCES && errno != EPERM) || attempt > 0 || fstat(fd, &st) < 0 ||
                    (st.st_mode & 0700) == 0700 || fchmod(fd, (st.st_mode & 07777) | 0700) < 0)
                        return -errno;
        }
}

/* ---- the unlinking threads ---- */

static void *rm_thread(void *userdata) {
        RmQueue *q = userdata;

        pthread_mutex_lock(&q->lock);
        for (;;) {
                char *name;
                int fd, r;

                while (q->n_queued == 0 && !q->stop) {
                        q->n_idle++;
                        pthread_cond_wait(&q->work, &q->lock);
                        q->n_idle--;
                }
                if (q->n_queued == 0)
                        break;
                name = q->names[q->head];
                q->head = (q->head + 1) % RM_QUEUE_MAX;
                q->n_queued--;
                q->n_busy++;
                fd = q->dir_fd;
                pthread_cond_signal(&q->progress);
                pthread_mutex_unlock(&q->lock);

                r = unlink_in(fd, name, 0);
                free(name);

                pthread_mutex_lock(&q->lock);
                q->n_busy--;
                if (r == -EISDIR)
                        q->rescan = true;
                else if (r < 0 && q->error == 0)
                        q->error = r;
                pthread_cond_signal(&q->progress);
        }
        pthread_mutex_unlock(&q->lock);
        return NULL;
}

static int rm_queue_init(RmQueue *q) {
        *q = (RmQueue) { .dir_fd = -1 };
        if (pthread_mutex_init(&q->lock, NULL) != 0)
                return -ENOMEM;
        if (pthread_cond_init(&q->work, NULL) != 0) {
                pthread_mutex_destroy(&q->lock);
                return -ENOMEM;
        }
        if (pthread_cond_init(&q->progress, NULL) != 0) {
                pthread_cond_destroy(&q->work);
                pthread_mutex_destroy(&q->lock);
                return -ENOMEM;
        }
        return 0;
}

/* Stops and joins the threads; what is still queued is unlinked first. */
static void rm_queue_done(RmQueue *q) {
        pthread_mutex_lock(&q->lock);
        q->stop = true;
        pthread_cond_broadcast(&q->work);
        pthread_mutex_unlock(&q->lock);
        for (size_t k = 0; k < q->n_threads; k++)
                (void) pthread_join(q->threads[k], NULL);
        while (q->n_queued > 0) {
                free(q->names[q->head]);
                q->head = (q->head + 1) % RM_QUEUE_MAX;
                q->n_queued--;
        }
        pthread_cond_destroy(&q->progress);
        pthread_cond_destroy(&q->work);
        pthread_mutex_destroy(&q->lock);
}

/* One more thread, with every signal blocked (the daemon takes its signals through signalfd). Called
 * with the lock held. False if none could be started: the caller unlinks itself. */
static bool rm_queue_add_thread(RmQueue *q) {
        sigset_t all, saved;
        pthread_attr_t attr;
        bool ok;

        if (pthread_attr_init(&attr) != 0)
                return false;
        (void) pthread_attr_setstacksize(&attr, RM_THREAD_STACK);
        sigfillset(&all);
        pthread_sigmask(SIG_BLOCK, &all, &saved);
        ok = pthread_create(&q->threads[q->n_threads], &attr, rm_thread, q) == 0;
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
        pthread_attr_destroy(&attr);
        if (ok)
                q->n_threads++;
        return ok;
}

/* Queues the unlinking of a non-folder in dir_fd, which stays open until rm_queue_drain(). */
static int rm_queue_unlink(RmQueue *q, int dir_fd, const char *name) {
        char *copy = strdup(name);

        if (!copy)
                return -ENOMEM;
        pthread_mutex_lock(&q->lock);
        /* Another thread only while names wait and no thread is free: where unlinking is fast, one does. */
        if ((q->n_threads == 0 || (q->n_idle == 0 && q->n_queued > 0 && q->n_threads < RM_THREADS_MAX)) &&
            !rm_queue_add_thread(q) && q->n_threads == 0) {
                pthread_mutex_unlock(&q->lock);
                free(copy);
                return -EAGAIN;
        }
        while (q->n_queued == RM_QUEUE_MAX)
                pthread_cond_wait(&q->progress, &q->lock);
        q->dir_fd = dir_fd;
        q->names[(q->head + q->n_queued) % RM_QUEUE_MAX] = copy;
        q->n_queued++;
        pthread_cond_signal(&q->work);
        pthread_mutex_unlock(&q->lock);
        return 0;
}

/* Waits until everything queued is unlinked. Returns the first failure, 1 if an entry turned out to be
 * a folder (the folder must be read again), else 0. */
static int rm_queue_drain(RmQueue *q) {
        int r;

        pthread_mutex_lock(&q->lock);
        while (q->n_queued > 0 || q->n_busy > 0)
                pthread_cond_wait(&q->progress, &q->lock);
        r = q->error < 0 ? q->error : q->rescan ? 1 : 0;
        q->error = 0;
        q->rescan = false;
        q->dir_fd = -1;
        pthread_mutex_unlock(&q->lock);
        return r;
}

/* ---- the walk ---- */

static void rm_tree_done(RmTree *t) {
        /* The threads first: they may still use a folder's descriptor. */
        if (t->q_ready)
                rm_queue_done(&t->q);
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
 * closing the shallowest (deeper ones are needed first). Nothing is queued when it is called. */
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
        if (ARRAY_RESERVE(t->levels, t->allocated, t->n + 1) < 0)
                return -ENOMEM;
        t->levels[t->n] = (RmLevel) { .name = strdup(name) };
        if (!t->levels[t->n].name)
                return -ENOMEM;
        t->n++;
        return 0;
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
                        r = unlink_in(dirfd(t->levels[t->n - 2].d), l->name, AT_REMOVEDIR);
        }
        free(l->name);
        t->n--;
        return r;
}

/* Before the walk leaves the deepest level (down or up): its queued unlinks must be done, and if one
 * found a folder, the level is read again from the start (rewinddir(): what is gone is not listed). */
static int rm_settle(RmTree *t) {
        RmLevel *l = &t->levels[t->n - 1];
        int r = rm_queue_drain(&t->q);

        if (r > 0)
                rewinddir(l->d);
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
                        r = unlink_in(dirfd(t->levels[t->n - 2].d), l->name, 0);
                        free(l->name);
                        t->n--;
                        return r;
                }
                if (r < 0)
                        return r;
        }
        errno = 0;
        de = readdir(l->d);
        if (!de) {
                if (errno > 0)
                        return -errno;
                r = rm_settle(t);
                return r != 0 ? (r < 0 ? r : 0) : rm_pop(t);
        }
        if (streq(de->d_name, ".") || streq(de->d_name, ".."))
                return 0;
        is_dir = de->d_type == DT_DIR;
        if (de->d_type == DT_UNKNOWN) {
                struct stat st;

                if (fstatat(dirfd(l->d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
                        return errno == ENOENT ? 0 : -errno;
                is_dir = S_ISDIR(st.st_mode);
        }
        if (is_dir) {
                /* The name is copied before the drain: rewinddir() would invalidate de. */
                _cleanup_free_ char *name = strdup(de->d_name);

                if (!name)
                        return -ENOMEM;
                r = rm_settle(t);
                /* Read again: the folder comes up again (unless it is gone). */
                if (r != 0)
                        return r < 0 ? r : 0;
                return rm_push(t, name);
        }
        r = rm_queue_unlink(&t->q, dirfd(l->d), de->d_name);
        if (r != -EAGAIN)
                return r;
        r = unlink_in(dirfd(l->d), de->d_name, 0);
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

        r = rm_queue_init(&t.q);
        if (r < 0)
                return r;
        t.q_ready = true;
        r = rm_push(&t, name);
        while (r >= 0 && t.n > 0)
                r = rm_step(&t);
        return r < 0 ? r : 0;
}
