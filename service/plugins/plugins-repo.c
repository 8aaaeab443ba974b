/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The plugin repository's plugins.json: parsing, and OctoPrint's compatibility rules. Pure logic. */

#include <ctype.h>
#include <json-c/json.h>
#include <strings.h>

#include "plugins/plugins.h"
#include "version.h"

static void repo_entry_done(RepoEntry *e) {
        free(e->id);
        free(e->title);
        free(e->homepage);
        free(e->archive);
        strv_free(e->octoprint);
        strv_free(e->os);
}

void repo_entry_array_free(RepoEntry *e, size_t n) {
        for (size_t i = 0; i < n; i++)
                repo_entry_done(&e[i]);
        free(e);
}

/* A string member, copied; NULL when missing or not a string. */
static int get_string(json_object *o, const char *key, char **ret) {
        json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return 0;
        *ret = strdup(json_object_get_string(v));
        return *ret ? 0 : -ENOMEM;
}

/* A list of strings (non-strings skipped) or a single string; NULL when missing, null or empty. */
static int get_string_list(json_object *o, const char *key, char ***ret) {
        _cleanup_strv_free_ char **l = NULL;
        json_object *v;

        *ret = NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return 0;
        if (json_object_is_type(v, json_type_string)) {
                if (strv_extend(&l, json_object_get_string(v)) < 0)
                        return -ENOMEM;
        } else if (json_object_is_type(v, json_type_array)) {
                size_t n = json_object_array_length(v);

                for (size_t i = 0; i < n; i++) {
                        json_object *s = json_object_array_get_idx(v, i);

                        if (json_object_is_type(s, json_type_string) &&
                            strv_extend(&l, json_object_get_string(s)) < 0)
                                return -ENOMEM;
                }
        }
        *ret = TAKE_PTR(l);
        return 0;
}

static int repo_entry_from_json(json_object *o, RepoEntry *ret) {
        RepoEntry e = {};
        json_object *compat;
        int r;

        if ((r = get_string(o, "id", &e.id)) < 0 || (r = get_string(o, "title", &e.title)) < 0 ||
            (r = get_string(o, "homepage", &e.homepage)) < 0 || (r = get_string(o, "archive", &e.archive)) < 0)
                goto fail;
        if (json_object_object_get_ex(o, "compatibility", &compat) && json_object_is_type(compat, json_type_object) &&
            ((r = get_string_list(compat, "octoprint", &e.octoprint)) < 0 ||
             (r = get_string_list(compat, "os", &e.os)) < 0))
                goto fail;
        *ret = e;
        return 0;
fail:
        repo_entry_done(&e);
        return r;
}

int plugin_repository_parse(const char *json, size_t size, RepoEntry **ret, size_t *ret_n, char **ret_error) {
        json_tokener *tok;
        json_object *root;
        enum json_tokener_error jerr;
        RepoEntry *entries = NULL;
        size_t n = 0, count;
        int r = 0;

        if (size > INT32_MAX) {
                *ret_error = strdup("Plugin repository data is too large");
                return -EFBIG;
        }
        tok = json_tokener_new();
        if (!tok)
                return -ENOMEM;
        root = json_tokener_parse_ex(tok, json, (int) size);
        jerr = json_tokener_get_error(tok);
        if (root && jerr == json_tokener_success)
                for (size_t i = json_tokener_get_parse_end(tok); i < size; i++)
                        if (!strchr(" \t\r\n", json[i]) || json[i] == 0) {
                                jerr = json_tokener_error_parse_unexpected;
                                break;
                        }
        if (!root || jerr != json_tokener_success) {
                if (asprintf(ret_error, "Plugin repository data is not valid JSON: %s",
                             jerr == json_tokener_continue ? "unexpected end of data" : json_tokener_error_desc(jerr)) < 0)
                        *ret_error = NULL;
                json_object_put(root);
                json_tokener_free(tok);
                return -EBADMSG;
        }
        json_tokener_free(tok);

        if (!json_object_is_type(root, json_type_array)) {
                *ret_error = strdup("Plugin repository data is not a JSON array of plugins");
                json_object_put(root);
                return -EBADMSG;
        }

        count = json_object_array_length(root);
        entries = calloc(count ?: 1, sizeof(RepoEntry));
        if (!entries) {
                json_object_put(root);
                return -ENOMEM;
        }
        for (size_t i = 0; i < count; i++) {
                json_object *o = json_object_array_get_idx(root, i);

                if (!json_object_is_type(o, json_type_object))
                        continue;
                r = repo_entry_from_json(o, &entries[n]);
                if (r < 0)
                        break;
                if (!entries[n].id) {
                        repo_entry_done(&entries[n]);
                        continue;
                }
                n++;
        }
        json_object_put(root);
        if (r < 0) {
                repo_entry_array_free(entries, n);
                return r;
        }
        *ret = entries;
        *ret_n = n;
        return 0;
}

const RepoEntry *plugin_repository_find(const RepoEntry *e, size_t n, const char *id) {
        for (size_t i = n; i > 0; i--)
                if (streq(e[i - 1].id, id))
                        return &e[i - 1];
        return NULL;
}

/* OctoPrint compares against its "base" version: the release numbers only. */
static char *base_version(const char *v) {
        const char *s = v, *end;

        if (*s == 'v' || *s == 'V')
                s++;
        end = s;
        while (isdigit((unsigned char) *end)) {
                end += strspn(end, "0123456789");
                if (*end == '.' && isdigit((unsigned char) end[1]))
                        end++;
        }
        if (end == s)
                return strdup(v);        /* unparsable: no specifier will match it */
        return strndup(s, end - s);
}

static bool octoprint_compatible(char *const *specs, const char *version) {
        _cleanup_free_ char *base = NULL;

        if (!specs || !*specs || !version)
                return true;
        base = base_version(version);
        if (!base)
                return false;
        STRV_FOREACH(spec, specs)
                /* version_spec_matches() reads a bare version as ">=" like OctoPrint; a broken specifier
                 * (-EINVAL) matches nothing, as OctoPrint logs and skips it. */
                if (version_spec_matches(*spec, base) > 0)
                        return true;
        return false;
}

/* Python's sys.platform for OctoPrint's os names, which "os" entries may also name a prefix of. */
static const char *sys_platform(const char *os) {
        static const char *const map[][2] = {
                { "linux", "linux" }, { "windows", "win32" }, { "macos", "darwin" }, { "freebsd", "freebsd" },
        };

        for (size_t i = 0; i < ELEMENTSOF(map); i++)
                if (streq(os, map[i][0]))
                        return map[i][1];
        return os;
}

static bool os_entry_matches(const char *entry, const char *os) {
        return streq(entry, os) || startswith(sys_platform(os), entry);
}

static bool os_compatible(char *const *entries, const char *os) {
        bool positive = false, positive_match = false;

        if (!entries || !*entries)
                return true;
        if (!os)
                os = "linux";
        STRV_FOREACH(e, entries) {
                if (**e == '!') {
                        if (os_entry_matches(*e + 1, os))
                                return false;
                        continue;
                }
                positive = true;
                if (os_entry_matches(*e, os))
                        positive_match = true;
        }
        return !positive || positive_match;
}

unsigned plugin_compatibility(const RepoEntry *e, const char *octoprint_version, const char *os) {
        unsigned r = 0;

        if (!octoprint_compatible(e->octoprint, octoprint_version))
                r |= PLUGIN_INCOMPATIBLE_OCTOPRINT;
        if (!os_compatible(e->os, os))
                r |= PLUGIN_INCOMPATIBLE_OS;
        return r;
}

static int unhex(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        c = (char) tolower((unsigned char) c);
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        return -1;
}

static bool archive_name_ok(const char *name) {
        static const char *const exts[] = { ".whl", ".zip", ".tar.gz", ".tgz", ".tar.bz2", ".tar" };
        size_t l = strlen(name);

        /* Characters of wheel and sdist names as pip writes them; anything else is not a name pip
         * parses anyway, and keeping to them keeps the file name harmless. */
        if (l == 0 || l > 200 || name[0] == '.' || name[0] == '-' ||
            strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._+-!~") != l)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
                size_t k = strlen(exts[i]);
                if (l > k && strcasecmp(name + l - k, exts[i]) == 0)
                        return true;
        }
        return false;
}

char *plugin_archive_name_from_url(const char *url) {
        const char *p, *end, *last;
        _cleanup_free_ char *name = NULL;
        size_t k = 0;

        if (!url)
                return NULL;
        p = strstr(url, "://");
        if (!p)
                return NULL;
        p = strchr(p + 3, '/');          /* the path, after the authority */
        if (!p)
                return NULL;
        end = p + strcspn(p, "?#");
        last = p;
        for (const char *s = p; s < end; s++)
                if (*s == '/')
                        last = s + 1;
        if (last >= end)
                return NULL;

        name = malloc(end - last + 1);
        if (!name)
                return NULL;
        for (const char *s = last; s < end; s++) {
                int hi, lo;

                if (*s == '%' && end - s >= 3 && (hi = unhex(s[1])) >= 0 && (lo = unhex(s[2])) >= 0) {
                        name[k++] = (char) (hi << 4 | lo);
                        s += 2;
                } else
                        name[k++] = *s;
        }
        name[k] = 0;
        if (memchr(name, 0, k) || !archive_name_ok(name))
                return NULL;
        return TAKE_PTR(name);
}
