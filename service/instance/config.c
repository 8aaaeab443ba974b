/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dirent.h>
#include <fcntl.h>
#include <ini.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <strings.h>
#include <sys/stat.h>

#include "folders.h"
#include "instance/config.h"
#include "instance/ini-line.h"
#include "log.h"
#include "names.h"
#include "pyjson.h"
#include "remote/remote-config.h"
#include "util.h"

/* Config files are small; anything bigger is a mistake (or a device node), not a config. */
#define CONFIG_FILE_SIZE_MAX (64U * 1024U)
#define INSTANCES_MAX 1024U
#define HOME_ENTRIES_MAX 10000U
#define DEFAULT_COMPRESSION_LEVEL 5      /* libdeflate level 5: see man/opbackupd.conf.5 */

static const char *const default_bundled_plugins[] = { "file_check", "firmware_check", "pi_support", NULL };

typedef struct ParseState {
        const char *path;
        const char *pos, *end;            /* what the line reader has not handed to inih yet */
        unsigned line;
        InstanceConfig *ic;
        DaemonConfig *daemon;             /* only while reading opbackupd.conf: [Daemon] is allowed */
        char *warned_section;             /* so an unknown section is reported once, not per key */
        bool oom;
} ParseState;

/* Absolute, without "." or ".." components (so no later check can be fooled), without control
 * characters; duplicate and trailing slashes dropped. */
static int path_normalize_absolute(const char *s, char **ret) {
        _cleanup_free_ char *p = NULL;
        char *q;

        if (s[0] != '/')
                return -EINVAL;
        p = malloc(strlen(s) + 2);
        if (!p)
                return -ENOMEM;
        q = p;
        while (*s) {
                size_t n;

                s += strspn(s, "/");
                n = strcspn(s, "/");
                if (n == 0)
                        break;
                if ((n == 1 && s[0] == '.') || (n == 2 && s[0] == '.' && s[1] == '.'))
                        return -EINVAL;
                for (size_t i = 0; i < n; i++)
                        if ((unsigned char) s[i] < 0x20 || s[i] == 0x7f)
                                return -EINVAL;
                *q++ = '/';
                memcpy(q, s, n);
                q += n;
                s += n;
        }
        if (q == p)
                *q++ = '/';
        *q = 0;
        *ret = TAKE_PTR(p);
        return 0;
}

/* Value parsers: 0 on success, -EINVAL if the value is bad, -ENOMEM. An empty value always means
 * "back to the default", so a key in an instance file can undo one from opbackupd.conf. */
typedef int (*ValueParser)(const char *value, void *field);

static int parse_path(const char *value, void *field) {
        char *p = NULL;
        int r;

        if (*value) {
                r = path_normalize_absolute(value, &p);
                if (r < 0)
                        return r;
        }
        free(*(char **) field);
        *(char **) field = p;
        return 0;
}

static int parse_basedir(const char *value, void *field) {
        /* Restore renames basedir: "/" would be a disaster, and no OctoPrint lives there. */
        if (*value && value[strspn(value, "/")] == 0)
                return -EINVAL;
        return parse_path(value, field);
}

static bool string_only_has(const char *s, const char *extra) {
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr(extra, *s)))
                        return false;
        return true;
}

static int parse_user(const char *value, void *field) {
        if (*value && (strlen(value) > 32 || value[0] == '-' || !string_only_has(value, "._-")))
                return -EINVAL;
        return free_and_strdup(field, *value ? value : NULL);
}

static int parse_unit(const char *value, void *field) {
        _cleanup_free_ char *u = NULL;

        if (!*value)
                return free_and_strdup(field, NULL);
        /* A leading '-' could be read as an option by whatever gets the name later. */
        if (strlen(value) > 200 || value[0] == '-' || !string_only_has(value, ":_.\\@-"))
                return -EINVAL;
        /* Like systemctl: "octoprint" means "octoprint.service". */
        if (asprintf(&u, "%s%s", value, strchr(value, '.') ? "" : ".service") < 0)
                return -ENOMEM;
        free(*(char **) field);
        *(char **) field = TAKE_PTR(u);
        return 0;
}

static int parse_url(const char *value, void *field) {
        if (*value) {
                if (strncasecmp(value, "https://", 8) != 0 && strncasecmp(value, "http://", 7) != 0 &&
                    strncasecmp(value, "file://", 7) != 0)
                        return -EINVAL;
                for (const char *s = value; *s; s++)
                        if ((unsigned char) *s <= 0x20 || *s == 0x7f)
                                return -EINVAL;
        }
        return free_and_strdup(field, *value ? value : NULL);
}

/* OctoPrint's own address: http(s) only; file:// would make the daemon read files for a caller. */
static int parse_http_url(const char *value, void *field) {
        if (*value && strncasecmp(value, "https://", 8) != 0 && strncasecmp(value, "http://", 7) != 0)
                return -EINVAL;
        return parse_url(value, field);
}

/* Folder ids a caller could exclude (as CreateBackup checks them), each once. */
static int parse_excludes(const char *value, void *field) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        r = strv_split_words(value, &l);
        if (r < 0)
                return r;
        STRV_FOREACH(e, l) {
                FolderId id = folder_id_from_string(*e);

                if ((int) id < 0 || !folder_excludable(id))
                        return -EINVAL;
                for (char *const *f = l; f < e; f++)
                        if (streq(*f, *e))
                                return -EINVAL;
        }
        strv_free(*(char ***) field);
        *(char ***) field = l && l[0] ? TAKE_PTR(l) : NULL;
        return 0;
}

/* Remote names, each once; whether each is configured is checked once remotes.d is read. */
static int parse_remote_names(const char *value, void *field) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        r = strv_split_words(value, &l);
        if (r < 0)
                return r;
        /* Each upload of a backup holds a connection to the helper: a handful, not hundreds. */
        if (strv_length(l) > REMOTES_PER_BACKUP_MAX)
                return -EINVAL;
        STRV_FOREACH(e, l) {
                if (!instance_name_is_valid(*e))
                        return -EINVAL;
                for (char *const *f = l; f < e; f++)
                        if (streq(*f, *e))
                                return -EINVAL;
        }
        strv_free(*(char ***) field);
        *(char ***) field = l && l[0] ? TAKE_PTR(l) : NULL;
        return 0;
}

static int parse_print_action(const char *value, void *field) {
        if (!*value)
                *(PrintAction *) field = PRINT_ACTION_DEFAULT;
        else if (strcasecmp(value, "skip") == 0)
                *(PrintAction *) field = PRINT_ACTION_SKIP;
        else if (strcasecmp(value, "backup") == 0)
                *(PrintAction *) field = PRINT_ACTION_BACKUP;
        else
                return -EINVAL;
        return 0;
}

static int parse_uint(const char *value, unsigned *ret) {
        unsigned long v;
        char *end;

        if (!*value) {
                *ret = 0;
                return 0;
        }
        if (value[strspn(value, "0123456789")] != 0 || strlen(value) > 10)
                return -EINVAL;
        errno = 0;
        v = strtoul(value, &end, 10);
        if (errno != 0 || v > UINT_MAX)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_unsigned(const char *value, void *field) {
        return parse_uint(value, field);
}

/* Seconds, at most a week (more is a typo for a daily backup); 0 or empty: the default. */
static int parse_seconds(const char *value, void *field) {
        unsigned v;

        if (parse_uint(value, &v) < 0 || v > 7U * 24U * 3600U)
                return -EINVAL;
        *(unsigned *) field = v;
        return 0;
}

static int parse_level(const char *value, void *field) {
        unsigned v;

        if (!*value) {
                *(int *) field = -1;
                return 0;
        }
        if (parse_uint(value, &v) < 0 || v > 9)
                return -EINVAL;
        *(int *) field = (int) v;
        return 0;
}

static int parse_bool(const char *value, void *field) {
        int b = *value ? parse_boolean(value) : 0;

        if (b < 0)
                return -EINVAL;
        *(bool *) field = b;
        return 0;
}

/* yes/no; empty: the default (-1). */
static int parse_tristate(const char *value, void *field) {
        int b = *value ? parse_boolean(value) : -1;

        if (*value && b < 0)
                return -EINVAL;
        *(int *) field = b;
        return 0;
}

static int parse_plugin_keys(const char *value, void *field) {
        _cleanup_strv_free_ char **l = NULL;
        int r;

        if (!*value) {
                *(char ***) field = strv_free(*(char ***) field);
                return 0;
        }
        r = strv_split_words(value, &l);
        if (r < 0)
                return r;
        STRV_FOREACH(k, l)
                if (!string_only_has(*k, "_.-"))
                        return -EINVAL;
        strv_free(*(char ***) field);
        *(char ***) field = TAKE_PTR(l);
        return 0;
}

typedef struct ConfigKey {
        const char *section, *key;
        ValueParser parse;
        size_t offset;                    /* in InstanceConfig */
        const char *expected;             /* for the error message */
} ConfigKey;

#define KEY(s, k, p, f, e) { s, k, p, offsetof(InstanceConfig, f), e }

static const ConfigKey config_keys[] = {
        KEY("OctoPrint", "Basedir", parse_basedir, basedir, "an absolute path other than /"),
        KEY("OctoPrint", "ConfigFile", parse_path, config_file, "an absolute path"),
        KEY("OctoPrint", "Python", parse_path, python, "an absolute path"),
        KEY("OctoPrint", "User", parse_user, user, "a user name"),
        KEY("OctoPrint", "Unit", parse_unit, unit, "a systemd unit name"),
        KEY("OctoPrint", "ApiUrl", parse_http_url, api_url, "OctoPrint's http:// or https:// URL"),
        KEY("OctoPrint", "ApiKeyFile", parse_path, api_key_file, "an absolute path"),
        KEY("Backup", "Folder", parse_path, backup_folder, "an absolute path"),
        KEY("Backup", "Keep", parse_unsigned, keep, "a number (0 keeps all)"),
        KEY("Backup", "CompressionLevel", parse_level, compression_level, "a number from 0 to 9"),
        KEY("Backup", "FilesCache", parse_tristate, files_cache, "yes or no"),
        KEY("Backup", "CopyTo", parse_remote_names, copy_to,
            "names of remotes (remotes.d/NAME.conf) separated by spaces, each once, at most 8"),
        KEY("Restore", "Unsupported", parse_bool, restore_unsupported, "yes or no"),
        KEY("Restore", "PluginRepository", parse_url, plugin_repository, "an http://, https:// or file:// URL"),
        KEY("Restore", "BundledPlugins", parse_plugin_keys, bundled_plugins, "plugin keys separated by spaces"),
        KEY("Schedule", "Exclude", parse_excludes, schedule_excludes,
            "folder ids separated by spaces, each once: uploads timelapse virtualSd plugins slicingProfiles "
            "printerProfiles scripts translations data"),
        KEY("Schedule", "PrintPollSec", parse_seconds, print_poll_sec, "a number of seconds (0: 60)"),
        KEY("Schedule", "PrintWaitMaxSec", parse_seconds, print_wait_max_sec,
            "a number of seconds up to a week (0: 6 hours)"),
        KEY("Schedule", "OnStillPrinting", parse_print_action, on_still_printing, "skip or backup"),
        KEY("Schedule", "OnPrinterUnknown", parse_print_action, on_printer_unknown, "backup or skip"),
};

static bool section_is_known(const char *section, bool daemon) {
        if (daemon && streq(section, "Daemon"))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq(config_keys[i].section, section))
                        return true;
        return false;
}

static int handle_daemon_key(ParseState *s, const char *key, const char *value) {
        if (!streq(key, "IdleTimeoutSec")) {
                log_warning("%s:%u: Unknown key %s= in [Daemon], ignoring.", s->path, s->line, key);
                return 0;
        }
        /* No instance to mark unusable: a bad value is reported and the default kept. */
        if (parse_uint(value, &s->daemon->idle_timeout_sec) < 0)
                log_warning("%s:%u: IdleTimeoutSec=%s: expected a number of seconds (0 = never exit), ignoring.",
                            s->path, s->line, value);
        return 0;
}

static int handle_key(ParseState *s, const char *section, const char *key, const char *value) {
        if (s->daemon && streq(section, "Daemon"))
                return handle_daemon_key(s, key, value);

        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++) {
                const ConfigKey *k = &config_keys[i];
                int r;

                if (!streq(k->section, section) || !streq(k->key, key))
                        continue;
                r = k->parse(value, (char *) s->ic + k->offset);
                if (r == -EINVAL)
                        return set_first_error(&s->ic->error, "%s:%u: %s=%s: expected %s", s->path, s->line, key, value,
                                         k->expected);
                return r;
        }

        if (!section_is_known(section, s->daemon)) {
                if (!streq_ptr(s->warned_section, section)) {
                        if (isempty(section))
                                log_warning("%s:%u: %s= outside of any section, ignoring.", s->path, s->line, key);
                        else if (streq(section, "Daemon"))
                                log_warning("%s:%u: [Daemon] is only read from opbackupd.conf, ignoring.",
                                            s->path, s->line);
                        else
                                log_warning("%s:%u: Unknown section [%s], ignoring.", s->path, s->line, section);
                        if (free_and_strdup(&s->warned_section, section) < 0)
                                return -ENOMEM;
                }
                return 0;
        }
        log_warning("%s:%u: Unknown key %s= in [%s], ignoring.", s->path, s->line, key, section);
        return 0;
}

static int ini_handler_cb(void *userdata, const char *section, const char *key, const char *value) {
        ParseState *s = userdata;

        if (s->oom)
                return 0;
        if (handle_key(s, section, key, value) < 0) {
                s->oom = true;
                return 0;
        }
        return 1;
}

/* Hands inih one cleaned line at a time (instance/ini-line.h), reporting a line too long for it. */
static char *ini_reader_cb(char *str, int num, void *stream) {
        ParseState *s = stream;
        bool too_long;
        char *r = ini_line_read(&s->pos, s->end, &s->line, str, num, &too_long);

        if (too_long && !s->oom &&
            set_first_error(&s->ic->error, "%s:%u: line longer than %d characters", s->path, s->line, num - 2) < 0)
                s->oom = true;
        return r;
}

/* Parses one file into ic (and [Daemon] into daemon, if given). Only -ENOMEM is returned; every
 * other problem ends up in ic->error. A missing file is -ENOENT, for the caller to decide. */
static int config_parse_file(const char *path, InstanceConfig *ic, DaemonConfig *daemon) {
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int fd = -1;
        ParseState s = {
                .path = path,
                .ic = ic,
                .daemon = daemon,
        };
        struct stat st;
        size_t size;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0) {
                if (errno == ENOENT)
                        return -ENOENT;
                return set_first_error(&ic->error, "Cannot open %s: %s", path, strerror(errno));
        }
        if (fstat(fd, &st) < 0)
                return set_first_error(&ic->error, "Cannot stat %s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return set_first_error(&ic->error, "%s is not a regular file", path);
        r = read_full_fd(fd, CONFIG_FILE_SIZE_MAX, &data, &size);
        if (r == -ENOMEM)
                return r;
        if (r == -EFBIG)
                return set_first_error(&ic->error, "%s is larger than %u KiB, refusing", path, CONFIG_FILE_SIZE_MAX / 1024);
        if (r < 0)
                return set_first_error(&ic->error, "Cannot read %s: %s", path, strerror(-r));
        if (memchr(data, 0, size))
                return set_first_error(&ic->error, "%s contains a NUL byte: not a text file", path);
        /* Values end up in D-Bus properties and error messages, which must be UTF-8. */
        if (!utf8_is_valid(data))
                return set_first_error(&ic->error, "%s is not valid UTF-8", path);

        s.pos = data;
        s.end = data + size;
        r = ini_parse_stream(ini_reader_cb, &s, ini_handler_cb, &s);
        free(s.warned_section);
        if (s.oom || r == -2)
                return -ENOMEM;
        if (r > 0)
                return set_first_error(&ic->error, "%s:%d: syntax error: expected [Section] or Key=Value", path, r);
        return 0;
}

static void instance_config_clear(InstanceConfig *ic) {
        free(ic->name);
        free(ic->source);
        free(ic->basedir);
        free(ic->config_file);
        free(ic->python);
        free(ic->user);
        free(ic->unit);
        free(ic->api_url);
        free(ic->api_key_file);
        free(ic->backup_folder);
        free(ic->plugin_repository);
        strv_free(ic->bundled_plugins);
        strv_free(ic->schedule_excludes);
        strv_free(ic->copy_to);
        free(ic->error);
        *ic = (InstanceConfig) {};
}

InstanceConfig *instance_config_free(InstanceConfig *ic) {
        if (ic) {
                instance_config_clear(ic);
                free(ic);
        }
        return NULL;
}

static void instance_config_freep(InstanceConfig **ic) {
        instance_config_free(*ic);
}
#define _cleanup_instance_config_ _cleanup_(instance_config_freep)

static int dup_field(char **dst, const char *src) {
        *dst = NULL;
        return free_and_strdup(dst, src);
}

/* A new instance starts as a deep copy of the defaults, including their error: a broken
 * opbackupd.conf makes every instance unusable rather than silently half-configured. */
static int instance_config_new(const char *name, const char *source, const InstanceConfig *defaults,
                               InstanceConfig **ret) {
        _cleanup_instance_config_ InstanceConfig *ic = NULL;
        InstanceConfig empty = { .compression_level = -1, .files_cache = -1 };

        if (!defaults)
                defaults = &empty;
        ic = calloc(1, sizeof(*ic));
        if (!ic)
                return -ENOMEM;
        ic->keep = defaults->keep;
        ic->compression_level = defaults->compression_level;
        ic->files_cache = defaults->files_cache;
        ic->restore_unsupported = defaults->restore_unsupported;
        ic->print_poll_sec = defaults->print_poll_sec;
        ic->print_wait_max_sec = defaults->print_wait_max_sec;
        ic->on_still_printing = defaults->on_still_printing;
        ic->on_printer_unknown = defaults->on_printer_unknown;
        if (dup_field(&ic->name, name) < 0 || dup_field(&ic->source, source) < 0 ||
            dup_field(&ic->basedir, defaults->basedir) < 0 ||
            dup_field(&ic->config_file, defaults->config_file) < 0 ||
            dup_field(&ic->python, defaults->python) < 0 || dup_field(&ic->user, defaults->user) < 0 ||
            dup_field(&ic->unit, defaults->unit) < 0 || dup_field(&ic->api_url, defaults->api_url) < 0 ||
            dup_field(&ic->api_key_file, defaults->api_key_file) < 0 ||
            dup_field(&ic->backup_folder, defaults->backup_folder) < 0 ||
            dup_field(&ic->plugin_repository, defaults->plugin_repository) < 0 ||
            dup_field(&ic->error, defaults->error) < 0)
                return -ENOMEM;
        if (defaults->bundled_plugins) {
                ic->bundled_plugins = strv_copy(defaults->bundled_plugins);
                if (!ic->bundled_plugins)
                        return -ENOMEM;
        }
        if (defaults->copy_to) {
                ic->copy_to = strv_copy(defaults->copy_to);
                if (!ic->copy_to)
                        return -ENOMEM;
        }
        if (defaults->schedule_excludes) {
                ic->schedule_excludes = strv_copy(defaults->schedule_excludes);
                if (!ic->schedule_excludes)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(ic);
        return 0;
}

int instance_config_load(const char *path, const char *name, const InstanceConfig *defaults,
                         InstanceConfig **ret) {
        _cleanup_instance_config_ InstanceConfig *ic = NULL;
        int r;

        r = instance_config_new(name, path, defaults, &ic);
        if (r < 0)
                return r;
        /* Kept, so that it is listed with the reason it cannot be used. */
        if (!instance_name_is_valid(name) &&
            set_first_error(&ic->error, "%s: invalid instance name \"%s\": use 1 to 64 letters, digits, '.', '_' or '-', "
                      "not starting with '.'", path, name) < 0)
                return -ENOMEM;
        r = config_parse_file(path, ic, NULL);
        if (r == -ENOENT)
                r = set_first_error(&ic->error, "%s: file not found", path);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(ic);
        return 0;
}

int instance_config_finish(InstanceConfig *ic) {
        if (!ic->basedir && set_first_error(&ic->error, "Basedir= is not set in %s", strempty(ic->source)) < 0)
                return -ENOMEM;
        if (ic->basedir && !ic->config_file &&
            asprintf(&ic->config_file, "%s/config.yaml", ic->basedir) < 0) {
                ic->config_file = NULL;
                return -ENOMEM;
        }
        if (!ic->bundled_plugins) {
                ic->bundled_plugins = strv_copy((char *const *) default_bundled_plugins);
                if (!ic->bundled_plugins)
                        return -ENOMEM;
        }
        if (ic->compression_level < 0)
                ic->compression_level = DEFAULT_COMPRESSION_LEVEL;
        if (ic->files_cache < 0)
                ic->files_cache = 1;
        if (ic->print_poll_sec == 0)
                ic->print_poll_sec = PRINT_POLL_SEC_DEFAULT;
        if (ic->print_wait_max_sec == 0)
                ic->print_wait_max_sec = PRINT_WAIT_MAX_SEC_DEFAULT;
        if (ic->on_still_printing == PRINT_ACTION_DEFAULT)
                ic->on_still_printing = PRINT_ACTION_SKIP;
        if (ic->on_printer_unknown == PRINT_ACTION_DEFAULT)
                ic->on_printer_unknown = PRINT_ACTION_BACKUP;
        /* Half a configuration is a mistake worth pointing at, not a silent "never waits". */
        if (!ic->api_url != !ic->api_key_file &&
            set_first_error(&ic->error, "%s: ApiUrl= and ApiKeyFile= go together: set both for print-aware backups, or "
                      "neither", strempty(ic->source)) < 0)
                return -ENOMEM;
        return 0;
}

void daemon_config_done(DaemonConfig *c) {
        if (!c)
                return;
        for (size_t i = 0; i < c->n_instances; i++)
                instance_config_free(c->instances[i]);
        free(c->instances);
        remote_config_free_many(c->remotes, c->n_remotes);
        instance_config_clear(&c->defaults);
        *c = (DaemonConfig) {};
}

static int instance_cmp(const void *a, const void *b) {
        const InstanceConfig *x = *(InstanceConfig *const *) a, *y = *(InstanceConfig *const *) b;
        return strcmp(x->name, y->name);
}

static void daemon_config_sort(DaemonConfig *c) {
        if (c->n_instances > 1)
                qsort(c->instances, c->n_instances, sizeof(c->instances[0]), instance_cmp);
}

/* Takes ic in all cases. */
static int daemon_config_add(DaemonConfig *c, InstanceConfig *ic) {
        InstanceConfig **t;

        t = reallocarray(c->instances, c->n_instances + 1, sizeof(InstanceConfig *));
        if (!t) {
                instance_config_free(ic);
                return -ENOMEM;
        }
        c->instances = t;
        c->instances[c->n_instances++] = ic;
        return 0;
}

static bool dirent_is_conf(int dfd, const struct dirent *de) {
        struct stat st;

        /* Hidden files are editor leftovers (".pi.conf.swp") or disabled on purpose. */
        if (de->d_name[0] == '.' || !endswith(de->d_name, ".conf") || strlen(de->d_name) <= 5)
                return false;
        if (de->d_type == DT_REG)
                return true;
        if (de->d_type != DT_UNKNOWN && de->d_type != DT_LNK)
                return false;
        return fstatat(dfd, de->d_name, &st, 0) >= 0 && S_ISREG(st.st_mode);
}

static int load_instance_dir(DaemonConfig *c, const char *dir) {
        _cleanup_free_ char *path = NULL;
        DIR *d;
        int r = 0;

        if (asprintf(&path, "%s/instances.d", dir) < 0)
                return -ENOMEM;
        d = opendir(path);
        if (!d) {
                if (errno != ENOENT)
                        log_warning_errno(errno, "Cannot read %s, ignoring: %m", path);
                return 0;
        }
        for (struct dirent *de; r >= 0 && (de = readdir(d));) {
                _cleanup_free_ char *file = NULL, *name = NULL;
                InstanceConfig *ic;

                if (!dirent_is_conf(dirfd(d), de))
                        continue;
                /* An invalid name is kept, to be listed with its error; but not one that cannot even
                 * be sent over D-Bus. */
                if (!utf8_is_valid(de->d_name)) {
                        log_warning("Ignoring %s/%s: file name is not valid UTF-8.", path, de->d_name);
                        continue;
                }
                if (c->n_instances >= INSTANCES_MAX) {
                        log_warning("More than %u files in %s, ignoring the rest.", INSTANCES_MAX, path);
                        break;
                }
                name = strndup(de->d_name, strlen(de->d_name) - 5);
                if (!name || asprintf(&file, "%s/%s", path, de->d_name) < 0) {
                        file = NULL;
                        r = -ENOMEM;
                        break;
                }
                r = instance_config_load(file, name, &c->defaults, &ic);
                if (r < 0)
                        break;
                r = instance_config_finish(ic);
                if (r >= 0)
                        r = daemon_config_add(c, ic);
                else
                        instance_config_free(ic);
        }
        closedir(d);
        return r;
}

int daemon_config_load(const char *dir, unsigned default_idle_timeout_sec, DaemonConfig *ret) {
        _cleanup_free_ char *main_conf = NULL;
        DaemonConfig c = {
                .idle_timeout_sec = default_idle_timeout_sec,
                .defaults.compression_level = -1,
                .defaults.files_cache = -1,
        };
        int r;

        if (asprintf(&main_conf, "%s/opbackupd.conf", dir) < 0)
                return -ENOMEM;
        r = config_parse_file(main_conf, &c.defaults, &c);
        if (r < 0 && r != -ENOENT)
                goto fail;
        if (free_and_strdup(&c.defaults.source, main_conf) < 0) {
                r = -ENOMEM;
                goto fail;
        }
        if (c.defaults.error)
                log_error("%s", c.defaults.error);

        r = load_instance_dir(&c, dir);
        if (r < 0)
                goto fail;
        r = remote_config_load_dir(dir, &c.remotes, &c.n_remotes);
        if (r < 0)
                goto fail;
        /* A backup still works without its copy: the instance stays usable, the upload to the missing remote
         * fails with this reason, and the log says it at start-up already. */
        for (size_t i = 0; i < c.n_instances; i++)
                STRV_FOREACH(n, c.instances[i]->copy_to)
                        if (!remote_config_find(c.remotes, c.n_remotes, *n))
                                log_warning("%s: CopyTo=%s: no such remote (%s/remotes.d/%s.conf does not exist).",
                                            c.instances[i]->source, *n, dir, *n);
        daemon_config_sort(&c);
        *ret = c;
        return 0;
fail:
        daemon_config_done(&c);
        return r;
}

static bool is_regular_at(int dfd, const char *path) {
        struct stat st;

        /* Following symlinks is intended: a venv's bin/python is one. */
        return fstatat(dfd, path, &st, 0) >= 0 && S_ISREG(st.st_mode);
}

static int autodetect_one(DaemonConfig *c, int dfd, const char *home_root, const char *name) {
        static const char *const pythons[] = {
                "oprint/bin/python",            /* OctoPi */
                "OctoPrint/venv/bin/python",    /* the manual install guide */
        };
        _cleanup_instance_config_ InstanceConfig *ic = NULL;
        int r;

        r = instance_config_new(name, "autodetect", &c->defaults, &ic);
        if (r < 0)
                return r;
        free(ic->basedir);
        if (asprintf(&ic->basedir, "%s/%s/.octoprint", home_root, name) < 0) {
                ic->basedir = NULL;
                return -ENOMEM;
        }
        for (size_t i = 0; i < ELEMENTSOF(pythons); i++) {
                _cleanup_free_ char *rel = NULL;

                if (asprintf(&rel, "%s/%s", name, pythons[i]) < 0)
                        return -ENOMEM;
                if (!is_regular_at(dfd, rel))
                        continue;
                free(ic->python);
                if (asprintf(&ic->python, "%s/%s", home_root, rel) < 0) {
                        ic->python = NULL;
                        return -ENOMEM;
                }
                break;
        }
        /* A python from opbackupd.conf is kept when nothing is found; else the probe reports it. */
        r = instance_config_finish(ic);
        if (r < 0)
                return r;
        return daemon_config_add(c, TAKE_PTR(ic));
}

int daemon_config_autodetect(DaemonConfig *c, const char *home_root) {
        _cleanup_free_ char *root = NULL;
        unsigned scanned = 0;
        int r = 0, added = 0;
        DIR *d;

        if (c->n_instances > 0)
                return 0;
        r = path_normalize_absolute(home_root, &root);
        if (r < 0)
                return r;
        d = opendir(root);
        if (!d) {
                if (errno != ENOENT)
                        log_warning_errno(errno, "Cannot read %s for instance autodetection: %m", root);
                return 0;
        }
        for (struct dirent *de; (de = readdir(d));) {
                _cleanup_free_ char *probe = NULL;

                if (++scanned > HOME_ENTRIES_MAX) {
                        log_warning("More than %u entries in %s, ignoring the rest.", HOME_ENTRIES_MAX, root);
                        break;
                }
                if (de->d_name[0] == '.')
                        continue;
                if (asprintf(&probe, "%s/.octoprint/config.yaml", de->d_name) < 0) {
                        r = -ENOMEM;
                        break;
                }
                if (!is_regular_at(dirfd(d), probe))
                        continue;
                if (!instance_name_is_valid(de->d_name)) {
                        log_warning("Found %s/%s but \"%s\" is not a valid instance name, ignoring it.",
                                    root, probe, de->d_name);
                        continue;
                }
                r = autodetect_one(c, dirfd(d), streq(root, "/") ? "" : root, de->d_name);
                if (r < 0)
                        break;
                added++;
        }
        closedir(d);
        if (r < 0)
                return r;
        daemon_config_sort(c);
        return added;
}
