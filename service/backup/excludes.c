/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <ini.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "backup/excludes.h"
#include "backup/hook-run.h"
#include "log.h"

bool plugin_name_is_valid(const char *s) {
        size_t n;

        if (isempty(s) || s[0] == '.')
                return false;
        n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-");
        return n == strlen(s) && n <= 128;
}

int exclude_path_normalize(const char *path, char **ret) {
        _cleanup_free_ char *out = NULL;
        size_t len = 0;

        if (isempty(path) || path[0] == '/' || strlen(path) > 4096)
                return -EINVAL;
        for (const char *p = path; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f || *p == '\\')
                        return -EINVAL;

        out = malloc(strlen(path) + 1);
        if (!out)
                return -ENOMEM;
        for (const char *p = path; *p;) {
                size_t n = strcspn(p, "/");

                if (n == 2 && strncmp(p, "..", 2) == 0)
                        return -EINVAL;
                if (n > 0 && !(n == 1 && p[0] == '.')) {
                        if (len > 0)
                                out[len++] = '/';
                        memcpy(out + len, p, n);
                        len += n;
                }
                p += n;
                p += strspn(p, "/");
        }
        out[len] = 0;
        /* Only "." (and "./", ".//.") may mean the whole folder; something that merely normalizes to
         * nothing cannot, but there is no such input left once "" and "/" are refused. */
        *ret = TAKE_PTR(out);
        return 0;
}

/* ---- declarative drop-ins ---- */

typedef struct DropinParse {
        const char *source;
        char *const *folder_excludes;
        const BackupCallbacks *cb;
        char **paths;
        int error;
} DropinParse;

/* "Exclude" → always; "Exclude.a+b" → when every listed id is excluded. */
static int section_applies(DropinParse *d, const char *section) {
        _cleanup_free_ char *ids = NULL;
        const char *rest;

        if (streq(section, "Exclude"))
                return 1;
        rest = startswith(section, "Exclude.");
        if (!rest || !*rest)
                return -EINVAL;
        ids = strdup(rest);
        if (!ids)
                return -ENOMEM;
        for (char *save = NULL, *id = strtok_r(ids, "+", &save); id; id = strtok_r(NULL, "+", &save)) {
                if (folder_id_from_string(id) == (FolderId) -1)
                        return -EINVAL;
                if (!strv_contains(d->folder_excludes, id))
                        return 0;
        }
        return 1;
}

static int dropin_handler(void *userdata, const char *section, const char *key, const char *value) {
        DropinParse *d = userdata;
        _cleanup_strv_free_ char **words = NULL;
        int r;

        r = section_applies(d, section);
        if (r == -ENOMEM) {
                d->error = r;
                return 0;
        }
        if (r < 0) {
                backup_log(d->cb, LOG_WARNING, "%s: ignoring section [%s]: not [Exclude] or [Exclude.ID+...] "
                           "with known folder ids", d->source, section);
                return 1;
        }
        if (!streq(key, "Paths")) {
                backup_log(d->cb, LOG_WARNING, "%s: ignoring unknown key %s= in [%s]", d->source, key, section);
                return 1;
        }
        if (r == 0)
                return 1;

        r = strv_split_words(value, &words);
        if (r < 0) {
                d->error = r;
                return 0;
        }
        STRV_FOREACH(w, words) {
                char *norm;

                if ((*w)[0] == '#')       /* the rest of the line is a comment */
                        break;
                r = exclude_path_normalize(*w, &norm);
                if (r == -ENOMEM) {
                        d->error = r;
                        return 0;
                }
                if (r < 0) {
                        backup_log(d->cb, LOG_WARNING, "%s: ignoring path \"%s\": it must stay inside the "
                                   "plugin's data folder (relative, no \"..\")", d->source, *w);
                        continue;
                }
                if (strv_length(d->paths) >= EXCLUDES_PATHS_MAX) {
                        free(norm);
                        backup_log(d->cb, LOG_WARNING, "%s: more than %u paths, ignoring the rest",
                                   d->source, EXCLUDES_PATHS_MAX);
                        return 1;
                }
                if (strv_consume(&d->paths, norm) < 0) {
                        d->error = -ENOMEM;
                        return 0;
                }
        }
        return 1;
}

/* inih reads lines of at most 200 bytes; a longer one turns into a confusing syntax error. */
static bool has_long_line(const char *text) {
        for (const char *p = text; *p;) {
                size_t n = strcspn(p, "\n");

                if (n >= 199)
                        return true;
                p += n;
                p += *p == '\n';
        }
        return false;
}

int exclude_dropin_parse(const char *text, const char *source, char *const *folder_excludes,
                         const BackupCallbacks *cb, char ***ret_paths) {
        DropinParse d = {
                .source = source,
                .folder_excludes = folder_excludes,
                .cb = cb,
        };
        int r;

        d.paths = calloc(1, sizeof(char *));
        if (!d.paths)
                return -ENOMEM;
        r = ini_parse_string(text, dropin_handler, &d);
        if (d.error < 0) {
                strv_free(d.paths);
                return d.error;
        }
        if (r != 0) {
                strv_free(d.paths);
                if (r == -2)
                        return -ENOMEM;
                backup_log(cb, LOG_WARNING, "%s line %d: syntax error%s; ignoring the file", source, r,
                           has_long_line(text) ? " (lines are limited to 200 characters: split long Paths= over "
                           "several lines)" : "");
                return -EBADMSG;
        }
        *ret_paths = d.paths;
        return 0;
}

/* ---- hook output ---- */

int exclude_hook_output_parse(const char *text, size_t size, char ***ret_paths, char **ret_error) {
        _cleanup_strv_free_ char **paths = NULL;
        json_tokener *tok;
        json_object *o;
        size_t end;

        paths = calloc(1, sizeof(char *));
        if (!paths)
                return -ENOMEM;
        if (strspn(text, " \t\r\n") == size) {
                *ret_paths = TAKE_PTR(paths);
                return 0;
        }

        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        /* Including the terminating NUL tells json-c that the input ends here ("null", "[1" complete). */
        o = json_tokener_parse_ex(tok, text, (int) size + 1);
        if (json_tokener_get_error(tok) != json_tokener_success) {
                if (ret_error)
                        (void) asprintf(ret_error, "invalid JSON: %s",
                                        json_tokener_get_error(tok) == json_tokener_continue ? "incomplete" :
                                        json_tokener_error_desc(json_tokener_get_error(tok)));
                json_object_put(o);
                json_tokener_free(tok);
                return -EBADMSG;
        }
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);
        if (end < size && strspn(text + end, " \t\r\n") != size - end) {
                json_object_put(o);
                if (ret_error)
                        *ret_error = strdup("trailing data after the JSON array");
                return -EBADMSG;
        }
        if (!json_object_is_type(o, json_type_array)) {
                json_object_put(o);
                if (ret_error)
                        *ret_error = strdup("not a JSON array");
                return -EBADMSG;
        }
        for (size_t i = 0; i < json_object_array_length(o); i++) {
                json_object *e = json_object_array_get_idx(o, i);
                const char *s;

                if (!json_object_is_type(e, json_type_string) ||
                    strlen(s = json_object_get_string(e)) != (size_t) json_object_get_string_len(e)) {
                        json_object_put(o);
                        if (ret_error)
                                *ret_error = strdup("array elements must be strings");
                        return -EBADMSG;
                }
                if (i >= EXCLUDES_PATHS_MAX) {
                        json_object_put(o);
                        if (ret_error)
                                (void) asprintf(ret_error, "more than %u paths", EXCLUDES_PATHS_MAX);
                        return -EBADMSG;
                }
                if (strv_extend(&paths, s) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
        }
        json_object_put(o);
        *ret_paths = TAKE_PTR(paths);
        return 0;
}

/* ---- accumulation ---- */

typedef struct Accumulator {
        char **current;        /* what hooks get on stdin: folder ids + "data/<plugin>[/<path>]" */
        char **result;         /* only the "data/..." entries */
        size_t n_result;
        const BackupCallbacks *cb;
} Accumulator;

/* Adds one source's normalized paths for `plugin`: "" (the whole folder) wins over everything else,
 * like OctoPrint's `if "." in additional`. */
static int accumulate(Accumulator *a, const char *plugin, char *const *paths) {
        bool whole = strv_contains(paths, "");

        STRV_FOREACH(p, paths) {
                _cleanup_free_ char *e = NULL;
                int r;

                if (whole && **p)
                        continue;
                if (asprintf(&e, "data/%s%s%s", plugin, **p ? "/" : "", *p) < 0)
                        return -ENOMEM;
                if (strv_contains(a->result, e))
                        continue;
                if (a->n_result >= EXCLUDES_TOTAL_MAX) {
                        backup_log(a->cb, LOG_WARNING, "More than %u paths excluded by plugins: ignoring the rest, "
                                   "from data/%s/ on", EXCLUDES_TOTAL_MAX, plugin);
                        return 0;
                }
                r = strv_extend(&a->result, e);
                if (r < 0)
                        return r;
                a->n_result++;
                r = strv_consume(&a->current, TAKE_PTR(e));
                if (r < 0)
                        return r;
                if (whole)
                        break;
        }
        return 0;
}

static int normalize_all(char *const *in, const char *source, const BackupCallbacks *cb, char ***ret) {
        _cleanup_strv_free_ char **out = calloc(1, sizeof(char *));

        if (!out)
                return -ENOMEM;
        STRV_FOREACH(p, in) {
                char *n;
                int r = exclude_path_normalize(*p, &n);

                if (r == -ENOMEM)
                        return r;
                if (r < 0) {
                        backup_log(cb, LOG_WARNING, "%s: ignoring path \"%s\": it must stay inside the plugin's "
                                   "data folder (relative, no \"..\")", source, *p);
                        continue;
                }
                if (strv_consume(&out, n) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(out);
        return 0;
}

static int cmp_strp(const void *a, const void *b) {
        return strcmp(*(char *const *) a, *(char *const *) b);
}

/* Names in dirfd that are valid plugin names once `suffix` is cut off (suffix "" = any), sorted. */
static int list_plugins(int dirfd, const char *suffix, bool want_dirs, char ***ret) {
        _cleanup_strv_free_ char **l = calloc(1, sizeof(char *));
        size_t n_l = 0;
        DIR *d;
        int r;

        if (!l)
                return -ENOMEM;
        r = opendir_fd(dirfd, &d);
        if (r < 0)
                return r;
        for (struct dirent *de; (de = readdir(d));) {
                _cleanup_free_ char *name = NULL;
                size_t n = strlen(de->d_name);

                if (!endswith(de->d_name, suffix) || n == strlen(suffix))
                        continue;
                if (want_dirs && de->d_type != DT_DIR && de->d_type != DT_UNKNOWN)
                        continue;
                name = strndup(de->d_name, n - strlen(suffix));
                if (!name) {
                        closedir(d);
                        return -ENOMEM;
                }
                if (!plugin_name_is_valid(name))
                        continue;
                if (n_l >= 100000)      /* plugins, not files: more is not a real installation */
                        break;
                if (strv_consume(&l, TAKE_PTR(name)) < 0) {
                        closedir(d);
                        return -ENOMEM;
                }
                n_l++;
        }
        closedir(d);
        qsort(l, n_l, sizeof(char *), cmp_strp);
        *ret = TAKE_PTR(l);
        return 0;
}

/* Reads a small regular file without following a symlink at its last component. */
static int read_small_file_at(int dirfd, const char *name, char **ret) {
        _cleanup_close_ int fd = -1;
        struct stat st;

        fd = openat(dirfd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        return read_full_fd(fd, EXCLUDES_DROPIN_SIZE_MAX, ret, NULL);
}

static int apply_dropin(Accumulator *a, const ExcludeRequest *r, const BackupCallbacks *cb, const char *plugin,
                        int dirfd, const char *filename, const char *source) {
        _cleanup_free_ char *text = NULL;
        _cleanup_strv_free_ char **paths = NULL;
        int k;

        k = read_small_file_at(dirfd, filename, &text);
        if (k == -ENOENT)
                return 0;
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                backup_log(cb, LOG_WARNING, "Ignoring %s: %s", source,
                           k == -EFBIG ? "larger than 64 KiB" : k == -EBADFD || k == -ELOOP ?
                           "not a regular file" : strerror(-k));
                return 0;
        }
        k = exclude_dropin_parse(text, source, r->folder_excludes, cb, &paths);
        if (k == -ENOMEM)
                return k;
        if (k < 0)
                return 0;
        if (paths[0])
                backup_log(cb, LOG_INFO, "%s excludes %zu path(s) of data/%s/", source, strv_length(paths), plugin);
        return accumulate(a, plugin, paths);
}

static int admin_dropins(Accumulator *a, const ExcludeRequest *r, const BackupCallbacks *cb) {
        _cleanup_strv_free_ char **plugins = NULL;
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int fd = -1;
        int k;

        if (!r->config_dir)
                return 0;
        if (asprintf(&dir, "%s/excludes.d", r->config_dir) < 0)
                return -ENOMEM;
        fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
                if (errno != ENOENT)
                        backup_log(cb, LOG_WARNING, "Cannot read %s: %m", dir);
                return 0;
        }
        k = list_plugins(fd, ".conf", false, &plugins);
        if (k < 0)
                return k == -ENOMEM ? k : 0;
        STRV_FOREACH(p, plugins) {
                _cleanup_free_ char *file = NULL, *source = NULL;

                if (asprintf(&file, "%s.conf", *p) < 0 || asprintf(&source, "%s/%s", dir, file) < 0)
                        return -ENOMEM;
                k = apply_dropin(a, r, cb, *p, fd, file, source);
                if (k < 0)
                        return k;
        }
        return 0;
}

static int plugin_dropins(Accumulator *a, const ExcludeRequest *r, const BackupCallbacks *cb) {
        _cleanup_strv_free_ char **plugins = NULL;
        _cleanup_close_ int fd = -1;
        int k;

        if (!r->data_dir)
                return 0;
        fd = open(r->data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return 0;
        k = list_plugins(fd, "", true, &plugins);
        if (k < 0)
                return k == -ENOMEM ? k : 0;
        STRV_FOREACH(p, plugins) {
                _cleanup_free_ char *source = NULL;
                _cleanup_close_ int pfd = -1;

                /* A symlinked plugin folder is not followed for this: the file must be the plugin's. */
                pfd = openat(fd, *p, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (pfd < 0)
                        continue;
                if (asprintf(&source, "%s/%s/.opbackup-excludes", r->data_dir, *p) < 0)
                        return -ENOMEM;
                k = apply_dropin(a, r, cb, *p, pfd, ".opbackup-excludes", source);
                if (k < 0)
                        return k;
        }
        return 0;
}

/* ---- executable hooks ---- */

/* Hooks and their folders must be root's, or the worker user's own (then the hook cannot run as anybody
 * it does not already run as), and not writable by group or others: a hook runs for every instance. */
static bool hook_stat_trusted(const struct stat *st) {
        return (st->st_uid == 0 || st->st_uid == geteuid()) && (st->st_mode & (S_IWGRP | S_IWOTH)) == 0;
}

static void log_hook_stderr(const BackupCallbacks *cb, const char *plugin, const char *err, int level) {
        unsigned lines = 0;

        for (const char *p = err; p && *p;) {
                size_t n = strcspn(p, "\n");

                if (n > 0 && lines++ < 20)
                        backup_log(cb, level, "Hook %s: %.*s", plugin, (int) (n > 500 ? 500 : n), p);
                p += n;
                p += *p == '\n';
        }
}

static void json_object_putp(json_object **o) {
        json_object_put(*o);
}

static char *excludes_to_json(char *const *l) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        STRV_FOREACH(s, l)
                if (json_object_array_add(a, json_object_new_string(*s)) < 0)
                        return NULL;
        return strdup(json_object_to_json_string_ext(a, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
}

static int hook_env(const ExcludeRequest *r, const char *plugin, char ***ret) {
        _cleanup_strv_free_ char **env = calloc(1, sizeof(char *));
        char *s;

#define ADD(...)                                                        \
        do {                                                            \
                if (asprintf(&s, __VA_ARGS__) < 0)                      \
                        return -ENOMEM;                                 \
                if (strv_consume(&env, s) < 0)                          \
                        return -ENOMEM;                                 \
        } while (0)

        if (!env)
                return -ENOMEM;
        ADD("PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin");
        ADD("LANG=C.UTF-8");
        if (getenv("HOME"))
                ADD("HOME=%s", getenv("HOME"));
        ADD("OPBACKUP_INSTANCE=%s", strempty(r->instance));
        ADD("OPBACKUP_BASEDIR=%s", strempty(r->basedir));
        ADD("OPBACKUP_PLUGIN=%s", plugin);
        ADD("OPBACKUP_PLUGIN_DATA_FOLDER=%s/%s", strempty(r->data_dir), plugin);
#undef ADD
        *ret = TAKE_PTR(env);
        return 0;
}

static int apply_hook(Accumulator *a, const ExcludeRequest *r, const BackupCallbacks *cb, const char *plugin,
                      const char *path) {
        _cleanup_(hook_result_done) HookResult h = {};
        _cleanup_strv_free_ char **env = NULL, **raw = NULL, **paths = NULL;
        _cleanup_free_ char *input = NULL, *perr = NULL, *source = NULL;
        uint64_t timeout = r->hook_timeout_usec ?: EXCLUDES_HOOK_TIMEOUT_USEC;
        int k;

        input = excludes_to_json(a->current);
        if (!input || hook_env(r, plugin, &env) < 0)
                return -ENOMEM;
        k = hook_run(path, env, input, timeout, EXCLUDES_HOOK_OUTPUT_MAX, &h);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                backup_log(cb, LOG_WARNING, "Cannot run hook %s: %s; ignoring it", path, strerror(-k));
                return 0;
        }
        if (h.timed_out) {
                backup_log(cb, LOG_WARNING, "Hook %s did not finish within %.1f s: killed, ignoring it", path,
                           timeout / 1e6);
                return 0;
        }
        if (h.too_large) {
                backup_log(cb, LOG_WARNING, "Hook %s printed more than %u KiB: killed, ignoring it", path,
                           EXCLUDES_HOOK_OUTPUT_MAX / 1024);
                return 0;
        }
        if (!WIFEXITED(h.status) || WEXITSTATUS(h.status) != 0) {
                log_hook_stderr(cb, plugin, h.err, LOG_WARNING);
                if (WIFEXITED(h.status))
                        backup_log(cb, LOG_WARNING, "Hook %s failed with exit status %d; ignoring it", path,
                                   WEXITSTATUS(h.status));
                else
                        backup_log(cb, LOG_WARNING, "Hook %s was killed by signal %s; ignoring it", path,
                                   strsignal(WTERMSIG(h.status)));
                return 0;
        }
        log_hook_stderr(cb, plugin, h.err, LOG_INFO);
        k = exclude_hook_output_parse(h.out ?: "", h.out_size, &raw, &perr);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                backup_log(cb, LOG_WARNING, "Hook %s printed no JSON array of paths (%s); ignoring it", path,
                           strempty(perr));
                return 0;
        }
        if (asprintf(&source, "Hook %s", path) < 0)
                return -ENOMEM;
        k = normalize_all(raw, source, cb, &paths);
        if (k < 0)
                return k;
        if (paths[0])
                backup_log(cb, LOG_INFO, "Hook %s excludes %zu path(s) of data/%s/", path, strv_length(paths), plugin);
        return accumulate(a, plugin, paths);
}

static int hooks(Accumulator *a, const ExcludeRequest *r, const BackupCallbacks *cb) {
        _cleanup_strv_free_ char **plugins = NULL;
        _cleanup_free_ char *dir = NULL;
        _cleanup_close_ int hfd = -1, fd = -1;
        struct stat st;
        int k;

        if (!r->config_dir)
                return 0;
        if (asprintf(&dir, "%s/hooks/additional-excludes.d", r->config_dir) < 0)
                return -ENOMEM;
        hfd = open(r->config_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (hfd >= 0) {
                int t = openat(hfd, "hooks", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                close(hfd);
                hfd = t;
        }
        if (hfd >= 0)
                fd = openat(hfd, "additional-excludes.d", O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd < 0) {
                if (errno != ENOENT)
                        backup_log(cb, LOG_WARNING, "Cannot open %s: %m; running no hooks", dir);
                return 0;
        }
        if (fstat(hfd, &st) < 0 || !hook_stat_trusted(&st) || fstat(fd, &st) < 0 || !hook_stat_trusted(&st)) {
                backup_log(cb, LOG_WARNING, "Not running hooks in %s: it and its parent must belong to root and "
                           "not be writable by group or others", dir);
                return 0;
        }
        k = list_plugins(fd, "", false, &plugins);
        if (k < 0)
                return k == -ENOMEM ? k : 0;
        STRV_FOREACH(p, plugins) {
                _cleanup_free_ char *path = NULL;

                if (asprintf(&path, "%s/%s", dir, *p) < 0)
                        return -ENOMEM;
                if (fstatat(fd, *p, &st, 0) < 0 || !S_ISREG(st.st_mode) || !(st.st_mode & S_IXUSR))
                        continue;     /* like run-parts: what is not an executable file is not a hook */
                if (!hook_stat_trusted(&st)) {
                        backup_log(cb, LOG_WARNING, "Not running hook %s: it must belong to root and not be "
                                   "writable by group or others", path);
                        continue;
                }
                k = backup_progress(cb, "preparing", 0, 0);
                if (k < 0)
                        return k;
                k = apply_hook(a, r, cb, *p, path);
                if (k < 0)
                        return k;
        }
        return 0;
}

int additional_excludes_compute(const ExcludeRequest *r, const BackupCallbacks *cb, char ***ret) {
        _cleanup_strv_free_ char **current = NULL, **result = NULL;
        Accumulator a;
        int k;

        current = strv_copy(r->folder_excludes);
        result = calloc(1, sizeof(char *));
        if (!current || !result)
                return -ENOMEM;
        a = (Accumulator) { .current = TAKE_PTR(current), .result = TAKE_PTR(result), .cb = cb };

        k = admin_dropins(&a, r, cb);
        if (k >= 0)
                k = plugin_dropins(&a, r, cb);
        if (k >= 0)
                k = hooks(&a, r, cb);
        strv_free(a.current);
        if (k < 0) {
                strv_free(a.result);
                return k;
        }
        *ret = a.result;
        return 0;
}
