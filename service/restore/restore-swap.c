/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <json-c/json.h>
#include <libgen.h>
#include <sys/stat.h>

#include "log.h"
#include "restore/restore-swap.h"
#include "archive-validate.h"
#include "restore/rm-rf.h"
#include "util.h"

#define JOURNAL_SIZE_MAX (1U * 1024U * 1024U)

void test_pause_point(const char *point) {
        const char *want = getenv("OPBACKUP_TEST_PAUSE");

        if (want && streq(want, point)) {
                log_notice("Test pause at %s.", point);
                sleep(60);
        }
}

int swap_plan_init(SwapPlan *p, const char *basedir) {
        _cleanup_free_ char *a = strdup(basedir), *b = strdup(basedir);
        const char *parent, *base;

        *p = (SwapPlan) {};
        if (!a || !b)
                return -ENOMEM;
        parent = dirname(a);
        base = basename(b);
        if (isempty(base) || streq(base, "/") || streq(base, ".") || streq(base, ".."))
                return -EINVAL;
        p->basedir = strdup(basedir);
        if (!p->basedir || asprintf(&p->staging, "%s/.%s.opbackup-staging", streq(parent, "/") ? "" : parent, base) < 0 ||
            asprintf(&p->old, "%s/%s.opbackup-old", streq(parent, "/") ? "" : parent, base) < 0 ||
            asprintf(&p->journal, "%s/.%s.opbackup-journal", streq(parent, "/") ? "" : parent, base) < 0) {
                swap_plan_done(p);
                return -ENOMEM;
        }
        p->carry = calloc(1, sizeof(char *));
        return p->carry ? 0 : -ENOMEM;
}

int swap_plan_init_in_place(SwapPlan *p, const char *basedir) {
        int r;

        r = swap_plan_init(p, basedir);
        if (r < 0)
                return r;
        free(p->staging);
        free(p->old);
        p->old = NULL;
        if (asprintf(&p->staging, "%s/.opbackup-staging", basedir) < 0 ||
            asprintf(&p->old, "%s/.opbackup-old", basedir) < 0) {
                swap_plan_done(p);
                return -ENOMEM;
        }
        p->in_place = true;
        return 0;
}

void swap_plan_done(SwapPlan *p) {
        free(p->basedir);
        free(p->staging);
        free(p->old);
        free(p->journal);
        strv_free(p->carry);
        *p = (SwapPlan) {};
}

/* Opens an absolute directory path component by component, never following a symlink. */
static int open_dir_nofollow(const char *path, int *ret_fd) {
        _cleanup_free_ char *copy = strdup(path);
        char *save = NULL, *part;
        int fd, next;

        if (!copy)
                return -ENOMEM;
        if (path[0] != '/')
                return -EINVAL;
        fd = open("/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        for (part = strtok_r(copy, "/", &save); part; part = strtok_r(NULL, "/", &save)) {
                next = openat(fd, part, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                close(fd);
                if (next < 0)
                        return -errno;
                fd = next;
        }
        *ret_fd = fd;
        return 0;
}

/* The parent directory of path (opened safely) and the last component. */
static int open_parent(const char *path, int *ret_fd, char **ret_name) {
        _cleanup_free_ char *a = strdup(path), *b = strdup(path);
        int r;

        if (!a || !b)
                return -ENOMEM;
        r = open_dir_nofollow(dirname(a), ret_fd);
        if (r < 0)
                return r;
        *ret_name = strdup(basename(b));
        if (!*ret_name) {
                close(*ret_fd);
                return -ENOMEM;
        }
        return 0;
}

static bool exists_nofollow(const char *path) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;

        if (open_parent(path, &fd, &name) < 0)
                return false;
        return fstatat(fd, name, &st, AT_SYMLINK_NOFOLLOW) == 0;
}

static int rename_nofollow(const char *from, const char *to) {
        _cleanup_free_ char *n1 = NULL, *n2 = NULL;
        _cleanup_close_ int fd1 = -1, fd2 = -1;
        int r;

        r = open_parent(from, &fd1, &n1);
        if (r < 0)
                return r;
        r = open_parent(to, &fd2, &n2);
        if (r < 0)
                return r;
        if (renameat2(fd1, n1, fd2, n2, RENAME_NOREPLACE) < 0)
                return -errno;
        (void) fsync(fd1);
        (void) fsync(fd2);
        return 0;
}

static int rm_tree(const char *path) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int fd = -1;
        int r;

        r = open_parent(path, &fd, &name);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        return rm_rf_at(fd, name);
}

/* ---- The journal ---- */

static int journal_write(const SwapPlan *p, const char *state) {
        _cleanup_free_ char *tmp = NULL;
        json_object *o = json_object_new_object(), *carry = json_object_new_array();
        const char *text;
        int fd, r;

        json_object_object_add(o, "state", json_object_new_string(state));
        json_object_object_add(o, "basedir", json_object_new_string(p->basedir));
        json_object_object_add(o, "staging", json_object_new_string(p->staging));
        json_object_object_add(o, "old", json_object_new_string(p->old));
        json_object_object_add(o, "keep_previous", json_object_new_boolean(p->keep_previous));
        json_object_object_add(o, "in_place", json_object_new_boolean(p->in_place));
        STRV_FOREACH(c, p->carry)
                json_object_array_add(carry, json_object_new_string(*c));
        json_object_object_add(o, "carry", carry);
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY);

        if (asprintf(&tmp, "%s.tmp", p->journal) < 0) {
                json_object_put(o);
                return -ENOMEM;
        }
        /* The journal is root's: written with O_NOFOLLOW, replaced atomically, synced before we act. */
        (void) unlink(tmp);
        fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
        if (fd < 0) {
                json_object_put(o);
                return -errno;
        }
        r = write_all(fd, text, strlen(text));
        json_object_put(o);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        close(fd);
        if (r >= 0 && rename(tmp, p->journal) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlink(tmp);
                return r;
        }
        {
                _cleanup_free_ char *name = NULL;
                _cleanup_close_ int dfd = -1;
                if (open_parent(p->journal, &dfd, &name) >= 0)
                        (void) fsync(dfd);
        }
        return 0;
}

static int journal_read(const char *path, SwapPlan *p, char **ret_state) {
        _cleanup_free_ char *text = NULL;
        _cleanup_close_ int fd = -1;
        json_object *o, *v;
        int r = -EBADMSG;

        fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        r = read_full_fd(fd, JOURNAL_SIZE_MAX, &text, NULL);
        if (r < 0)
                return r;
        o = json_tokener_parse(text);
        if (!o)
                return -EBADMSG;
        r = -EBADMSG;
        *p = (SwapPlan) {};
        p->carry = calloc(1, sizeof(char *));
#define GET_STR(key, target)                                                                            \
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string) ||    \
            !((target) = strdup(json_object_get_string(v))))                                           \
                goto finish;
        GET_STR("state", *ret_state);
        GET_STR("basedir", p->basedir);
        GET_STR("staging", p->staging);
        GET_STR("old", p->old);
#undef GET_STR
        p->journal = strdup(path);
        if (json_object_object_get_ex(o, "keep_previous", &v))
                p->keep_previous = json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "in_place", &v))
                p->in_place = json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "carry", &v) && json_object_is_type(v, json_type_array))
                for (size_t k = 0; k < json_object_array_length(v); k++)
                        if (strv_extend(&p->carry, json_object_get_string(json_object_array_get_idx(v, k)) ?: "") < 0)
                                goto finish;
        r = p->journal && p->carry ? 0 : -ENOMEM;
finish:
        json_object_put(o);
        return r;
}

int swap_journal_prepare(const SwapPlan *p) {
        return journal_write(p, "prepared");
}

/* ---- Carrying folders over ---- */

/* Opens the parent folder of rel inside root, creating missing ones when create is set (mode 0755,
 * owned like root_fd), and returns the last component. */
static int open_parents(int root_fd, const char *rel, bool create, int *ret_fd, char **ret_last) {
        _cleanup_free_ char *copy = strdup(rel);
        char *slash, *p;
        int fd;

        if (!copy)
                return -ENOMEM;
        fd = fcntl(root_fd, F_DUPFD_CLOEXEC, 3);
        if (fd < 0)
                return -errno;
        p = copy;
        while ((slash = strchr(p, '/'))) {
                struct stat st;
                int next;

                *slash = 0;
                if (create && mkdirat(fd, p, 0755) == 0 && fstat(root_fd, &st) == 0)
                        (void) fchownat(fd, p, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
                next = openat(fd, p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                close(fd);
                if (next < 0)
                        return -errno;
                fd = next;
                p = slash + 1;
        }
        *ret_last = strdup(p);
        if (!*ret_last) {
                close(fd);
                return -ENOMEM;
        }
        *ret_fd = fd;
        return 0;
}

/* Moves old/rel to basedir/rel, if old/rel still exists. Idempotent, for recovery. */
static int carry_one(int old_fd, int new_fd, const char *rel) {
        _cleanup_free_ char *last_from = NULL, *last_to = NULL;
        _cleanup_close_ int from_fd = -1, to_fd = -1;
        struct stat st;
        int r;

        r = open_parents(old_fd, rel, false, &from_fd, &last_from);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        if (fstatat(from_fd, last_from, &st, AT_SYMLINK_NOFOLLOW) < 0)
                return errno == ENOENT ? 0 : -errno;
        r = open_parents(new_fd, rel, true, &to_fd, &last_to);
        if (r < 0)
                return r;
        /* The backup should not contain what it excluded; if it does, what was on disk wins. */
        r = rm_rf_at(to_fd, last_to);
        if (r < 0)
                return r;
        if (renameat(from_fd, last_from, to_fd, last_to) < 0)
                return -errno;
        (void) fsync(to_fd);
        (void) fsync(from_fd);
        return 0;
}

static int carry_all(const SwapPlan *p) {
        _cleanup_close_ int old_fd = -1, new_fd = -1;
        int r;

        r = open_dir_nofollow(p->old, &old_fd);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        r = open_dir_nofollow(p->basedir, &new_fd);
        if (r < 0)
                return r;
        STRV_FOREACH(c, p->carry) {
                r = carry_one(old_fd, new_fd, *c);
                if (r < 0)
                        return log_error_errno(r, "Cannot carry %s over into the restored %s: %m", *c, p->basedir);
        }
        return 0;
}

/* ---- Swap ---- */

/* Moves every entry of from into to, except the names in skip. Idempotent: what moved already is gone
 * from `from`. */
static int move_entries(const char *from, const char *to, const char *const *skip) {
        _cleanup_close_ int from_fd = -1, to_fd = -1;
        struct dirent *de;
        DIR *d;
        int r = 0;

        r = open_dir_nofollow(from, &from_fd);
        if (r < 0)
                return r == -ENOENT ? 0 : r;
        r = open_dir_nofollow(to, &to_fd);
        if (r < 0)
                return r;
        r = opendir_fd(from_fd, &d);
        if (r < 0)
                return r;
        while ((de = readdir(d))) {
                bool skipped = streq(de->d_name, ".") || streq(de->d_name, "..");

                for (size_t k = 0; skip && skip[k]; k++)
                        skipped = skipped || streq(de->d_name, skip[k]);
                if (skipped)
                        continue;
                if (renameat2(from_fd, de->d_name, to_fd, de->d_name, RENAME_NOREPLACE) < 0) {
                        r = -errno;
                        break;
                }
        }
        closedir(d);
        (void) fsync(from_fd);
        (void) fsync(to_fd);
        return r;
}

static const char *const in_place_own[] = { ".opbackup-staging", ".opbackup-old", NULL };

static int mkdir_old_in_place(const SwapPlan *p) {
        _cleanup_free_ char *name = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        r = open_parent(p->old, &fd, &name);
        if (r < 0)
                return r;
        if (mkdirat(fd, name, 0700) < 0 && errno != EEXIST)
                return -errno;
        /* The safety copy is the user's files: keep it the user's. */
        if (fstat(fd, &st) == 0)
                (void) fchownat(fd, name, st.st_uid, st.st_gid, AT_SYMLINK_NOFOLLOW);
        return 0;
}

static int swap_in_place(const SwapPlan *p, bool *ret_swapped, char **ret_error) {
        int r;

        r = mkdir_old_in_place(p);
        if (r >= 0)
                r = journal_write(p, "moving-out");
        if (r >= 0)
                r = move_entries(p->basedir, p->old, in_place_own);
        if (r < 0) {
                /* Put back what moved; nothing of the backup is in basedir yet. */
                (void) move_entries(p->old, p->basedir, NULL);
                (void) journal_write(p, "prepared");
                return asprintf(ret_error, "Cannot move the contents of %s aside: %s", p->basedir,
                                strerror(-r)) < 0 ? -ENOMEM : r;
        }
        test_pause_point("between-renames");
        /* The point of no return: basedir is empty but for staging and old. */
        *ret_swapped = true;
        r = journal_write(p, "moving-in");
        if (r >= 0)
                r = move_entries(p->staging, p->basedir, NULL);
        if (r >= 0)
                r = rm_tree(p->staging);
        test_pause_point("after-swap");
        if (r >= 0)
                r = journal_write(p, "carrying");
        if (r >= 0)
                r = carry_all(p);
        if (r >= 0)
                r = journal_write(p, "done");
        if (r < 0)
                return asprintf(ret_error, "The backup is being restored in place, but moving files failed (%s): "
                                "the daemon will finish it on its next start", strerror(-r)) < 0 ? -ENOMEM : r;
        return 0;
}

int swap_execute(const SwapPlan *p, bool *ret_swapped, char **ret_error) {
        int r;

        *ret_error = NULL;
        *ret_swapped = false;
        if (exists_nofollow(p->old))
                return asprintf(ret_error, "%s exists (left by an earlier restore with keep-previous?): move it "
                                "away and try again", p->old) < 0 ? -ENOMEM : -EEXIST;
        if (p->in_place)
                return swap_in_place(p, ret_swapped, ret_error);
        r = journal_write(p, "swapping");
        if (r < 0)
                return asprintf(ret_error, "Cannot write the restore journal %s: %s", p->journal,
                                strerror(-r)) < 0 ? -ENOMEM : r;
        r = rename_nofollow(p->basedir, p->old);
        if (r < 0) {
                (void) journal_write(p, "prepared");
                return asprintf(ret_error, "Cannot move %s aside: %s", p->basedir, strerror(-r)) < 0 ? -ENOMEM : r;
        }
        test_pause_point("between-renames");
        r = rename_nofollow(p->staging, p->basedir);
        if (r < 0) {
                int k = rename_nofollow(p->old, p->basedir);
                (void) journal_write(p, "prepared");
                return asprintf(ret_error, "Cannot move the restored tree into place: %s%s", strerror(-r),
                                k < 0 ? "; and moving the old basedir back failed too: see the journal" : "") < 0
                       ? -ENOMEM : r;
        }
        /* The point of no return: from here on, recovery goes forward. */
        *ret_swapped = true;
        test_pause_point("after-swap");
        r = journal_write(p, "carrying");
        if (r >= 0)
                r = carry_all(p);
        if (r >= 0)
                r = journal_write(p, "done");
        if (r < 0)
                return asprintf(ret_error, "The backup is restored, but carrying folders over from %s failed (%s): "
                                "the daemon will finish it on its next start", p->old, strerror(-r)) < 0 ? -ENOMEM : r;
        return 0;
}

int swap_finish(const SwapPlan *p, char **ret_error) {
        int r = 0;

        *ret_error = NULL;
        if (!p->keep_previous) {
                r = rm_tree(p->old);
                if (r < 0 && asprintf(ret_error, "Cannot remove %s: %s", p->old, strerror(-r)) < 0)
                        r = -ENOMEM;
        }
        (void) unlink(p->journal);
        return r;
}

int swap_abort(const SwapPlan *p) {
        int r = rm_tree(p->staging);
        (void) unlink(p->journal);
        return r;
}

int swap_recover(const char *basedir, char **ret_message) {
        _cleanup_(swap_plan_done) SwapPlan p = {}, expected = {};
        _cleanup_free_ char *state = NULL, *err = NULL;
        int r;

        *ret_message = NULL;
        r = swap_plan_init(&expected, basedir);
        if (r < 0)
                return r;
        r = journal_read(expected.journal, &p, &state);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (p.in_place) {
                swap_plan_done(&expected);
                r = swap_plan_init_in_place(&expected, basedir);
                if (r < 0)
                        return r;
        }
        /* A journal that names other paths than its own location implies is not ours to act on. */
        if (!streq(p.basedir, expected.basedir) || !streq(p.staging, expected.staging) || !streq(p.old, expected.old))
                return -EBADMSG;

        if (p.in_place && streq(state, "moving-out")) {
                (void) move_entries(p.old, p.basedir, NULL);
                (void) rm_tree(p.old);
                r = swap_abort(&p);
                return asprintf(ret_message, "An interrupted restore of %s was rolled back; the instance is as it "
                                "was before.", p.basedir) < 0 ? -ENOMEM : (r < 0 ? r : 1);
        }
        if (p.in_place && streq(state, "moving-in")) {
                r = move_entries(p.staging, p.basedir, NULL);
                if (r >= 0)
                        r = rm_tree(p.staging);
                if (r >= 0)
                        r = journal_write(&p, "carrying");
                if (r < 0)
                        return r;
                free(state);
                state = strdup("carrying");
                if (!state)
                        return -ENOMEM;
        }
        if (streq(state, "prepared") ||
            (streq(state, "swapping") && exists_nofollow(p.staging))) {
                /* Not swapped (or half): put the old basedir back if it moved, drop staging. */
                if (!exists_nofollow(p.basedir) && exists_nofollow(p.old))
                        (void) rename_nofollow(p.old, p.basedir);
                r = swap_abort(&p);
                return asprintf(ret_message, "An interrupted restore of %s was rolled back; the instance is as it "
                                "was before.", p.basedir) < 0 ? -ENOMEM : (r < 0 ? r : 1);
        }
        if (streq(state, "swapping") || streq(state, "carrying")) {
                r = journal_write(&p, "carrying");
                if (r >= 0)
                        r = carry_all(&p);
                if (r >= 0)
                        r = journal_write(&p, "done");
                if (r < 0)
                        return r;
        }
        r = swap_finish(&p, &err);
        if (asprintf(ret_message, "An interrupted restore of %s was completed%s%s.", p.basedir, err ? "; " : "",
                     strempty(err)) < 0)
                return -ENOMEM;
        return 1;
}
