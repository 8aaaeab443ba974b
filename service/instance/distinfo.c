/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <strings.h>
#include <sys/stat.h>

#include "instance/distinfo.h"
#include "pyjson.h"
#include "util.h"
#include "version.h"

/* The venv belongs to the instance user: every file is opened relative to a directory fd with
 * O_NOFOLLOW, and what is read is bounded, so a hostile venv can neither point us elsewhere nor make
 * us allocate without end. */
#define DISTINFO_FILE_MAX (1024U * 1024U)
#define DIST_INFO_MAX 10000U
#define DIR_ENTRIES_MAX 100000U
#define PLUGINS_PER_DIST_MAX 256U

static int open_dir_at(int dfd, const char *name) {
        int fd = openat(dfd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        return fd < 0 ? -errno : fd;
}

/* Reads dfd/dir/file. -ENOENT if it is not there; -EFBIG beyond DISTINFO_FILE_MAX. */
static int read_file_at(int dfd, const char *dir, const char *file, char **ret) {
        _cleanup_close_ int dir_fd = -1, fd = -1;
        struct stat st;

        dir_fd = open_dir_at(dfd, dir);
        if (dir_fd < 0)
                return dir_fd;
        /* O_NONBLOCK: a FIFO planted as METADATA must not hang us. */
        fd = openat(dir_fd, file, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADFD;
        return read_full_fd(fd, DISTINFO_FILE_MAX, ret, NULL);
}

/* "python3.11" → 11; -1 for anything else. */
static int python_minor(const char *name) {
        const char *s = startswith(name, "python3.");
        long v = 0;

        if (!s || !*s || strlen(s) > 3)
                return -1;
        for (; *s; s++) {
                if (!isdigit((unsigned char) *s))
                        return -1;
                v = v * 10 + (*s - '0');
        }
        return (int) v;
}

int venv_open_site_packages(const char *venv_dir, char **ret_path, int *ret_fd) {
        _cleanup_close_ int venv_fd = -1, lib_fd = -1, sp_fd = -1;
        char best[32] = "";
        int best_minor = -1;
        DIR *d;

        venv_fd = open(venv_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (venv_fd < 0)
                return -errno;
        lib_fd = open_dir_at(venv_fd, "lib");
        if (lib_fd < 0)
                return lib_fd;
        d = fdopendir(TAKE_FD(lib_fd));
        if (!d)
                return -errno;
        for (struct dirent *de; (de = readdir(d));) {
                int m = python_minor(de->d_name);
                if (m > best_minor) {
                        best_minor = m;
                        snprintf(best, sizeof(best), "python3.%d", m);
                }
        }
        lib_fd = open_dir_at(dirfd(d), ".");
        closedir(d);
        if (best_minor < 0)
                return -ENOENT;
        if (lib_fd < 0)
                return lib_fd;
        {
                _cleanup_close_ int py_fd = open_dir_at(lib_fd, best);
                if (py_fd < 0)
                        return py_fd;
                sp_fd = open_dir_at(py_fd, "site-packages");
                if (sp_fd < 0)
                        return sp_fd;
        }
        if (ret_path && asprintf(ret_path, "%s/lib/%s/site-packages", venv_dir, best) < 0) {
                *ret_path = NULL;
                return -ENOMEM;
        }
        *ret_fd = TAKE_FD(sp_fd);
        return 0;
}

/* "OctoPrint-1.11.8.dist-info", also in the lower-case spelling newer pips write; not
 * "OctoPrint_FirmwareCheck-2021.10.11.dist-info". */
static bool is_octoprint_dist_info(const char *name) {
        return strncasecmp(name, "octoprint-", 10) == 0 && isdigit((unsigned char) name[10]) &&
                endswith(name, ".dist-info");
}

/* Walks the RFC 822 style headers of METADATA, up to the first blank line (the description follows).
 * Returns the value of the first header `key` (case-insensitive) after *pos, or NULL; *pos moves on,
 * so calling again finds the next one (for Project-URL). */
static char *metadata_next(const char *text, const char *key, const char **pos) {
        size_t kl = strlen(key);
        const char *p = *pos ?: text;

        while (*p && *p != '\n' && !(p[0] == '\r' && p[1] == '\n')) {
                size_t n = strcspn(p, "\n");
                const char *next = p[n] ? p + n + 1 : p + n;

                /* Continuation lines start with blanks; they never carry a header we want. */
                if (!isblank((unsigned char) *p) && strncasecmp(p, key, kl) == 0 && p[kl] == ':') {
                        const char *v = p + kl + 1, *e = p + n;
                        v += strspn(v, " \t");
                        while (e > v && isspace((unsigned char) e[-1]))
                                e--;
                        *pos = next;
                        return strndup(v, e - v);
                }
                p = next;
        }
        *pos = p;
        return NULL;
}

static char *metadata_get(const char *text, const char *key) {
        const char *pos = NULL;
        return metadata_next(text, key, &pos);
}

/* Something we are willing to put into metadata.json: [A-Za-z0-9.+!_-], 1..64 characters. */
static bool version_is_sane(const char *v) {
        size_t n = strlen(v);

        if (n == 0 || n > 64)
                return false;
        for (; *v; v++)
                if (!isalnum((unsigned char) *v) && !strchr(".+!_-", *v))
                        return false;
        return true;
}

static int octoprint_version_of(int sp_fd, const char *dist_info, char **ret) {
        _cleanup_free_ char *metadata = NULL, *v = NULL;
        int r;

        r = read_file_at(sp_fd, dist_info, "METADATA", &metadata);
        /* Plugins installed by older pips with "setup.py install" left *.egg-info folders, whose
         * metadata file is PKG-INFO, in the same format. */
        if (r < 0 && r != -ENOMEM && endswith(dist_info, ".egg-info"))
                r = read_file_at(sp_fd, dist_info, "PKG-INFO", &metadata);
        if (r == -ENOMEM)
                return r;
        if (r >= 0)
                v = metadata_get(metadata, "Version");
        if (!v) {
                /* No METADATA (or no Version: in it): the folder name has it too. */
                v = strndup(dist_info + 10, strlen(dist_info) - 10 - strlen(".dist-info"));
                if (!v)
                        return -ENOMEM;
        }
        if (!version_is_sane(v))
                return -EBADMSG;
        *ret = TAKE_PTR(v);
        return 0;
}

int distinfo_octoprint_version(int site_packages_fd, char **ret_version) {
        _cleanup_free_ char *best = NULL;
        unsigned n = 0;
        int r = -ENOENT, fd;
        DIR *d;

        fd = open_dir_at(site_packages_fd, ".");
        if (fd < 0)
                return fd;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        for (struct dirent *de; (de = readdir(d)) && n < DIR_ENTRIES_MAX; n++) {
                _cleanup_free_ char *v = NULL;

                if (!is_octoprint_dist_info(de->d_name))
                        continue;
                r = octoprint_version_of(dirfd(d), de->d_name, &v);
                if (r == -ENOMEM)
                        break;
                if (r < 0)
                        continue;
                /* An interrupted upgrade can leave the old dist-info behind; the newer one is real. */
                if (!best || version_compare(v, best) > 0) {
                        free(best);
                        best = TAKE_PTR(v);
                }
        }
        closedir(d);
        if (r == -ENOMEM)
                return r;
        if (!best)
                return r < 0 ? r : -ENOENT;
        *ret_version = TAKE_PTR(best);
        return 0;
}

static bool plugin_key_is_valid(const char *k) {
        if (!*k || strlen(k) > 128)
                return false;
        for (; *k; k++)
                if (!isalnum((unsigned char) *k) && !strchr("_.-", *k))
                        return false;
        return true;
}

/* The names in the [octoprint.plugin] section of an entry_points.txt ("key = module"). */
static int entry_points_plugin_keys(const char *text, char ***ret) {
        _cleanup_strv_free_ char **keys = NULL;
        bool in_section = false;
        size_t n = 0;

        for (const char *p = text; *p;) {
                size_t len = strcspn(p, "\n");
                _cleanup_free_ char *line = strndup(p, len);
                char *s, *e;

                if (!line)
                        return -ENOMEM;
                p += len + (p[len] == '\n');
                s = line + strspn(line, " \t");
                e = s + strlen(s);
                while (e > s && isspace((unsigned char) e[-1]))
                        *--e = 0;
                if (!*s || *s == '#' || *s == ';')
                        continue;
                if (*s == '[') {
                        in_section = streq(s, "[octoprint.plugin]");
                        continue;
                }
                if (!in_section || !strchr(s, '='))
                        continue;
                e = strchr(s, '=');
                while (e > s && isblank((unsigned char) e[-1]))
                        e--;
                *e = 0;
                if (!plugin_key_is_valid(s) || strv_contains(keys, s))
                        continue;
                if (++n > PLUGINS_PER_DIST_MAX)
                        break;
                if (strv_extend(&keys, s) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(keys);
        return 0;
}

/* Header values end up in plugin_list.json and in D-Bus replies: valid UTF-8, bounded, or nothing. */
static char *sanitize(char *s, size_t max) {
        if (s && (strlen(s) > max || !utf8_is_valid(s) || streq(s, "UNKNOWN") || !*s)) {
                free(s);
                return NULL;
        }
        return s;
}

/* Home-page, else the URL of the first "Project-URL: Label, https://..." header. */
static char *metadata_url(const char *metadata) {
        char *url = sanitize(metadata_get(metadata, "Home-page"), 2048);
        const char *pos = NULL;
        char *pu;

        if (url)
                return url;
        while ((pu = metadata_next(metadata, "Project-URL", &pos))) {
                const char *comma = strchr(pu, ',');
                if (comma) {
                        comma += 1 + strspn(comma + 1, " \t");
                        url = sanitize(strdup(comma), 2048);
                }
                free(pu);
                if (url)
                        return url;
        }
        return NULL;
}

typedef struct PluginArray {
        PluginInfo *items;
        size_t n;
} PluginArray;

static int plugin_array_add(PluginArray *a, const char *key, const char *name, const char *url) {
        PluginInfo *t = reallocarray(a->items, a->n + 1, sizeof(PluginInfo));
        PluginInfo *p;

        if (!t)
                return -ENOMEM;
        a->items = t;
        p = &a->items[a->n];
        *p = (PluginInfo) {
                .key = strdup(key),
                .name = strdup(name),
                .url = url ? strdup(url) : NULL,
        };
        if (!p->key || !p->name || (url && !p->url)) {
                plugin_info_clear(p);
                return -ENOMEM;
        }
        a->n++;
        return 0;
}

static int scan_dist_info(int sp_fd, const char *dist_info, char *const *bundled, PluginArray *a) {
        _cleanup_free_ char *entry_points = NULL, *metadata = NULL, *name = NULL, *url = NULL;
        _cleanup_strv_free_ char **keys = NULL;
        int r;

        r = read_file_at(sp_fd, dist_info, "entry_points.txt", &entry_points);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return 0;                     /* most distributions have none */
        r = entry_points_plugin_keys(entry_points, &keys);
        if (r < 0)
                return r;
        if (strv_length(keys) == 0)
                return 0;

        r = read_file_at(sp_fd, dist_info, "METADATA", &metadata);
        /* Plugins installed by older pips with "setup.py install" left *.egg-info folders, whose
         * metadata file is PKG-INFO, in the same format. */
        if (r < 0 && r != -ENOMEM && endswith(dist_info, ".egg-info"))
                r = read_file_at(sp_fd, dist_info, "PKG-INFO", &metadata);
        if (r == -ENOMEM)
                return r;
        if (r >= 0) {
                name = sanitize(metadata_get(metadata, "Name"), 256);
                url = metadata_url(metadata);
        }
        if (!name) {
                name = strndup(dist_info, strcspn(dist_info, "-"));
                if (!name)
                        return -ENOMEM;
        }
        /* OctoPrint's own entry points are its core plugins, not something to reinstall. */
        if (strcasecmp(name, "OctoPrint") == 0)
                return 0;

        STRV_FOREACH(k, keys) {
                if (strv_contains(bundled, *k))
                        continue;
                r = plugin_array_add(a, *k, name, url);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int plugin_info_cmp(const void *a, const void *b) {
        const PluginInfo *x = a, *y = b;
        int r = strcmp(x->key, y->key);
        return r != 0 ? r : strcmp(x->name, y->name);
}

/* Sorted by key; when two distributions claim the same key only the first (by name) is kept, so
 * the result does not depend on readdir() order. */
static void plugin_array_sort_unique(PluginArray *a) {
        size_t j = 0;

        if (a->n == 0)
                return;
        qsort(a->items, a->n, sizeof(PluginInfo), plugin_info_cmp);
        for (size_t i = 1; i < a->n; i++) {
                if (streq(a->items[i].key, a->items[j].key)) {
                        plugin_info_clear(&a->items[i]);
                        continue;
                }
                a->items[++j] = a->items[i];
        }
        a->n = j + 1;
}

int distinfo_plugin_list(int site_packages_fd, char *const *bundled, PluginInfo **ret, size_t *ret_n) {
        PluginArray a = {};
        unsigned entries = 0, dists = 0;
        int r = 0, fd;
        DIR *d;

        fd = open_dir_at(site_packages_fd, ".");
        if (fd < 0)
                return fd;
        d = fdopendir(fd);
        if (!d) {
                r = -errno;
                close(fd);
                return r;
        }
        for (struct dirent *de; (de = readdir(d));) {
                if (++entries > DIR_ENTRIES_MAX || dists >= DIST_INFO_MAX) {
                        r = -E2BIG;
                        break;
                }
                if ((!endswith(de->d_name, ".dist-info") && !endswith(de->d_name, ".egg-info")) ||
                    de->d_name[0] == '.')
                        continue;
                dists++;
                if (is_octoprint_dist_info(de->d_name))
                        continue;
                r = scan_dist_info(dirfd(d), de->d_name, bundled, &a);
                if (r < 0)
                        break;
        }
        closedir(d);
        if (r < 0) {
                plugin_info_array_free(a.items, a.n);
                return r;
        }
        plugin_array_sort_unique(&a);
        *ret = a.items;
        *ret_n = a.n;
        return 0;
}


char *plugin_list_to_json(const PluginInfo *p, size_t n) {
        PyJson j = {};
        char *s;
        int r;

        pyjson_raw(&j, "[");
        for (size_t i = 0; i < n; i++) {
                pyjson_raw(&j, i > 0 ? ", {\"key\": " : "{\"key\": ");
                pyjson_string(&j, p[i].key);
                pyjson_raw(&j, ", \"name\": ");
                pyjson_string(&j, p[i].name);
                pyjson_raw(&j, ", \"url\": ");
                pyjson_string(&j, p[i].url);
                pyjson_raw(&j, "}");
        }
        pyjson_raw(&j, "]");
        s = pyjson_finish(&j, &r);
        if (!s)
                errno = -r;
        return s;
}
