/* SPDX-License-Identifier: GPL-2.0-or-later */
/* SFTP through libcurl and libssh2: the host key pinned by its SHA-256 (no trust on first use), login with
 * an ed25519 key (libssh2 1.10 cannot sign with RSA keys the way OpenSSH 9 wants). Upload to a hidden
 * temporary name in the instance's folder (created when missing), its size checked in a listing (and its
 * content read back with Verify=full), then renamed; an older copy under the name is renamed aside first and
 * removed after (put back if the new one cannot take the name). */

#include <openssl/evp.h>

#include "names.h"
#include "remote/remote-serve.h"
#include "remote/remote-xml.h"

static int file_url(RemoteJob *j, const char *file, char **ret) {
        return asprintf(ret, "%s/%s/%s", j->url, j->instance, strempty(file)) < 0 ? -ENOMEM : 0;
}

/* The path the server's SFTP commands take: the URL's path decoded; "/~/x" is x in the user's home (the
 * session's folder), as in curl's URLs. */
static int server_path(RemoteJob *j, const char *file, char **ret) {
        const char *p = strchr(strstr(j->url, "://") + 3, '/');
        _cleanup_free_ char *dec = url_unescape(p, strlen(p));
        const char *base;

        if (!dec)
                return -ENOMEM;
        base = streq(dec, "/~") ? "." : startswith(dec, "/~/") ?: dec;
        /* Names and the path are quoted for the command line curl parses; the path has no '"' (URL=). */
        return asprintf(ret, "\"%s/%s/%s\"", base, j->instance, file) < 0 ? -ENOMEM : 0;
}

/* Commands on the instance's folder, without a transfer. */
static int quote(RemoteJob *j, struct curl_slist *cmds, const char *what) {
        _cleanup_free_ char *url = NULL;
        RemoteCall c = { .out_fd = -1, .nobody = true, .quote = cmds };
        int r;

        r = file_url(j, NULL, &url);
        if (r < 0) {
                curl_slist_free_all(cmds);
                return r;
        }
        c.url = url;
        r = remote_call(j, &c, what);
        remote_call_done(&c);
        return r;
}

/* One line of the server's long listing ("-rw------- 1 u g SIZE Mon DD HH:MM NAME"): regular files only. */
static bool parse_long_line(char *line, char **ret_name, uint64_t *ret_size) {
        char *tok[9], *save = NULL;
        int n = 0;

        if (line[0] != '-')
                return false;
        for (char *t = strtok_r(line, " \t", &save); t && n < 9; t = n < 9 ? strtok_r(NULL, " \t", &save) : NULL)
                tok[n++] = t;
        if (n < 9)
                return false;
        /* The name is the rest of the line (ours have no spaces, but stay exact). */
        tok[8][strcspn(tok[8], "\r")] = 0;
        *ret_name = tok[8];
        *ret_size = strtoull(tok[4], NULL, 10);
        return true;
}

/* The instance's folder: on_entry for each regular file. A folder not there yet is empty. */
typedef int (*entry_fn)(RemoteJob *j, const char *name, uint64_t size, void *userdata);
static int list_dir(RemoteJob *j, entry_fn on_entry, void *userdata) {
        _cleanup_free_ char *url = NULL;
        RemoteCall c = { .out_fd = -1, .collect = true };
        int r;

        r = file_url(j, NULL, &url);
        if (r < 0)
                return r;
        c.url = url;
        r = remote_call(j, &c, "Listing the remote");
        if (r == -ENOENT) {
                free(j->error);
                free(j->kind);
                j->error = j->kind = NULL;
                remote_call_done(&c);
                return 0;
        }
        for (char *line = c.resp, *next; r >= 0 && line && *line; line = next) {
                char *name;
                uint64_t size;

                next = strchr(line, '\n');
                if (next)
                        *next++ = 0;
                if (parse_long_line(line, &name, &size))
                        r = on_entry(j, name, size, userdata);
        }
        remote_call_done(&c);
        return r;
}

typedef struct Find {
        const char *name;
        int64_t size;
        const char *also;               /* and whether this one is there */
        bool also_found;
} Find;

static int find_entry(RemoteJob *j, const char *name, uint64_t size, void *userdata) {
        Find *f = userdata;

        if (streq(name, f->name))
                f->size = (int64_t) size;
        if (f->also && streq(name, f->also))
                f->also_found = true;
        return 0;
}

static int list_entry(RemoteJob *j, const char *name, uint64_t size, void *userdata) {
        _cleanup_free_ char *url = NULL;
        RemoteCall c = { .out_fd = -1, .nobody = true, .filetime = true, .range = "0-0" };
        int r;

        if (!backup_name_is_valid(name))
                return 0;
        /* The listing's time has no seconds (and no year for recent files): ask for the real one. */
        r = file_url(j, name, &url);
        if (r < 0)
                return r;
        c.url = url;
        r = remote_call(j, &c, "Listing the remote");
        remote_call_done(&c);
        if (r < 0)
                return r;
        return remote_add_entry(j, name, size, c.filetime_got > 0 ? c.filetime_got * 1000000 : 0);
}

static int sftp_put(RemoteJob *j) {
        _cleanup_free_ char *temp = NULL, *temp_url = NULL, *final_url = NULL, *temp_path = NULL, *final_path = NULL,
                *old = NULL, *old_path = NULL, *aside = NULL, *mv = NULL, *back = NULL, *rm = NULL;
        RemoteCall c = { .out_fd = -1, .upload = true, .length = j->size, .progress = true, .create_dirs = true };
        Find f = { .size = -1 };
        int r;

        r = remote_temp_name(j->name, &temp);
        if (r >= 0)
                r = file_url(j, temp, &temp_url);
        if (r >= 0)
                r = file_url(j, j->name, &final_url);
        if (r >= 0)
                r = server_path(j, temp, &temp_path);
        if (r >= 0)
                r = server_path(j, j->name, &final_path);
        if (r < 0)
                return r;
        c.url = temp_url;
        r = remote_call(j, &c, "Uploading");
        remote_call_done(&c);
        f.name = temp;
        f.also = j->name;
        if (r >= 0)
                r = list_dir(j, find_entry, &f);
        if (r >= 0 && f.size != (int64_t) j->size)
                r = remote_fail(j, -EIO, "verify", "The upload is incomplete on the remote: %lld of %llu bytes arrived",
                                (long long) f.size, (unsigned long long) j->size);
        if (r >= 0 && j->verify_full)
                r = remote_read_back(j, temp_url, false);
        if (r >= 0 && asprintf(&mv, "rename %s %s", temp_path, final_path) < 0)
                return -ENOMEM;
        if (r >= 0 && !f.also_found)
                r = quote(j, curl_slist_append(NULL, mv), "Renaming the upload");
        else if (r >= 0) {
                /* SFTP's rename does not replace, and the name must never be without a backup: the older copy is
                 * renamed aside (hidden, never listed), the new one takes the name, then the old one goes. If the
                 * second rename fails, the old copy is put back. */
                if (asprintf(&old, ".%s.old-%s", j->name, strrchr(temp, '-') + 1) < 0 ||
                    server_path(j, old, &old_path) < 0 ||
                    asprintf(&aside, "rename %s %s", final_path, old_path) < 0 ||
                    asprintf(&back, "*rename %s %s", old_path, final_path) < 0 ||
                    asprintf(&rm, "*rm %s", old_path) < 0)
                        return -ENOMEM;
                r = quote(j, curl_slist_append(curl_slist_append(NULL, aside), mv), "Renaming the upload");
                if (r >= 0)
                        (void) quote(j, curl_slist_append(NULL, rm), "Removing the older copy");
                else {
                        _cleanup_free_ char *keep_error = TAKE_PTR(j->error), *keep_kind = TAKE_PTR(j->kind);

                        (void) quote(j, curl_slist_append(NULL, back), "Putting the older copy back");
                        free(j->error);
                        free(j->kind);
                        j->error = TAKE_PTR(keep_error);
                        j->kind = TAKE_PTR(keep_kind);
                }
        }
        if (r < 0) {
                _cleanup_free_ char *keep_error = TAKE_PTR(j->error), *keep_kind = TAKE_PTR(j->kind), *rmt = NULL;

                j->cleaning = true;
                if (asprintf(&rmt, "*rm %s", temp_path) >= 0)
                        (void) quote(j, curl_slist_append(NULL, rmt), "Removing the partial upload");
                free(j->error);
                free(j->kind);
                j->error = TAKE_PTR(keep_error);
                j->kind = TAKE_PTR(keep_kind);
                return r;
        }
        j->result_size = j->size;
        j->result_url = TAKE_PTR(final_url);
        return 0;
}

static int sftp_get(RemoteJob *j) {
        _cleanup_free_ char *url = NULL;
        RemoteCall c = { .out_fd = j->fd, .max_out = j->max_size, .progress = true };
        int r;

        r = file_url(j, j->name, &url);
        if (r < 0)
                return r;
        c.url = url;
        r = remote_call(j, &c, "Downloading");
        if (r >= 0 && c.length_got >= 0 && (uint64_t) c.length_got != c.written)
                r = remote_fail(j, -EIO, "verify", "The download is incomplete: %llu of %lld bytes",
                                (unsigned long long) c.written, (long long) c.length_got);
        j->result_size = c.written;
        remote_call_done(&c);
        return r;
}

static int sftp_delete(RemoteJob *j) {
        _cleanup_free_ char *path = NULL, *rm = NULL;
        Find f = { .name = j->name, .size = -1 };
        int r;

        r = list_dir(j, find_entry, &f);
        if (r < 0)
                return r;
        if (f.size < 0)
                return remote_fail(j, -ENOENT, "notfound", "There is no %s of instance %s on remote %s", j->name,
                                   j->instance, j->remote);
        r = server_path(j, j->name, &path);
        if (r < 0 || asprintf(&rm, "rm %s", path) < 0)
                return -ENOMEM;
        return quote(j, curl_slist_append(NULL, rm), "Deleting on the remote");
}

int remote_sftp_run(RemoteJob *j) {
        switch (j->op) {
        case REMOTE_OP_PUT:
                return sftp_put(j);
        case REMOTE_OP_LIST:
                return list_dir(j, list_entry, NULL);
        case REMOTE_OP_GET:
                return sftp_get(j);
        default:
                return sftp_delete(j);
        }
}
