/* SPDX-License-Identifier: GPL-2.0-or-later */
/* remotes.d/<name>.conf (remote-config.h) and the credentials files they name. */

#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <ini.h>
#include <stdarg.h>
#include <strings.h>
#include <sys/stat.h>

#include "instance/ini-line.h"
#include "log.h"
#include "names.h"
#include "pyjson.h"
#include "remote/remote-config.h"
#include "util.h"

#define REMOTE_FILE_SIZE_MAX (64U * 1024U)
#define REMOTE_URL_MAX 2048U

static const char *const type_names[] = {
        [REMOTE_TYPE_S3] = "s3",
        [REMOTE_TYPE_WEBDAV] = "webdav",
        [REMOTE_TYPE_SFTP] = "sftp",
};

const char *remote_type_to_string(RemoteType t) {
        return t >= 0 && (size_t) t < ELEMENTSOF(type_names) ? type_names[t] : "invalid";
}

RemoteType remote_type_from_string(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(type_names); i++)
                if (strcasecmp(s, type_names[i]) == 0)
                        return (RemoteType) i;
        return REMOTE_TYPE_INVALID;
}

static bool has_space_or_control(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s <= 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* "64M", "1G", "5242880": K, M and G are 1024-based. */
static int parse_size(const char *s, uint64_t *ret) {
        unsigned long long v;
        char *end;
        unsigned shift = 0;

        if (*s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -EINVAL;
        if (*end) {
                const char *u = strchr("KMG", toupper((unsigned char) *end));

                if (!u || end[1])
                        return -EINVAL;
                shift = 10 * (unsigned) (u - "KMG" + 1);
        }
        if (v > (UINT64_MAX >> shift))
                return -EINVAL;
        *ret = (uint64_t) v << shift;
        return 0;
}

typedef struct ParseState {
        const char *path;
        const char *pos, *end;
        unsigned line;
        RemoteConfig *rc;
        bool oom;
} ParseState;

/* One key. -EINVAL: the value is wrong, *ret_expected says what was expected. */
static int parse_key(RemoteConfig *rc, const char *key, const char *value, const char **ret_expected) {
        if (streq(key, "Type")) {
                *ret_expected = "s3, webdav or sftp";
                rc->type = remote_type_from_string(value);
                return rc->type == REMOTE_TYPE_INVALID ? -EINVAL : 0;
        }
        if (streq(key, "URL")) {
                *ret_expected = "an https://, http:// or sftp:// URL without spaces";
                if (strlen(value) > REMOTE_URL_MAX || has_space_or_control(value))
                        return -EINVAL;
                return free_and_strdup(&rc->url, *value ? value : NULL);
        }
        if (streq(key, "Region")) {
                *ret_expected = "a region name such as us-east-1";
                if (strlen(value) > 64 || has_space_or_control(value) || strchr(value, '/') || strchr(value, ':'))
                        return -EINVAL;
                return free_and_strdup(&rc->region, *value ? value : NULL);
        }
        if (streq(key, "CredentialsFile") || streq(key, "CAFile")) {
                char **f = streq(key, "CAFile") ? &rc->ca_file : &rc->credentials_file;

                *ret_expected = "an absolute path";
                if (*value && (value[0] != '/' || strstr(value, "/../") || endswith(value, "/..") ||
                               strlen(value) > 4096 || has_space_or_control(value)))
                        return -EINVAL;
                return free_and_strdup(f, *value ? value : NULL);
        }
        if (streq(key, "HostKeySHA256")) {
                const char *v = startswith(value, "SHA256:") ?: value;
                size_t n = strspn(v, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");

                /* What ssh-keygen -lf prints: 43 characters of base64, with or without the padding. */
                *ret_expected = "the server's SHA-256 host key fingerprint, as ssh-keygen -lf -E sha256 prints it";
                if (!*value)
                        return free_and_strdup(&rc->host_key_sha256, NULL);
                if (n != 43 || (v[n] && !streq(v + n, "=")))
                        return -EINVAL;
                free(rc->host_key_sha256);
                rc->host_key_sha256 = strndup(v, n);
                return rc->host_key_sha256 ? 0 : -ENOMEM;
        }
        if (streq(key, "Keep")) {
                char *end;
                unsigned long v;

                *ret_expected = "a number (0 keeps all)";
                if (!*value) {
                        rc->keep = 0;
                        return 0;
                }
                errno = 0;
                v = strtoul(value, &end, 10);
                if (errno != 0 || *end || value[0] < '0' || value[0] > '9' || v > 100000)
                        return -EINVAL;
                rc->keep = (unsigned) v;
                return 0;
        }
        if (streq(key, "PartSize") || streq(key, "MultipartThreshold")) {
                uint64_t *v = streq(key, "PartSize") ? &rc->part_size : &rc->multipart_threshold;

                *ret_expected = "a size from 5M to 5G (K, M, G: 1024-based)";
                if (!*value) {
                        *v = 0;
                        return 0;
                }
                if (parse_size(value, v) < 0 || *v < REMOTE_S3_PART_MIN || *v > REMOTE_S3_PUT_MAX)
                        return -EINVAL;
                return 0;
        }
        if (streq(key, "Timeout")) {
                char *end;
                unsigned long v;

                *ret_expected = "a number of seconds from 1 to 3600";
                if (!*value) {
                        rc->timeout_s = 0;
                        return 0;
                }
                errno = 0;
                v = strtoul(value, &end, 10);
                if (errno != 0 || *end || value[0] < '0' || value[0] > '9' || v < 1 || v > REMOTE_TIMEOUT_MAX_S)
                        return -EINVAL;
                rc->timeout_s = (unsigned) v;
                return 0;
        }
        if (streq(key, "Verify")) {
                *ret_expected = "size or full";
                if (!*value || strcasecmp(value, "size") == 0)
                        rc->verify = REMOTE_VERIFY_SIZE;
                else if (strcasecmp(value, "full") == 0)
                        rc->verify = REMOTE_VERIFY_FULL;
                else
                        return -EINVAL;
                return 0;
        }
        return -ENOENT;
}

static int ini_handler_cb(void *userdata, const char *section, const char *key, const char *value) {
        ParseState *s = userdata;
        const char *expected = NULL;
        int r;

        if (s->oom)
                return 0;
        if (!streq(section, "Remote")) {
                log_warning("%s:%u: %s= is not in [Remote], ignoring.", s->path, s->line, key);
                return 1;
        }
        r = parse_key(s->rc, key, value, &expected);
        if (r == -ENOENT)
                log_warning("%s:%u: Unknown key %s= in [Remote], ignoring.", s->path, s->line, key);
        else if (r == -EINVAL)
                r = set_first_error(&s->rc->error, "%s:%u: %s=%s: expected %s", s->path, s->line, key, value, expected);
        if (r == -ENOMEM)
                s->oom = true;
        return !s->oom;
}

/* Hands inih one cleaned line at a time (instance/ini-line.h), reporting a line too long for it. */
static char *ini_reader_cb(char *str, int num, void *stream) {
        ParseState *s = stream;
        bool too_long;
        char *r = ini_line_read(&s->pos, s->end, &s->line, str, num, &too_long);

        if (too_long && !s->oom &&
            set_first_error(&s->rc->error, "%s:%u: line longer than %d characters", s->path, s->line, num - 2) < 0)
                s->oom = true;
        return r;
}

/* What must hold once the whole file is read. */
static int remote_config_check(RemoteConfig *rc) {
        const char *url = rc->url, *rest, *at, *slash;

        if (rc->type == REMOTE_TYPE_INVALID)
                return set_first_error(&rc->error, "%s: Type= is not set (s3, webdav or sftp)", rc->source);
        if (!url)
                return set_first_error(&rc->error, "%s: URL= is not set", rc->source);
        if (rc->type == REMOTE_TYPE_SFTP)
                rest = startswith(url, "sftp://");
        else
                rest = startswith(url, "https://") ?: startswith(url, "http://");
        if (!rest)
                return set_first_error(&rc->error, "%s: URL=%s: a %s remote needs an %s URL", rc->source, url,
                                 remote_type_to_string(rc->type),
                                 rc->type == REMOTE_TYPE_SFTP ? "sftp://" : "https:// (or http://)");
        slash = strchr(rest, '/');
        at = memchr(rest, '@', slash ? (size_t) (slash - rest) : strlen(rest));
        /* A password in the URL would end up on the bus (ListRemotes) and in logs. */
        if (at && memchr(rest, ':', at - rest))
                return set_first_error(&rc->error, "%s: URL= contains a password: put it in CredentialsFile= instead",
                                 rc->source);
        if (rc->type == REMOTE_TYPE_SFTP && (!at || at == rest))
                return set_first_error(&rc->error, "%s: URL=%s: name the user on the server: sftp://USER@HOST/PATH",
                                 rc->source, url);
        if (rc->type != REMOTE_TYPE_SFTP && at)
                return set_first_error(&rc->error, "%s: URL=%s: the user goes in CredentialsFile=, not in the URL", rc->source, url);
        if (!slash || (at ? at + 1 : rest) == slash || !slash[strspn(slash, "/")])
                return set_first_error(&rc->error, "%s: URL=%s: a host and a path are needed (%s)", rc->source, url,
                                 rc->type == REMOTE_TYPE_S3 ? "https://HOST/BUCKET[/PREFIX]" :
                                 rc->type == REMOTE_TYPE_SFTP ? "sftp://USER@HOST[:PORT]/PATH" :
                                 "https://HOST/PATH");
        if (strstr(url, "/../") || endswith(url, "/..") || strstr(url, "/./") || strchr(url, '?') || strchr(url, '#'))
                return set_first_error(&rc->error, "%s: URL=%s: no \".\" or \"..\" components, query or fragment", rc->source, url);
        if (!rc->credentials_file && rc->type != REMOTE_TYPE_WEBDAV)
                return set_first_error(&rc->error, "%s: CredentialsFile= is not set: a %s remote needs %s", rc->source,
                                 remote_type_to_string(rc->type),
                                 rc->type == REMOTE_TYPE_S3 ? "AccessKeyId= and SecretAccessKey=" :
                                 "an ed25519 private key");
        if (rc->type == REMOTE_TYPE_SFTP && !rc->host_key_sha256)
                return set_first_error(&rc->error, "%s: HostKeySHA256= is not set: an sftp remote needs the server's host key "
                                 "fingerprint (ssh-keygen -lf /etc/ssh/ssh_host_ed25519_key.pub -E sha256, on "
                                 "the server)", rc->source);
        if (rc->type != REMOTE_TYPE_SFTP && rc->host_key_sha256)
                log_warning("%s: HostKeySHA256= is for sftp remotes only, ignoring.", rc->source);
        if (rc->type != REMOTE_TYPE_S3 && (rc->part_size || rc->multipart_threshold))
                log_warning("%s: PartSize= and MultipartThreshold= are for s3 remotes only, ignoring.", rc->source);
        /* Object names are URL + "/" + instance + "/" + backup: one slash, whatever the file says. */
        for (size_t n = strlen(rc->url); n > 0 && rc->url[n - 1] == '/'; n--)
                rc->url[n - 1] = 0;
        if (rc->type == REMOTE_TYPE_S3 && !rc->region && !(rc->region = strdup("us-east-1")))
                return -ENOMEM;
        return 0;
}

static int parse_file(RemoteConfig *rc, const char *path) {
        _cleanup_free_ char *data = NULL;
        _cleanup_close_ int fd = -1;
        ParseState s = { .path = path, .rc = rc };
        struct stat st;
        size_t size;
        int r;

        fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return set_first_error(&rc->error, "Cannot open %s: %s", path, strerror(errno));
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return set_first_error(&rc->error, "%s is not a regular file", path);
        r = read_full_fd(fd, REMOTE_FILE_SIZE_MAX, &data, &size);
        if (r == -ENOMEM)
                return r;
        if (r < 0)
                return set_first_error(&rc->error, "Cannot read %s: %s", path, r == -EFBIG ? "too large" : strerror(-r));
        if (memchr(data, 0, size) || !utf8_is_valid(data))
                return set_first_error(&rc->error, "%s is not a UTF-8 text file", path);
        s.pos = data;
        s.end = data + size;
        r = ini_parse_stream(ini_reader_cb, &s, ini_handler_cb, &s);
        if (s.oom || r == -2)
                return -ENOMEM;
        if (r > 0)
                return set_first_error(&rc->error, "%s:%d: syntax error: expected [Section] or Key=Value", path, r);
        return 0;
}

int remote_config_load(const char *path, const char *name, RemoteConfig **ret) {
        RemoteConfig *rc;
        int r;

        rc = calloc(1, sizeof(*rc));
        if (!rc)
                return -ENOMEM;
        rc->type = REMOTE_TYPE_INVALID;
        r = free_and_strdup(&rc->name, name);
        if (r >= 0)
                r = free_and_strdup(&rc->source, path);
        if (r >= 0 && !instance_name_is_valid(name))
                r = set_first_error(&rc->error, "%s: invalid remote name \"%s\": use 1 to 64 letters, digits, '.', '_' or '-', "
                              "not starting with '.'", path, name);
        if (r >= 0)
                r = parse_file(rc, path);
        if (r >= 0 && !rc->error)
                r = remote_config_check(rc);
        if (r < 0) {
                remote_config_free(rc);
                return r;
        }
        *ret = rc;
        return 0;
}

RemoteConfig *remote_config_free(RemoteConfig *rc) {
        if (!rc)
                return NULL;
        free(rc->name);
        free(rc->source);
        free(rc->url);
        free(rc->region);
        free(rc->credentials_file);
        free(rc->host_key_sha256);
        free(rc->ca_file);
        free(rc->error);
        free(rc);
        return NULL;
}

void remote_config_free_many(RemoteConfig **l, size_t n) {
        for (size_t i = 0; i < n; i++)
                remote_config_free(l[i]);
        free(l);
}

const RemoteConfig *remote_config_find(RemoteConfig *const *l, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(l[i]->name, name))
                        return l[i];
        return NULL;
}

static int remote_cmp(const void *a, const void *b) {
        return strcmp((*(RemoteConfig *const *) a)->name, (*(RemoteConfig *const *) b)->name);
}

int remote_config_load_dir(const char *dir, RemoteConfig ***ret, size_t *ret_n) {
        _cleanup_free_ char *path = NULL;
        RemoteConfig **l = NULL;
        size_t n = 0, allocated = 0;
        int r = 0;
        DIR *d;

        *ret = NULL;
        *ret_n = 0;
        if (asprintf(&path, "%s/remotes.d", dir) < 0)
                return -ENOMEM;
        d = opendir(path);
        if (!d) {
                if (errno != ENOENT)
                        log_warning_errno(errno, "Cannot read %s, ignoring: %m", path);
                return 0;
        }
        for (struct dirent *de; (de = readdir(d));) {
                _cleanup_free_ char *file = NULL, *name = NULL;
                RemoteConfig *rc;

                /* Hidden files are editor leftovers or disabled on purpose. */
                if (de->d_name[0] == '.' || !endswith(de->d_name, ".conf") || strlen(de->d_name) <= 5 ||
                    !utf8_is_valid(de->d_name))
                        continue;
                if (n >= REMOTES_MAX) {
                        log_warning("More than %u files in %s, ignoring the rest.", REMOTES_MAX, path);
                        break;
                }
                name = strndup(de->d_name, strlen(de->d_name) - 5);
                if (!name || asprintf(&file, "%s/%s", path, de->d_name) < 0) {
                        file = NULL;
                        r = -ENOMEM;
                        break;
                }
                r = remote_config_load(file, name, &rc);
                if (r < 0)
                        break;
                if (rc->error)
                        log_error("%s", rc->error);
                if (ARRAY_RESERVE(l, allocated, n + 1) < 0) {
                        remote_config_free(rc);
                        r = -ENOMEM;
                        break;
                }
                l[n++] = rc;
        }
        closedir(d);
        if (r < 0) {
                remote_config_free_many(l, n);
                return r;
        }
        if (n > 1)
                qsort(l, n, sizeof(l[0]), remote_cmp);
        *ret = l;
        *ret_n = n;
        return 0;
}

/* ---- Credentials ---- */

static int why(char **ret_why, int r, const char *format, ...) _printf_(3, 4);
static int why(char **ret_why, int r, const char *format, ...) {
        va_list ap;

        va_start(ap, format);
        if (vasprintf(ret_why, format, ap) < 0) {
                *ret_why = NULL;
                r = -ENOMEM;
        }
        va_end(ap);
        return r;
}

void remote_credentials_done(RemoteCredentials *c) {
        if (c->secret)
                explicit_bzero(c->secret, c->secret_size);
        free(c->user);
        free(c->secret);
        *c = (RemoteCredentials) {};
}

/* "Key=value" lines of s3 and webdav credential files; '#' starts a comment line. */
static int parse_pairs(char *data, const char *user_key, const char *secret_key, RemoteCredentials *c) {
        for (char *line = data, *next; line && *line; line = next) {
                char *eq, *v, *e;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                line += strspn(line, " \t");
                e = line + strlen(line);
                while (e > line && strchr(" \t\r", e[-1]))
                        *--e = 0;
                if (!*line || *line == '#')
                        continue;
                eq = strchr(line, '=');
                if (!eq)
                        return -EINVAL;
                *eq = 0;
                v = eq + 1 + strspn(eq + 1, " \t");
                e = eq;
                while (e > line && strchr(" \t", e[-1]))
                        *--e = 0;
                if (streq(line, user_key)) {
                        if (free_and_strdup(&c->user, v) < 0)
                                return -ENOMEM;
                } else if (streq(line, secret_key)) {
                        if (c->secret)
                                explicit_bzero(c->secret, c->secret_size);
                        if (free_and_strdup(&c->secret, v) < 0)
                                return -ENOMEM;
                        c->secret_size = strlen(v);
                } else
                        return -EINVAL;
        }
        return 0;
}

int remote_credentials_read(const RemoteConfig *rc, uid_t owner_uid, RemoteCredentials *ret, char **ret_why) {
        _cleanup_(remote_credentials_done) RemoteCredentials c = {};
        _cleanup_close_ int fd = -1;
        char *data = NULL;
        struct stat st;
        size_t size;
        int r;

        *ret = (RemoteCredentials) {};
        *ret_why = NULL;
        if (!rc->credentials_file)
                return 0;       /* a WebDAV server without a login */
        fd = open(rc->credentials_file, O_RDONLY | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return why(ret_why, -errno, "Cannot open the credentials file %s of remote %s: %m",
                           rc->credentials_file, rc->name);
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return why(ret_why, -EBADF, "Not using the credentials file %s of remote %s: not a regular file",
                           rc->credentials_file, rc->name);
        if (st.st_uid != owner_uid || (st.st_mode & 0177) != 0)
                return why(ret_why, -EPERM, "Not using the credentials file %s of remote %s: it is owned by uid %u "
                           "with mode %04o, but must be %s's and readable by it alone (chown %s, chmod 600 or 400)",
                           rc->credentials_file, rc->name, (unsigned) st.st_uid, (unsigned) (st.st_mode & 07777),
                           owner_uid == 0 ? "root" : "the service user", owner_uid == 0 ? "root:root" : "it");
        r = read_full_fd(fd, REMOTE_CREDENTIALS_MAX, &data, &size);
        if (r < 0)
                return why(ret_why, r, "Cannot read the credentials file %s of remote %s: %s", rc->credentials_file,
                           rc->name, r == -EFBIG ? "too large for credentials" : strerror(-r));
        if (rc->type == REMOTE_TYPE_SFTP) {
                c.secret = data;
                c.secret_size = size;
                if (!strstr(data, "-----BEGIN OPENSSH PRIVATE KEY-----"))
                        return why(ret_why, -EINVAL, "The credentials file %s of remote %s is not an OpenSSH private "
                                   "key (make one with ssh-keygen -t ed25519 -N '')", rc->credentials_file, rc->name);
        } else {
                r = parse_pairs(data, rc->type == REMOTE_TYPE_S3 ? "AccessKeyId" : "User",
                                rc->type == REMOTE_TYPE_S3 ? "SecretAccessKey" : "Password", &c);
                explicit_bzero(data, size);
                free(data);
                if (r == -ENOMEM)
                        return r;
                if (r < 0 || !c.user || !c.secret || has_space_or_control(c.user) || strchr(c.user, ':'))
                        return why(ret_why, -EINVAL, "The credentials file %s of remote %s must hold two lines, %s",
                                   rc->credentials_file, rc->name,
                                   rc->type == REMOTE_TYPE_S3 ? "AccessKeyId=… and SecretAccessKey=…" :
                                   "User=… and Password=… (the user without ':')");
        }
        *ret = c;
        c = (RemoteCredentials) {};
        return 0;
}
