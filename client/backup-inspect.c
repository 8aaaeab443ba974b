/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Inspecting a backup zip: its metadata, plugin list, entries and sizes, and whether a restore would take
 * it. Everything read from the archive is bounded: the JSON files by INSPECT_JSON_MAX, the number of
 * entries by INSPECT_ENTRIES_MAX, the folders kept by INSPECT_FOLDERS_MAX. */

#include <json-c/json.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "backup-inspect.h"
#include "util.h"

static void problem(BackupInspection *b, const char *format, ...) _printf_(2, 3);
static void problem(BackupInspection *b, const char *format, ...) {
        char *s;
        va_list ap;
        int r;

        if (strv_length(b->problems) >= INSPECT_PROBLEMS_MAX) {
                b->n_problems_omitted++;
                return;
        }
        va_start(ap, format);
        r = vasprintf(&s, format, ap);
        va_end(ap);
        if (r < 0 || strv_consume(&b->problems, s) < 0)
                b->n_problems_omitted++;        /* out of memory: at least it is counted */
}

bool inspect_entry_name_is_safe(const char *name) {
        size_t n = strlen(name);
        const char *p;

        if (n == 0 || n > INSPECT_NAME_MAX)
                return false;
        for (p = name; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f || *p == '\\')
                        return false;
        if (name[0] == '/' || (((name[0] | 0x20) >= 'a' && (name[0] | 0x20) <= 'z') && name[1] == ':'))
                return false;
        if (!streq(name, "metadata.json") && !streq(name, "plugin_list.json") && !startswith(name, "basedir/"))
                return false;
        /* Components: none empty (a directory entry's trailing "/" aside), none "..". */
        for (p = name;;) {
                size_t l = strcspn(p, "/");

                if (l == 0 && !(p[0] == 0 && p > name))
                        return false;
                if (l == 2 && p[0] == '.' && p[1] == '.')
                        return false;
                if (p[l] == 0)
                        break;
                p += l + 1;
                if (*p == 0)            /* "dir/": a directory entry */
                        break;
        }
        return true;
}

/* An entry's content, at most max bytes; -EFBIG if it is larger (declared or actual). */
static int read_entry(zip_t *z, zip_uint64_t index, size_t max, char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        zip_stat_t st;
        zip_file_t *f;
        size_t n = 0;

        zip_stat_init(&st);
        if (zip_stat_index(z, index, 0, &st) < 0)
                return -EIO;
        if ((st.valid & ZIP_STAT_SIZE) && st.size > max)
                return -EFBIG;
        buf = malloc(max + 1);
        if (!buf)
                return -ENOMEM;
        f = zip_fopen_index(z, index, 0);
        if (!f)
                return -EIO;
        /* Read one byte beyond max: an entry that inflates to more than it declares is caught too. */
        while (n <= max) {
                zip_int64_t k = zip_fread(f, buf + n, max + 1 - n);
                if (k < 0) {
                        zip_fclose(f);
                        return -EIO;
                }
                if (k == 0)
                        break;
                n += (size_t) k;
        }
        zip_fclose(f);
        if (n > max)
                return -EFBIG;
        buf[n] = 0;
        *ret = TAKE_PTR(buf);
        *ret_size = n;
        return 0;
}

static json_object *parse_json(const char *text, size_t size) {
        json_tokener *tok = json_tokener_new();
        json_object *o;

        if (!tok)
                return NULL;
        o = json_tokener_parse_ex(tok, text, (int) size);
        if (o && json_tokener_get_error(tok) != json_tokener_success) {
                json_object_put(o);
                o = NULL;
        }
        /* Trailing garbage after the document makes it invalid as well. */
        if (o && text[json_tokener_get_parse_end(tok) + strspn(text + json_tokener_get_parse_end(tok), " \t\r\n")]) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

static void read_metadata(zip_t *z, zip_int64_t index, BackupInspection *b) {
        _cleanup_free_ char *text = NULL;
        json_object *o, *v;
        size_t size;
        int r;

        r = read_entry(z, (zip_uint64_t) index, INSPECT_JSON_MAX, &text, &size);
        if (r == -EFBIG) {
                problem(b, "metadata.json is larger than %u KiB: not an OctoPrint backup", INSPECT_JSON_MAX / 1024);
                return;
        }
        if (r < 0) {
                problem(b, "metadata.json cannot be read: %s", zip_strerror(z));
                return;
        }
        o = parse_json(text, size);
        if (!o || !json_object_is_type(o, json_type_object)) {
                problem(b, "metadata.json is not a JSON object");
                json_object_put(o);
                return;
        }
        if (json_object_object_get_ex(o, "version", &v) && json_object_is_type(v, json_type_string))
                b->version = strdup(json_object_get_string(v));
        else
                problem(b, "metadata.json has no \"version\" string");
        if (json_object_object_get_ex(o, "excludes", &v) && json_object_is_type(v, json_type_array))
                for (size_t k = 0; k < json_object_array_length(v) && k < 64; k++) {
                        json_object *e = json_object_array_get_idx(v, k);
                        if (json_object_is_type(e, json_type_string))
                                (void) strv_extend(&b->excludes, json_object_get_string(e));
                }
        json_object_put(o);
}

static char *json_string_or_null(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return strdup(json_object_get_string(v));
}

static void read_plugin_list(zip_t *z, zip_int64_t index, BackupInspection *b) {
        _cleanup_free_ char *text = NULL;
        json_object *o;
        size_t size, n;
        int r;

        r = read_entry(z, (zip_uint64_t) index, INSPECT_JSON_MAX, &text, &size);
        if (r < 0) {
                problem(b, "plugin_list.json %s", r == -EFBIG ? "is larger than 1 MiB" : "cannot be read");
                return;
        }
        o = parse_json(text, size);
        if (!o || !json_object_is_type(o, json_type_array)) {
                problem(b, "plugin_list.json is not a JSON array");
                json_object_put(o);
                return;
        }
        n = json_object_array_length(o);
        if (n > INSPECT_PLUGINS_MAX)
                n = INSPECT_PLUGINS_MAX;
        b->plugins = calloc(n ?: 1, sizeof(InspectPlugin));
        for (size_t k = 0; b->plugins && k < n; k++) {
                json_object *p = json_object_array_get_idx(o, k);
                InspectPlugin *ip = &b->plugins[b->n_plugins];

                if (!json_object_is_type(p, json_type_object)) {
                        problem(b, "plugin_list.json: entry %zu is not an object", k + 1);
                        continue;
                }
                ip->key = json_string_or_null(p, "key");
                ip->name = json_string_or_null(p, "name");
                ip->url = json_string_or_null(p, "url");
                if (!ip->key) {
                        problem(b, "plugin_list.json: entry %zu has no \"key\"", k + 1);
                        free(ip->name);
                        free(ip->url);
                        *ip = (InspectPlugin) {};
                        continue;
                }
                b->n_plugins++;
        }
        json_object_put(o);
}

static InspectFolder *find_folder(BackupInspection *b, const char *name, size_t len) {
        for (size_t k = 0; k < b->n_folders; k++)
                if (strlen(b->folders[k].name) == len && strncmp(b->folders[k].name, name, len) == 0)
                        return &b->folders[k];
        return NULL;
}

static void add_to_folder(BackupInspection *b, const char *name, size_t len, uint64_t size, uint64_t csize) {
        InspectFolder *f = find_folder(b, name, len);

        if (!f && b->n_folders >= INSPECT_FOLDERS_MAX - 1) {
                /* Many odd top-level folders: the rest is counted as one, bounding memory. */
                name = "(others)";
                len = strlen(name);
                f = find_folder(b, name, len);
        }
        if (!f) {
                InspectFolder *a = realloc(b->folders, (b->n_folders + 1) * sizeof(InspectFolder));
                char *copy = strndup(name, len);

                if (!a || !copy) {
                        free(copy);
                        if (a)
                                b->folders = a;
                        return;
                }
                b->folders = a;
                f = &b->folders[b->n_folders++];
                *f = (InspectFolder) { .name = copy };
        }
        f->entries++;
        f->size += size;
        f->compressed_size += csize;
}

static void check_entry(zip_t *z, zip_uint64_t k, const char *name, const zip_stat_t *st, BackupInspection *b) {
        zip_uint8_t opsys;
        zip_uint32_t attributes;

        if (!inspect_entry_name_is_safe(name)) {
                problem(b, "unsafe entry name '%.200s'", name);
                return;
        }
        if ((st->valid & ZIP_STAT_ENCRYPTION_METHOD) && st->encryption_method != ZIP_EM_NONE)
                problem(b, "%.200s is encrypted", name);
        if ((st->valid & ZIP_STAT_COMP_METHOD) && st->comp_method != ZIP_CM_STORE && st->comp_method != ZIP_CM_DEFLATE)
                problem(b, "%.200s uses compression method %u (only stored and deflated are restored)", name,
                        (unsigned) st->comp_method);
        if (zip_file_get_external_attributes(z, k, 0, &opsys, &attributes) == 0 && opsys == ZIP_OPSYS_UNIX) {
                mode_t mode = (attributes >> 16) & 0xffff;
                /* No file type bits at all (Python's ZipFile.writestr() makes such) is a file. */
                if ((mode & S_IFMT) != 0 && !S_ISREG(mode) && !S_ISDIR(mode))
                        problem(b, "%.200s is %s, not a file", name,
                                S_ISLNK(mode) ? "a symbolic link" : "a device, FIFO or socket");
        }
}

int backup_inspect(zip_t *z, BackupInspection *ret) {
        BackupInspection b = {};
        zip_int64_t n, metadata = -1, plugin_list = -1;

        n = zip_get_num_entries(z, 0);
        if (n < 0)
                return -EIO;
        b.entries = (uint64_t) n;
        if ((uint64_t) n > INSPECT_ENTRIES_MAX) {
                problem(&b, "%" PRIi64 " entries: more than a restore accepts (%u)", (int64_t) n, INSPECT_ENTRIES_MAX);
                n = 0;  /* don't walk an archive built to exhaust us */
        }
        for (zip_int64_t k = 0; k < n; k++) {
                const char *name;
                zip_stat_t st;
                const char *rest;

                zip_stat_init(&st);
                if (zip_stat_index(z, (zip_uint64_t) k, ZIP_FL_ENC_RAW, &st) < 0 || !(st.valid & ZIP_STAT_NAME)) {
                        problem(&b, "entry %" PRIi64 " cannot be read: %s", (int64_t) k + 1, zip_strerror(z));
                        continue;
                }
                name = st.name;
                if (st.valid & ZIP_STAT_SIZE)
                        b.uncompressed_size += st.size;
                if (st.valid & ZIP_STAT_COMP_SIZE)
                        b.compressed_size += st.comp_size;
                check_entry(z, (zip_uint64_t) k, name, &st, &b);

                /* With duplicate names the last one counts, as when restoring. */
                if (streq(name, "metadata.json"))
                        metadata = k;
                else if (streq(name, "plugin_list.json"))
                        plugin_list = k;
                else if (streq(name, "basedir/config.yaml"))
                        b.has_config = true;
                else if (streq(name, "basedir/users.yaml"))
                        b.has_users = true;

                rest = startswith(name, "basedir/");
                if (rest && *rest && !endswith(name, "/")) {
                        const char *slash = strchr(rest, '/');
                        add_to_folder(&b, rest, slash ? (size_t) (slash - rest) : 0, st.size, st.comp_size);
                }
        }

        b.excludes = calloc(1, sizeof(char *));
        if (!b.excludes) {
                backup_inspection_done(&b);
                return -ENOMEM;
        }
        b.has_metadata = metadata >= 0;
        if (b.has_metadata)
                read_metadata(z, metadata, &b);
        else
                problem(&b, "metadata.json is missing: not an OctoPrint backup");
        if (!b.has_config)
                problem(&b, "basedir/config.yaml is missing: not an OctoPrint backup");
        if (!b.has_users)
                problem(&b, "basedir/users.yaml is missing: not an OctoPrint backup");
        b.has_plugin_list = plugin_list >= 0;
        if (b.has_plugin_list)
                read_plugin_list(z, plugin_list, &b);
        *ret = b;
        return 0;
}

void backup_inspection_done(BackupInspection *b) {
        free(b->version);
        strv_free(b->excludes);
        for (size_t k = 0; k < b->n_plugins; k++) {
                free(b->plugins[k].key);
                free(b->plugins[k].name);
                free(b->plugins[k].url);
        }
        free(b->plugins);
        for (size_t k = 0; k < b->n_folders; k++)
                free(b->folders[k].name);
        free(b->folders);
        strv_free(b->problems);
        *b = (BackupInspection) {};
}
