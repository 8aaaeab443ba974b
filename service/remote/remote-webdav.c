/* SPDX-License-Identifier: GPL-2.0-or-later */
/* WebDAV (RFC 4918): MKCOL of missing collections, PUT to a temporary name, the size (and with Verify=full
 * the content) checked, then MOVE to the backup's name; PROPFIND to list, GET, DELETE. */

#include <openssl/evp.h>

#include "names.h"
#include "remote/remote-serve.h"
#include "remote/remote-xml.h"

static const char propfind_body[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<d:propfind xmlns:d=\"DAV:\"><d:prop><d:resourcetype/><d:getcontentlength/><d:getlastmodified/>"
        "</d:prop></d:propfind>\n";

/* <URL>/<instance>/ and <URL>/<instance>/<file>. Names are plain ASCII (names.h): nothing to escape. */
static int coll_url(RemoteJob *j, const char *file, char **ret) {
        return asprintf(ret, "%s/%s/%s", j->url, j->instance, strempty(file)) < 0 ? -ENOMEM : 0;
}

static int mkcol(RemoteJob *j, const char *url, long *ret_status) {
        RemoteCall c = { .method = "MKCOL", .url = url, .out_fd = -1 };
        int r;

        r = remote_call(j, &c, "Creating a folder on the remote");
        *ret_status = c.status;
        remote_call_done(&c);
        return r;
}

/* The instance's collection, and those above it that are missing (409 Conflict: a parent is missing). */
static int make_collections(RemoteJob *j) {
        _cleanup_free_ char *url = NULL;
        char *path;
        long status;
        int r;

        r = coll_url(j, NULL, &url);
        if (r < 0)
                return r;
        r = mkcol(j, url, &status);
        if (r < 0)
                return r;
        if (status == 201 || status == 405 || status == 301)   /* created, or there already */
                return 0;
        if (status != 409) {
                RemoteCall c = { .status = status };
                return remote_fail_status(j, &c, "Creating the remote's folder");
        }
        /* Top down, from the first folder of the URL's path; url ends with '/'. */
        path = strchr(strstr(url, "://") + 3, '/');
        for (char *p = strchr(path + 1, '/'); p; p = strchr(p + 1, '/')) {
                char save = p[1];

                p[1] = 0;
                r = mkcol(j, url, &status);
                p[1] = save;
                if (r < 0)
                        return r;
                if (status != 201 && status != 405 && status != 301 && status != 409) {
                        RemoteCall c = { .status = status };
                        return remote_fail_status(j, &c, "Creating the remote's folders");
                }
        }
        return 0;
}

static int head_size(RemoteJob *j, const char *url, int64_t *ret) {
        RemoteCall c = { .method = "HEAD", .url = url, .out_fd = -1 };
        int r;

        r = remote_call(j, &c, "Checking the upload");
        if (r >= 0 && c.status != 200)
                r = remote_fail_status(j, &c, "Checking the upload");
        *ret = c.length_got;
        remote_call_done(&c);
        return r;
}

static int webdav_put(RemoteJob *j) {
        _cleanup_free_ char *temp = NULL, *temp_url = NULL, *final_url = NULL, *dest = NULL;
        RemoteCall c = { .url = NULL, .out_fd = -1, .upload = true, .length = j->size, .progress = true };
        int64_t got;
        int r;

        r = make_collections(j);
        if (r < 0)
                return r;
        r = remote_temp_name(j->name, &temp);
        if (r >= 0)
                r = coll_url(j, temp, &temp_url);
        if (r >= 0)
                r = coll_url(j, j->name, &final_url);
        if (r < 0)
                return r;
        c.url = temp_url;
        /* No "Expect: 100-continue" wait with servers that never answer it. */
        c.headers = curl_slist_append(NULL, "Expect:");
        r = remote_call(j, &c, "Uploading");
        if (r >= 0 && c.status != 201 && c.status != 204 && c.status != 200)
                r = remote_fail_status(j, &c, "Uploading");
        remote_call_done(&c);
        if (r >= 0)
                r = head_size(j, temp_url, &got);
        if (r >= 0 && got != (int64_t) j->size)
                r = remote_fail(j, -EIO, "verify", "The upload is incomplete on the remote: %lld of %llu bytes arrived",
                                (long long) got, (unsigned long long) j->size);
        if (r >= 0 && j->verify_full)
                r = remote_read_back(j, temp_url, true);
        if (r >= 0) {
                RemoteCall m = { .method = "MOVE", .url = temp_url, .out_fd = -1 };

                if (asprintf(&dest, "Destination: %s", final_url) < 0)
                        return -ENOMEM;
                m.headers = curl_slist_append(NULL, dest);
                m.headers = curl_slist_append(m.headers, "Overwrite: T");
                r = remote_call(j, &m, "Renaming the upload");
                if (r >= 0 && m.status != 201 && m.status != 204)
                        r = remote_fail_status(j, &m, "Renaming the upload");
                remote_call_done(&m);
        }
        if (r < 0) {
                /* Best effort: a leftover temporary file is hidden and never taken for a backup. */
                RemoteCall d = { .method = "DELETE", .url = temp_url, .out_fd = -1 };
                _cleanup_free_ char *keep_error = TAKE_PTR(j->error), *keep_kind = TAKE_PTR(j->kind);

                j->cleaning = true;
                (void) remote_call(j, &d, "Removing the partial upload");
                remote_call_done(&d);
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

static int webdav_list(RemoteJob *j) {
        _cleanup_free_ char *url = NULL;
        RemoteCall c = { .method = "PROPFIND", .out_fd = -1, .collect = true, .body = propfind_body,
                         .body_size = sizeof(propfind_body) - 1 };
        const char *p, *end, *in, *in_end;
        int r;

        r = coll_url(j, NULL, &url);
        if (r < 0)
                return r;
        c.url = url;
        c.headers = curl_slist_append(NULL, "Depth: 1");
        c.headers = curl_slist_append(c.headers, "Content-Type: application/xml; charset=utf-8");
        r = remote_call(j, &c, "Listing the remote");
        if (r >= 0 && c.status == 404) {        /* nothing uploaded for this instance yet */
                remote_call_done(&c);
                return 0;
        }
        if (r >= 0 && c.status != 207)
                r = remote_fail_status(j, &c, "Listing the remote");
        for (p = c.resp, end = c.resp ? c.resp + c.resp_size : NULL;
             r >= 0 && p && xml_find(p, end, "response", &in, &in_end, &p);) {
                _cleanup_free_ char *href = xml_text(in, in_end, "href"), *len = xml_text(in, in_end, "getcontentlength"),
                        *mod = xml_text(in, in_end, "getlastmodified"), *name = NULL;
                const char *ci, *ce, *cn, *base;
                size_t n;

                if (!href || xml_find(in, in_end, "collection", &ci, &ce, &cn))
                        continue;
                n = strlen(href);
                while (n > 0 && href[n - 1] == '/')
                        n--;
                href[n] = 0;
                base = strrchr(href, '/');
                base = base ? base + 1 : href;
                name = url_unescape(base, strlen(base));
                if (!name || !backup_name_is_valid(name))
                        continue;
                r = remote_add_entry(j, name, len ? strtoull(len, NULL, 10) : 0, time_parse_http(mod));
        }
        remote_call_done(&c);
        return r;
}

static int webdav_get(RemoteJob *j) {
        _cleanup_free_ char *url = NULL;
        RemoteCall c = { .out_fd = j->fd, .max_out = j->max_size, .progress = true };
        int r;

        r = coll_url(j, j->name, &url);
        if (r < 0)
                return r;
        c.url = url;
        r = remote_call(j, &c, "Downloading");
        if (r >= 0 && c.status != 200)
                r = remote_fail_status(j, &c, "Downloading");
        if (r >= 0 && c.length_got >= 0 && (uint64_t) c.length_got != c.written)
                r = remote_fail(j, -EIO, "verify", "The download is incomplete: %llu of %lld bytes",
                                (unsigned long long) c.written, (long long) c.length_got);
        j->result_size = c.written;
        remote_call_done(&c);
        return r;
}

static int webdav_delete(RemoteJob *j) {
        _cleanup_free_ char *url = NULL;
        RemoteCall c = { .method = "DELETE", .out_fd = -1 };
        int r;

        r = coll_url(j, j->name, &url);
        if (r < 0)
                return r;
        c.url = url;
        r = remote_call(j, &c, "Deleting on the remote");
        if (r >= 0 && c.status != 204 && c.status != 200)
                r = remote_fail_status(j, &c, "Deleting on the remote");
        remote_call_done(&c);
        return r;
}

int remote_webdav_run(RemoteJob *j) {
        switch (j->op) {
        case REMOTE_OP_PUT:
                return webdav_put(j);
        case REMOTE_OP_LIST:
                return webdav_list(j);
        case REMOTE_OP_GET:
                return webdav_get(j);
        default:
                return webdav_delete(j);
        }
}
