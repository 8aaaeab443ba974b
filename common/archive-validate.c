/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <syslog.h>

#include "folders.h"
#include "pyjson.h"
#include "archive-validate.h"
#include "util.h"
#include "version.h"
#include "zip-directory.h"

#define METADATA_SIZE_MAX (64U * 1024U)
#define PLUGIN_LIST_SIZE_MAX (1024U * 1024U)
#define METADATA_EXCLUDES_MAX 64U
#define COMPONENT_MAX 255U
#define MESSAGE_NAME_MAX 160U
#define JSON_DEPTH_MAX 16
#define MIB (1024ULL * 1024ULL)

#define REFUSE ": refusing to restore this backup"

/* ---- messages ---- */

char *archive_name_for_message(const char *name) {
        size_t n = strlen(name), o = 0;
        char *m = malloc(MESSAGE_NAME_MAX + 8);

        if (!m)
                return NULL;
        for (size_t i = 0; i < n;) {
                unsigned char c = (unsigned char) name[i];
                char unit[8] = "";
                size_t k = 1, ul;

                if (c >= 0x80) {
                        /* A whole UTF-8 character, if it is one. */
                        k = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : 2;
                        if (i + k <= n) {
                                memcpy(unit, name + i, k);
                                unit[k] = 0;
                        }
                        if (!unit[0] || !utf8_is_valid(unit)) {
                                k = 1;
                                snprintf(unit, sizeof(unit), "\\x%02x", c);
                        }
                } else if (c < 0x20 || c == 0x7f)
                        snprintf(unit, sizeof(unit), "\\x%02x", c);
                else
                        unit[0] = (char) c;
                ul = strlen(unit);
                if (o + ul > MESSAGE_NAME_MAX) {
                        memcpy(m + o, "\xe2\x80\xa6", 3);     /* … */
                        o += 3;
                        break;
                }
                memcpy(m + o, unit, ul);
                o += ul;
                i += k;
        }
        m[o] = 0;
        return m;
}

/* "Backup entry '<name>' <problem>: refusing to restore this backup". Returns -EBADMSG (or -ENOMEM). */
int archive_refuse_entry(char **ret_error, const char *name, const char *problem) {
        _cleanup_free_ char *shown = archive_name_for_message(name);

        if (!shown || asprintf(ret_error, "Backup entry '%s' %s" REFUSE, shown, problem) < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return -EBADMSG;
}

static int refuse(char **ret_error, int error, const char *format, ...) _printf_(3, 4);
static int refuse(char **ret_error, int error, const char *format, ...) {
        va_list ap;
        int k;

        va_start(ap, format);
        k = vasprintf(ret_error, format, ap);
        va_end(ap);
        if (k < 0) {
                *ret_error = NULL;
                return -ENOMEM;
        }
        return error;
}

/* ---- one entry ---- */

/* NULL if the name is safe (opbackupd(8), RESTORE, step 3), else what is wrong with it. */
static const char *name_problem(const char *name) {
        size_t len = strlen(name);
        int depth = 0;
        bool dotdot = false;

        if (len == 0)
                return "has an empty name";
        if (len > RESTORE_NAME_MAX)
                return "is longer than 4096 bytes";
        for (const char *p = name; *p; p++) {
                unsigned char c = (unsigned char) *p;

                if (c < 0x20 || c == 0x7f)
                        return "contains a control character";
                if (c == '\\')
                        return "contains a backslash (a Windows path separator)";
        }
        if (!utf8_is_valid(name))
                return "is not valid UTF-8";
        if (name[0] == '/')
                return "is an absolute path";
        if (((name[0] | 0x20) >= 'a' && (name[0] | 0x20) <= 'z') && name[1] == ':')
                return "starts with a drive letter";

        for (const char *s = name; *s;) {
                const char *e = strchrnul(s, '/');
                size_t l = (size_t) (e - s);

                if (l == 0)
                        return "has an empty path component";
                if (l == 1 && s[0] == '.')
                        return "has a '.' path component";
                if (l == 2 && s[0] == '.' && s[1] == '.') {
                        dotdot = true;
                        /* Back at the archive's top level or above: out of basedir/. */
                        if (--depth < 1)
                                return "leaves basedir";
                } else
                        depth++;
                if (l > COMPONENT_MAX)
                        return "has a path component longer than 255 bytes";
                if (!*e)
                        break;
                s = e + 1;      /* a trailing '/' ends the loop here: a directory entry */
        }
        if (dotdot)
                return "has a '..' path component";
        return NULL;
}

/* Where the entry goes. Outside basedir/ only metadata.json and plugin_list.json belong in a backup.
 * Other top-level "*.json" files are accepted and ignored with a warning: OctoPrint's format is
 * "metadata files at the top, the instance under basedir/", and a later OctoPrint may add a metadata
 * file there; such a file is never extracted, so accepting it costs nothing. Anything else outside
 * basedir/ (folders, other files, "basedir" without a slash) is refused: it is not from OctoPrint. */
static const char *classify(ArchiveItem *it) {
        size_t len = strlen(it->name);
        bool dir = it->name[len - 1] == '/';
        const char *rest = startswith(it->name, "basedir/");

        if (rest) {
                it->path = rest;
                it->path_len = strlen(rest) - dir;
                it->kind = !*rest ? ITEM_ROOT : dir ? ITEM_DIR : ITEM_FILE;
        } else if (streq(it->name, "metadata.json"))
                it->kind = ITEM_METADATA;
        else if (streq(it->name, "plugin_list.json"))
                it->kind = ITEM_PLUGIN_LIST;
        else if (!strchr(it->name, '/') && endswith(it->name, ".json"))
                it->kind = ITEM_IGNORED;
        else
                return "is outside basedir/ (a backup holds only metadata.json, plugin_list.json and basedir/...)";
        return NULL;
}

static const char *method_name(int32_t m) {
        switch (m) {
        case 1: return "shrink";
        case 6: return "implode";
        case 9: return "deflate64";
        case 12: return "bzip2";
        case 14: return "LZMA";
        case 93: return "zstd";
        case 95: return "xz";
        case 98: return "PPMd";
        default: return "unknown";
        }
}

/* Type (from the Unix mode in the external attributes, when the creator was Unix), encryption,
 * compression method. buf holds formatted problems. */
static const char *entry_problem(zip_t *z, const zip_stat_t *st, ArchiveItem *it, char *buf, size_t buf_size) {
        bool dir_name = it->name[strlen(it->name) - 1] == '/';
        zip_uint8_t opsys;
        zip_uint32_t attr;

        if (st->encryption_method != ZIP_EM_NONE)
                return "is encrypted (OctoPrint backups never are)";
        if (st->comp_method != ZIP_CM_STORE && st->comp_method != ZIP_CM_DEFLATE) {
                snprintf(buf, buf_size, "uses compression method %d (%s); only stored and deflated entries can "
                         "be restored", (int) st->comp_method, method_name(st->comp_method));
                return buf;
        }
        if (dir_name && st->size > 0)
                return "is a directory entry with data";
        if (zip_file_get_external_attributes(z, it->index, 0, &opsys, &attr) < 0)
                return "has unreadable attributes";
        if (opsys == ZIP_OPSYS_UNIX) {
                mode_t m = (mode_t) (attr >> 16);

                switch (m & S_IFMT) {
                case 0:                 /* no type: by name, as for other systems */
                        break;
                case S_IFREG:
                        if (dir_name)
                                return "is a directory entry with a regular file's mode";
                        break;
                case S_IFDIR:
                        if (!dir_name)
                                return "has a directory's mode but no trailing '/'";
                        break;
                case S_IFLNK:
                        return "is a symbolic link";
                case S_IFCHR:
                        return "is a character device";
                case S_IFBLK:
                        return "is a block device";
                case S_IFIFO:
                        return "is a FIFO";
                case S_IFSOCK:
                        return "is a socket";
                default:
                        return "has an unknown file type";
                }
                if (m & 07777) {
                        it->has_mode = true;
                        it->mode = m & 07777;
                }
        }
        return NULL;
}

static int scan_entry(ArchivePlan *p, zip_uint64_t i, char **ret_error) {
        const zip_uint64_t need = ZIP_STAT_NAME | ZIP_STAT_SIZE | ZIP_STAT_COMP_SIZE | ZIP_STAT_CRC |
                ZIP_STAT_COMP_METHOD | ZIP_STAT_ENCRYPTION_METHOD;
        ArchiveItem *it = &p->items[i];
        const char *problem;
        char buf[160];
        zip_stat_t st;

        zip_stat_init(&st);
        /* Raw names: what is checked is exactly what is used to create files. */
        if (zip_stat_index(p->zip, i, ZIP_FL_ENC_RAW, &st) < 0 || (st.valid & need) != need)
                return refuse(ret_error, -EBADMSG, "The backup is damaged: entry %llu cannot be read (%s)",
                              (unsigned long long) i, zip_strerror(p->zip));
        *it = (ArchiveItem) {
                .name = st.name,
                .index = i,
                .size = st.size,
                .comp_size = st.comp_size,
                .crc = st.crc,
                .deflated = st.comp_method == ZIP_CM_DEFLATE,
                .has_mtime = st.valid & ZIP_STAT_MTIME,
                .mtime = (int64_t) st.mtime,
        };
        problem = name_problem(st.name);
        if (!problem)
                problem = classify(it);
        if (!problem)
                problem = entry_problem(p->zip, &st, it, buf, sizeof(buf));
        if (problem)
                return archive_refuse_entry(ret_error, st.name, problem);

        /* Duplicates: the last one wins, as in CPython's zipfile (OctoPrint reads with it). */
        if (it->kind == ITEM_METADATA)
                p->metadata = it;
        else if (it->kind == ITEM_PLUGIN_LIST)
                p->plugin_list = it;
        else if (it->kind == ITEM_IGNORED) {
                _cleanup_free_ char *shown = archive_name_for_message(st.name);
                char *w;

                if (!shown || asprintf(&w, "Ignoring backup entry '%s': it is not part of an OctoPrint backup",
                                       shown) < 0 || strv_consume(&p->warnings, w) < 0)
                        return -ENOMEM;
        }
        return 0;
}

/* ---- all entries together ---- */

/* Path order with '/' below every other byte (control characters are refused before): "a", "a/b",
 * "a/c", "a-b". So everything inside a path follows the path itself directly. Then archive order. */
static int item_cmp(const void *x, const void *y) {
        const ArchiveItem *a = *(ArchiveItem *const *) x, *b = *(ArchiveItem *const *) y;
        size_t n = a->path_len < b->path_len ? a->path_len : b->path_len;

        for (size_t k = 0; k < n; k++) {
                int ca = (unsigned char) a->path[k], cb = (unsigned char) b->path[k];

                if (ca != cb)
                        return (ca == '/' ? 1 : ca) - (cb == '/' ? 1 : cb);
        }
        if (a->path_len != b->path_len)
                return a->path_len < b->path_len ? -1 : 1;
        return a->index < b->index ? -1 : a->index > b->index ? 1 : 0;
}

static bool same_path(const ArchiveItem *a, const ArchiveItem *b) {
        return a->path_len == b->path_len && memcmp(a->path, b->path, a->path_len) == 0;
}

static int clash(char **ret_error, const ArchiveItem *file, const ArchiveItem *other) {
        _cleanup_free_ char *a = archive_name_for_message(file->name), *b = archive_name_for_message(other->name);

        if (!a || !b)
                return -ENOMEM;
        return refuse(ret_error, -EBADMSG, "Backup entry '%s' is a file, but entry '%s' needs it to be a folder"
                      REFUSE, a, b);
}

/* Marks duplicates as superseded and refuses a path that is a file and a folder. O(n log n). */
static int check_paths(ArchivePlan *p, char **ret_error) {
        _cleanup_free_ ArchiveItem **v = NULL;
        size_t n = 0;

        v = calloc(p->n_items ?: 1, sizeof(ArchiveItem *));
        if (!v)
                return -ENOMEM;
        for (size_t i = 0; i < p->n_items; i++)
                if (p->items[i].kind == ITEM_FILE || p->items[i].kind == ITEM_DIR)
                        v[n++] = &p->items[i];
        qsort(v, n, sizeof(ArchiveItem *), item_cmp);

        for (size_t g = 0, e; g < n; g = e) {
                const ArchiveItem *file = NULL, *dir = NULL;

                for (e = g; e < n && same_path(v[g], v[e]); e++) {
                        if (v[e]->kind == ITEM_FILE)
                                file = v[e];
                        else
                                dir = v[e];
                        if (e > g)
                                v[e - 1]->superseded = true;
                }
                if (file && dir)
                        return clash(ret_error, file, dir);
                if (file && e < n && v[e]->path_len > file->path_len &&
                    memcmp(v[e]->path, file->path, file->path_len) == 0 && v[e]->path[file->path_len] == '/')
                        return clash(ret_error, file, v[e]);
        }
        return 0;
}

static int open_zip(int fd, zip_t **ret, char **ret_error) {
        int flags = ZIP_RDONLY | ZIP_CHECKCONS;

        for (;;) {
                zip_error_t ze;
                zip_t *z;
                int dfd, zerr = 0, r;

                dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
                if (dfd < 0)
                        return refuse(ret_error, -errno, "Cannot read the backup: %m");
                z = zip_fdopen(dfd, flags, &zerr);
                if (z) {
                        *ret = z;
                        return 0;
                }
                close(dfd);
                /* ZIP_CHECKCONS also refuses duplicate names, which OctoPrint's own backups have (it
                 * writes timelapse/tmp twice). Without it libzip still checks the central directory's
                 * bounds; names are checked here, sizes and CRCs while extracting. */
                if (zerr == ZIP_ER_EXISTS && (flags & ZIP_CHECKCONS)) {
                        flags &= ~ZIP_CHECKCONS;
                        continue;
                }
                if (zerr == ZIP_ER_MEMORY)
                        return -ENOMEM;
                zip_error_init_with_code(&ze, zerr);
                r = refuse(ret_error, zerr == ZIP_ER_READ || zerr == ZIP_ER_SEEK ? -EIO : -EBADMSG,
                           "The backup is not a readable zip archive (%s): it is truncated, damaged or not a "
                           "backup at all", zip_error_strerror(&ze));
                zip_error_fini(&ze);
                return r;
        }
}

/* The names as stored, which libzip does not show: a NUL byte inside one (libzip shows a space there,
 * CPython's zipfile ends the name at it, so OctoPrint would restore another file than opbackup). And the
 * directory must hold as many entries as libzip found. */
static int check_raw_entry(const ZipDirectoryEntry *e, void *userdata) {
        char **ret_error = userdata;
        const char *nul = memchr(e->name, 0, e->name_len);
        _cleanup_free_ char *prefix = NULL;

        if (!nul)
                return 0;
        prefix = strndup(e->name, (size_t) (nul - e->name));
        if (!prefix)
                return -ENOMEM;
        {
                _cleanup_free_ char *shown = archive_name_for_message(prefix);

                if (!shown)
                        return -ENOMEM;
                return refuse(ret_error, -EBADMSG, "Backup entry '%s\\x00\xe2\x80\xa6' contains a NUL byte (CPython's "
                              "zipfile, which OctoPrint restores with, would read another name)" REFUSE, shown);
        }
}

static int check_raw_names(int fd, uint64_t n_entries, char **ret_error) {
        ZipDirectory d;
        int r;

        r = zip_directory_find(fd, &d, NULL);
        if (r == -EBADMSG || (r >= 0 && d.n_entries != n_entries))
                return refuse(ret_error, -EBADMSG, "The backup's central directory is damaged: it is not a "
                              "readable zip archive");
        if (r < 0)
                return refuse(ret_error, r, "Cannot read the backup: %s", strerror(-r));
        r = zip_directory_foreach(fd, &d, check_raw_entry, ret_error);
        if (r == -EBADMSG && !*ret_error)
                return refuse(ret_error, -EBADMSG, "The backup's central directory is damaged: it is not a "
                              "readable zip archive");
        if (r < 0 && !*ret_error && r != -ENOMEM)
                return refuse(ret_error, r, "Cannot read the backup: %s", strerror(-r));
        return r;
}

void archive_plan_done(ArchivePlan *p) {
        if (p->zip)
                zip_discard(p->zip);
        free(p->items);
        strv_free(p->warnings);
        *p = (ArchivePlan) {};
}

int archive_plan_open(int zip_fd, uint64_t max_entries, ArchivePlan *ret, char **ret_error) {
        _cleanup_(archive_plan_done) ArchivePlan p = {};
        struct stat st;
        zip_int64_t n;
        int r;

        if (fstat(zip_fd, &st) < 0)
                return refuse(ret_error, -errno, "Cannot read the backup: %m");
        if (!S_ISREG(st.st_mode))
                return refuse(ret_error, -EBADMSG, "The backup is not a regular file");
        if (st.st_size == 0)
                return refuse(ret_error, -EBADMSG, "The backup file is empty: it is not a zip archive");
        r = open_zip(zip_fd, &p.zip, ret_error);
        if (r < 0)
                return r;

        n = zip_get_num_entries(p.zip, 0);
        if (n <= 0)
                return refuse(ret_error, -EBADMSG, "The backup contains no entries: not an OctoPrint backup");
        if ((uint64_t) n > max_entries)
                return refuse(ret_error, -EBADMSG, "The backup has %llu entries, more than the %llu a restore "
                              "accepts" REFUSE, (unsigned long long) n, (unsigned long long) max_entries);
        r = check_raw_names(zip_fd, (uint64_t) n, ret_error);
        if (r < 0)
                return r;
        p.items = calloc((size_t) n, sizeof(ArchiveItem));
        if (!p.items)
                return -ENOMEM;
        p.n_items = (size_t) n;
        for (zip_uint64_t i = 0; i < (zip_uint64_t) n; i++) {
                r = scan_entry(&p, i, ret_error);
                if (r < 0)
                        return r;
        }
        r = check_paths(&p, ret_error);
        if (r < 0)
                return r;

        for (size_t i = 0; i < p.n_items; i++) {
                const ArchiveItem *it = &p.items[i];

                if (it->kind != ITEM_FILE || it->superseded)
                        continue;
                p.n_files++;
                p.total_size = it->size > UINT64_MAX - p.total_size ? UINT64_MAX : p.total_size + it->size;
                if (it->path_len == 11 && memcmp(it->path, "config.yaml", 11) == 0)
                        p.has_config = true;
                else if (it->path_len == 10 && memcmp(it->path, "users.yaml", 10) == 0)
                        p.has_users = true;
        }
        *ret = p;
        p = (ArchivePlan) {};
        return 0;
}

/* ---- reading entries ---- */

int archive_stream_error(char **ret_error, const ArchiveItem *it, zip_error_t *ze) {
        int code = zip_error_code_zip(ze);

        if (code == ZIP_ER_MEMORY)
                return -ENOMEM;
        if (code == ZIP_ER_CRC)
                return archive_refuse_entry(ret_error, it->name, "fails its CRC check (the backup is damaged)");
        if (code == ZIP_ER_READ || code == ZIP_ER_SEEK) {
                int r = archive_refuse_entry(ret_error, it->name, "cannot be read from the backup file");
                return r == -ENOMEM ? r : -EIO;
        }
        {
                char buf[200];

                snprintf(buf, sizeof(buf), "is damaged (%s)", zip_error_strerror(ze));
                return archive_refuse_entry(ret_error, it->name, buf);
        }
}

int archive_item_stream(zip_t *zip, const ArchiveItem *it, void *buf, size_t buf_size, ArchiveSink sink,
                        void *userdata, char **ret_error) {
        zip_file_t *f;
        uint64_t done = 0;
        int r = 0;

        f = zip_fopen_index(zip, it->index, 0);
        if (!f)
                return archive_stream_error(ret_error, it, zip_get_error(zip));
        for (;;) {
                /* Reading to the end (k == 0) is what makes libzip compare the CRC. */
                zip_int64_t k = zip_fread(f, buf, buf_size);

                if (k < 0) {
                        r = archive_stream_error(ret_error, it, zip_file_get_error(f));
                        break;
                }
                if (k == 0)
                        break;
                if ((uint64_t) k > it->size - done) {
                        char m[160];

                        snprintf(m, sizeof(m), "inflates beyond its declared size of %llu bytes (the backup "
                                 "is damaged or hostile)", (unsigned long long) it->size);
                        r = archive_refuse_entry(ret_error, it->name, m);
                        break;
                }
                done += (uint64_t) k;
                r = sink(buf, (size_t) k, userdata);
                if (r < 0)
                        break;
        }
        zip_fclose(f);
        if (r == 0 && done != it->size)
                r = archive_refuse_entry(ret_error, it->name, "is shorter than its declared size (the backup is "
                                         "damaged)");
        return r;
}

typedef struct Bounded {
        char *buf;
        size_t len;
} Bounded;

static int bounded_sink(const void *data, size_t n, void *userdata) {
        Bounded *b = userdata;

        /* The stream never gives more than the declared size, which the buffer holds. */
        memcpy(b->buf + b->len, data, n);
        b->len += n;
        return 0;
}

static int read_small(zip_t *z, const ArchiveItem *it, size_t max, Bounded *ret, char **ret_error) {
        _cleanup_free_ char *buf = NULL, *chunk = NULL;
        size_t chunk_size = (size_t) it->size + 1 < 64U * 1024U ? (size_t) it->size + 1 : 64U * 1024U;
        Bounded b = {};
        int r;

        if (it->size > max)
                return refuse(ret_error, -EBADMSG, "%s is larger than %zu KiB: not an OctoPrint backup", it->name,
                              max / 1024);
        buf = malloc((size_t) it->size + 1);
        chunk = malloc(chunk_size);
        if (!buf || !chunk)
                return -ENOMEM;
        b.buf = buf;
        r = archive_item_stream(z, it, chunk, chunk_size, bounded_sink, &b, ret_error);
        if (r < 0)
                return r;
        buf[b.len] = 0;
        ret->buf = TAKE_PTR(buf);
        ret->len = b.len;
        return 0;
}

/* Strict JSON as Python's json module reads it: one value, nothing but whitespace after it. */
static json_object *parse_json(const char *text, size_t len) {
        json_tokener *tok;
        json_object *o;
        size_t end;

        if (len > INT32_MAX)
                return NULL;
        tok = json_tokener_new_ex(JSON_DEPTH_MAX);
        if (!tok)
                return NULL;
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        o = json_tokener_parse_ex(tok, text, (int) len);
        end = json_tokener_get_parse_end(tok);
        if (!o || json_tokener_get_error(tok) != json_tokener_success ||
            strspn(text + end, " \t\r\n") != len - end) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

/* A string member: 1 and *ret set when it is a string (valid UTF-8 without NUL), 0 when absent or null
 * (if null_ok), -EBADMSG otherwise. */
static int json_string_member(json_object *o, const char *key, bool null_ok, const char **ret) {
        json_object *v;
        const char *s;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !v)
                return null_ok ? 0 : -EBADMSG;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        s = json_object_get_string(v);
        if ((size_t) json_object_get_string_len(v) != strlen(s) || !utf8_is_valid(s))
                return -EBADMSG;
        *ret = s;
        return 1;
}

/* ---- metadata.json, plugin_list.json ---- */

static int parse_excludes(json_object *o, ArchiveSummary *s) {
        json_object *v;
        size_t n;

        if (!json_object_object_get_ex(o, "excludes", &v) || !v)
                return 0;
        if (!json_object_is_type(v, json_type_array))
                return strv_extend(&s->warnings, "metadata.json has \"excludes\" that is not a list: ignored");
        n = json_object_array_length(v);
        for (size_t k = 0; k < n && k < METADATA_EXCLUDES_MAX; k++) {
                json_object *e = json_object_array_get_idx(v, k);
                _cleanup_free_ char *shown = NULL;
                const char *id;
                char *w;

                if (!json_object_is_type(e, json_type_string))
                        continue;
                id = json_object_get_string(e);
                /* Only ids the restore can act on: the carry-over of excluded folders maps them to paths. */
                if ((int) folder_id_from_string(id) >= 0) {
                        if (!strv_contains(s->excludes, id) && strv_extend(&s->excludes, id) < 0)
                                return -ENOMEM;
                        continue;
                }
                shown = archive_name_for_message(id);
                if (!shown || asprintf(&w, "metadata.json excludes an unknown folder '%s': ignored", shown) < 0 ||
                    strv_consume(&s->warnings, w) < 0)
                        return -ENOMEM;
        }
        return 0;
}

static int read_metadata(const ArchivePlan *p, ArchiveSummary *s, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        Bounded b = {};
        json_object *o;
        const char *version;
        int r;

        if (!p->metadata)
                return refuse(ret_error, -EBADMSG, "Backup lacks metadata.json: not an OctoPrint backup");
        r = read_small(p->zip, p->metadata, METADATA_SIZE_MAX, &b, ret_error);
        if (r < 0)
                return r;
        text = b.buf;
        o = parse_json(text, b.len);
        if (!o)
                return refuse(ret_error, -EBADMSG, "metadata.json is not valid JSON: not an OctoPrint backup");
        if (!json_object_is_type(o, json_type_object))
                r = refuse(ret_error, -EBADMSG, "metadata.json is not a JSON object: not an OctoPrint backup");
        else if (json_string_member(o, "version", false, &version) <= 0)
                r = refuse(ret_error, -EBADMSG, "metadata.json has no \"version\" string: not an OctoPrint backup");
        else if (!(s->version = strdup(version)) || !(s->excludes = calloc(1, sizeof(char *))))
                r = -ENOMEM;
        else
                r = parse_excludes(o, s);
        json_object_put(o);
        return r;
}

static int plugin_list_error(char **ret_error, size_t k, const char *problem) {
        return refuse(ret_error, -EBADMSG, "plugin_list.json is malformed (entry %zu %s)" REFUSE, k + 1, problem);
}

static int read_plugin_list(const ArchivePlan *p, ArchiveSummary *s, char **ret_error) {
        _cleanup_free_ char *text = NULL;
        Bounded b = {};
        json_object *o;
        size_t n;
        int r = 0;

        if (!p->plugin_list)
                return 0;
        r = read_small(p->zip, p->plugin_list, PLUGIN_LIST_SIZE_MAX, &b, ret_error);
        if (r < 0)
                return r;
        text = b.buf;
        o = parse_json(text, b.len);
        if (!o || !json_object_is_type(o, json_type_array)) {
                json_object_put(o);
                return refuse(ret_error, -EBADMSG, "plugin_list.json is not a JSON list of plugins" REFUSE);
        }
        n = json_object_array_length(o);
        s->plugins = calloc(n ?: 1, sizeof(PluginInfo));
        if (!s->plugins)
                r = -ENOMEM;
        for (size_t k = 0; r >= 0 && k < n; k++) {
                json_object *e = json_object_array_get_idx(o, k);
                const char *key, *name, *url;
                PluginInfo *pi = &s->plugins[k];

                if (!json_object_is_type(e, json_type_object))
                        r = plugin_list_error(ret_error, k, "is not an object");
                else if (json_string_member(e, "key", false, &key) <= 0 || !*key)
                        r = plugin_list_error(ret_error, k, "has no \"key\" string");
                else if (json_string_member(e, "name", true, &name) < 0)
                        r = plugin_list_error(ret_error, k, "has a \"name\" that is neither a string nor null");
                else if (json_string_member(e, "url", true, &url) < 0)
                        r = plugin_list_error(ret_error, k, "has a \"url\" that is neither a string nor null");
                else {
                        s->n_plugins++;
                        pi->key = strdup(key);
                        pi->name = name ? strdup(name) : NULL;
                        pi->url = url ? strdup(url) : NULL;
                        if (!pi->key || (name && !pi->name) || (url && !pi->url))
                                r = -ENOMEM;
                }
        }
        json_object_put(o);
        return r;
}

/* ---- the whole archive ---- */

static int check_version(const char *backup, const char *installed, char **ret_error) {
        unsigned bmaj, bmin, imaj, imin;

        if (version_major_minor(backup, &bmaj, &bmin) < 0)
                return refuse(ret_error, -EBADMSG, "metadata.json names OctoPrint version \"%s\", which is not "
                              "a version number: not an OctoPrint backup", backup);
        if (!installed || version_major_minor(installed, &imaj, &imin) < 0)
                return refuse(ret_error, -EINVAL, "The installed OctoPrint's version (%s) cannot be read, so "
                              "whether this backup fits it cannot be told", installed ?: "unknown");
        /* OctoPrint compares major.minor only: a 1.11.8 backup restores on 1.11.0. */
        if (bmaj > imaj || (bmaj == imaj && bmin > imin))
                return refuse(ret_error, -EPROTONOSUPPORT, "Backup is from a newer version of OctoPrint and "
                              "cannot be applied, you need at least OctoPrint %u.%u.0 to restore this backup",
                              bmaj, bmin);
        return 0;
}

static int check_space(uint64_t total, uint64_t free_bytes, char **ret_error) {
        uint64_t need = total > UINT64_MAX - RESTORE_SPACE_MARGIN ? UINT64_MAX : total + RESTORE_SPACE_MARGIN;

        if (need <= free_bytes)
                return 0;
        return refuse(ret_error, -ENOSPC, "Not enough free space to restore this backup: it needs %llu MiB "
                      "(%llu MiB of files plus 50 MiB to spare), but only %llu MiB are free. Free some space, "
                      "then try again", (unsigned long long) (need / MIB + (need % MIB != 0)),
                      (unsigned long long) (total / MIB + (total % MIB != 0)),
                      (unsigned long long) (free_bytes / MIB));
}

void archive_summary_done(ArchiveSummary *s) {
        if (!s)
                return;
        free(s->version);
        strv_free(s->excludes);
        plugin_info_array_free(s->plugins, s->n_plugins);
        strv_free(s->warnings);
        *s = (ArchiveSummary) {};
}

int archive_validate(int zip_fd, uint64_t max_entries, ArchiveSummary *ret, char **ret_error) {
        _cleanup_(archive_plan_done) ArchivePlan p = {};
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        int r;

        *ret_error = NULL;
        r = archive_plan_open(zip_fd, max_entries, &p, ret_error);
        if (r < 0)
                return r;
        r = read_metadata(&p, &s, ret_error);
        if (r < 0)
                return r;
        if (!p.has_config)
                return refuse(ret_error, -EBADMSG, "Backup lacks basedir/config.yaml: not an OctoPrint backup");
        if (!p.has_users)
                return refuse(ret_error, -EBADMSG, "Backup lacks basedir/users.yaml: not an OctoPrint backup");
        r = read_plugin_list(&p, &s, ret_error);
        if (r < 0)
                return r;
        if (version_major_minor(s.version, &(unsigned) {0}, &(unsigned) {0}) < 0)
                return refuse(ret_error, -EBADMSG, "metadata.json names OctoPrint version \"%s\", which is not "
                              "a version number: not an OctoPrint backup", s.version);

        s.n_entries = p.n_items;
        s.n_files = p.n_files;
        s.total_size = p.total_size;
        /* The entries' warnings first, then metadata.json's. */
        STRV_FOREACH(w, s.warnings)
                if (strv_extend(&p.warnings, *w) < 0)
                        return -ENOMEM;
        strv_free(s.warnings);
        s.warnings = TAKE_PTR(p.warnings);
        if (!s.warnings && !(s.warnings = calloc(1, sizeof(char *))))
                return -ENOMEM;
        *ret = s;
        s = (ArchiveSummary) {};
        return 0;
}

int restore_archive_validate_full(int zip_fd, const char *installed_version, uint64_t free_bytes,
                                  uint64_t max_entries, ArchiveSummary *ret, char **ret_error) {
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        int r;

        r = archive_validate(zip_fd, max_entries, &s, ret_error);
        if (r < 0)
                return r;
        r = check_version(s.version, installed_version, ret_error);
        if (r < 0)
                return r;
        r = check_space(s.total_size, free_bytes, ret_error);
        if (r < 0)
                return r;
        *ret = s;
        s = (ArchiveSummary) {};
        return 0;
}

int restore_archive_validate(int zip_fd, const char *installed_version, uint64_t free_bytes,
                             ArchiveSummary *ret, char **ret_error) {
        return restore_archive_validate_full(zip_fd, installed_version, free_bytes, RESTORE_ENTRIES_MAX, ret,
                                             ret_error);
}
