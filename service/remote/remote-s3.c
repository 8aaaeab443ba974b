/* SPDX-License-Identifier: GPL-2.0-or-later */
/* S3 (path-style: <endpoint>/<bucket>/<prefix>), signed with SigV4 by libcurl. A PUT with Content-MD5 for an
 * archive up to one part, a multipart upload of 64 MiB parts (each with its Content-MD5; aborted on failure)
 * above: either way the object appears whole or not at all. ListObjectsV2 with continuation, GET, DELETE. */

#include <openssl/evp.h>

#include "names.h"
#include "remote/remote-serve.h"
#include "remote/remote-xml.h"

#define S3_PART_SIZE (64ULL * 1024ULL * 1024ULL)
#define S3_PARTS_MAX 10000ULL

/* RFC 3986 unreserved characters stay, everything else is %XX: what SigV4's canonical query expects. */
static char *s3_escape(const char *s) {
        char *t = malloc(strlen(s) * 3 + 1), *o = t;

        if (!t)
                return NULL;
        for (; *s; s++)
                if ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
                    strchr("-._~", *s))
                        *o++ = *s;
                else
                        o += sprintf(o, "%%%02X", (unsigned char) *s);
        *o = 0;
        return t;
}

static int object_url(RemoteJob *j, const char *query, char **ret) {
        return asprintf(ret, "%s/%s/%s%s%s", j->url, j->instance, j->name, query ? "?" : "", strempty(query)) < 0 ?
                -ENOMEM : 0;
}

static struct curl_slist *s3_headers(const char *extra) {
        /* curl's SigV4 does not add it, and S3 wants it: the body's integrity is Content-MD5's job. */
        struct curl_slist *h = curl_slist_append(NULL, "x-amz-content-sha256: UNSIGNED-PAYLOAD");

        /* No "Expect:" to switch off 100-continue here: curl 7.88 signs the empty header it then leaves out,
         * and the signature no longer matches. */
        if (extra)
                h = curl_slist_append(h, extra);
        return h;
}

static int md5_header(RemoteJob *j, uint64_t offset, uint64_t length, char **ret) {
        unsigned char md[EVP_MAX_MD_SIZE];
        _cleanup_free_ char *b64 = NULL;
        unsigned n;
        int r;

        r = remote_digest_fd(j, EVP_md5(), offset, length, md, &n);
        if (r < 0)
                return r;
        b64 = remote_base64(md, n);
        if (!b64 || asprintf(ret, "Content-MD5: %s", b64) < 0)
                return -ENOMEM;
        return 0;
}

static int s3_call(RemoteJob *j, RemoteCall *c, const char *what, long ok1, long ok2) {
        int r = remote_call(j, c, what);

        if (r >= 0 && c->status != ok1 && c->status != ok2)
                r = remote_fail_status(j, c, what);
        return r;
}

static int put_single(RemoteJob *j, const char *url) {
        _cleanup_free_ char *md5 = NULL;
        RemoteCall c = { .url = url, .out_fd = -1, .collect = true, .upload = true, .length = j->size, .progress = true };
        int r;

        r = md5_header(j, 0, j->size, &md5);
        if (r < 0)
                return r;
        c.headers = s3_headers(md5);
        r = s3_call(j, &c, "Uploading", 200, 200);
        remote_call_done(&c);
        return r;
}

static int abort_multipart(RemoteJob *j, const char *upload_id) {
        _cleanup_free_ char *q = NULL, *url = NULL, *esc = s3_escape(upload_id);
        _cleanup_free_ char *keep_error = TAKE_PTR(j->error), *keep_kind = TAKE_PTR(j->kind);
        RemoteCall c = { .method = "DELETE", .out_fd = -1, .collect = true };

        if (esc && asprintf(&q, "uploadId=%s", esc) >= 0 && object_url(j, q, &url) >= 0) {
                c.url = url;
                c.headers = s3_headers(NULL);
                (void) remote_call(j, &c, "Aborting the multipart upload");
                remote_call_done(&c);
        }
        free(j->error);
        free(j->kind);
        j->error = TAKE_PTR(keep_error);
        j->kind = TAKE_PTR(keep_kind);
        return 0;
}

static int put_multipart(RemoteJob *j) {
        _cleanup_free_ char *url = NULL, *upload_id = NULL, *esc = NULL, *complete = NULL;
        RemoteCall c = { .method = "POST", .body = "", .body_size = 0, .out_fd = -1, .collect = true };
        uint64_t parts = (j->size + S3_PART_SIZE - 1) / S3_PART_SIZE;
        size_t complete_size = 0;
        FILE *f;
        int r;

        if (parts > S3_PARTS_MAX)
                return remote_fail(j, -EFBIG, "quota", "The backup is too large for S3 (more than %llu parts)",
                                   S3_PARTS_MAX);
        r = object_url(j, "uploads=", &url);
        if (r < 0)
                return r;
        c.url = url;
        c.headers = s3_headers(NULL);
        r = s3_call(j, &c, "Starting the multipart upload", 200, 200);
        if (r >= 0 && !(upload_id = xml_text(c.resp, c.resp + c.resp_size, "UploadId")))
                r = remote_fail(j, -EIO, "protocol", "Starting the multipart upload failed: the server sent no "
                                "UploadId");
        remote_call_done(&c);
        if (r < 0)
                return r;
        esc = s3_escape(upload_id);
        f = open_memstream(&complete, &complete_size);
        if (!esc || !f)
                return -ENOMEM;
        fputs("<CompleteMultipartUpload>", f);
        for (uint64_t i = 0; r >= 0 && i < parts; i++) {
                _cleanup_free_ char *part_url = NULL, *md5 = NULL, *q = NULL;
                RemoteCall p = { .out_fd = -1, .collect = true, .upload = true, .progress = true,
                                 .offset = i * S3_PART_SIZE };

                p.length = j->size - p.offset < S3_PART_SIZE ? j->size - p.offset : S3_PART_SIZE;
                r = md5_header(j, p.offset, p.length, &md5);
                if (r < 0)
                        break;
                /* The query in SigV4's canonical order: partNumber before uploadId. */
                if (asprintf(&q, "partNumber=%llu&uploadId=%s", (unsigned long long) i + 1, esc) < 0 ||
                    object_url(j, q, &part_url) < 0) {
                        r = -ENOMEM;
                        break;
                }
                p.url = part_url;
                p.headers = s3_headers(md5);
                j->progress_base = p.offset;
                r = s3_call(j, &p, "Uploading a part", 200, 200);
                if (r >= 0 && !p.etag)
                        r = remote_fail(j, -EIO, "protocol", "Uploading a part failed: the server sent no ETag");
                if (r >= 0)
                        fprintf(f, "<Part><PartNumber>%llu</PartNumber><ETag>%s</ETag></Part>",
                                (unsigned long long) i + 1, p.etag);
                remote_call_done(&p);
        }
        fputs("</CompleteMultipartUpload>", f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r >= 0) {
                _cleanup_free_ char *q = NULL, *done_url = NULL;
                RemoteCall d = { .method = "POST", .body = complete, .body_size = complete_size, .out_fd = -1,
                                 .collect = true };

                if (asprintf(&q, "uploadId=%s", esc) < 0 || object_url(j, q, &done_url) < 0)
                        return -ENOMEM;
                d.url = done_url;
                d.headers = s3_headers("Content-Type: application/xml");
                r = s3_call(j, &d, "Completing the multipart upload", 200, 200);
                /* S3 may answer 200 and put the error in the body. */
                if (r >= 0 && d.resp && strstr(d.resp, "<Error>"))
                        r = remote_fail(j, -EIO, "protocol", "Completing the multipart upload failed: %s",
                                        d.resp);
                remote_call_done(&d);
        }
        if (r < 0)
                abort_multipart(j, upload_id);
        return r;
}

static int s3_put(RemoteJob *j) {
        _cleanup_free_ char *url = NULL;
        RemoteCall h = { .method = "HEAD", .out_fd = -1 };
        int r;

        r = object_url(j, NULL, &url);
        if (r < 0)
                return r;
        r = j->size <= S3_PART_SIZE ? put_single(j, url) : put_multipart(j);
        if (r < 0)
                return r;
        j->progress_base = 0;
        /* What the server holds now. */
        h.url = url;
        h.headers = s3_headers(NULL);
        r = s3_call(j, &h, "Checking the upload", 200, 200);
        if (r >= 0 && h.length_got != (int64_t) j->size)
                r = remote_fail(j, -EIO, "verify", "The object on the remote has %lld bytes, the backup %llu",
                                (long long) h.length_got, (unsigned long long) j->size);
        remote_call_done(&h);
        if (r >= 0 && j->verify_full) {
                unsigned char local[EVP_MAX_MD_SIZE], remote[EVP_MAX_MD_SIZE];
                unsigned nl, nr;
                EVP_MD_CTX *ctx = EVP_MD_CTX_new();
                RemoteCall g = { .url = url, .out_fd = -1, .out_hash = ctx };

                if (!ctx || EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1)
                        r = -ENOMEM;
                if (r >= 0)
                        r = remote_digest_fd(j, EVP_sha256(), 0, j->size, local, &nl);
                g.headers = s3_headers(NULL);
                if (r >= 0)
                        r = s3_call(j, &g, "Reading the upload back", 200, 200);
                if (r >= 0 && (EVP_DigestFinal_ex(ctx, remote, &nr) != 1 || nr != nl || memcmp(local, remote, nl)))
                        r = remote_fail(j, -EIO, "verify", "The copy on the remote differs from the backup (SHA-256 "
                                        "read back)");
                EVP_MD_CTX_free(ctx);
                remote_call_done(&g);
        }
        if (r < 0)
                return r;
        j->result_size = j->size;
        j->result_url = TAKE_PTR(url);
        return 0;
}

static int s3_list(RemoteJob *j) {
        _cleanup_free_ char *token = NULL, *bucket_url = NULL, *prefix = NULL, *esc_prefix = NULL;
        const char *host = strstr(j->url, "://") + 3, *bucket = strchr(host, '/') + 1, *rest = strchr(bucket, '/');
        int r = 0;

        /* <endpoint>/<bucket> and the key prefix "<prefix>/<instance>/". */
        if (asprintf(&bucket_url, "%.*s", (int) (rest ? rest - j->url : (ptrdiff_t) strlen(j->url)), j->url) < 0 ||
            asprintf(&prefix, "%s%s%s/", rest ? rest + 1 : "", rest ? "/" : "", j->instance) < 0 ||
            !(esc_prefix = s3_escape(prefix)))
                return -ENOMEM;
        for (unsigned pages = 0; pages < 1000; pages++) {
                _cleanup_free_ char *url = NULL, *esc_token = NULL, *truncated = NULL;
                RemoteCall c = { .out_fd = -1, .collect = true };
                const char *p, *in, *in_end;

                if (token && !(esc_token = s3_escape(token)))
                        return -ENOMEM;
                /* Parameters in SigV4's canonical (sorted) order. */
                if (asprintf(&url, "%s?%s%s%slist-type=2&prefix=%s", bucket_url, token ? "continuation-token=" : "",
                             strempty(esc_token), token ? "&" : "", esc_prefix) < 0)
                        return -ENOMEM;
                c.url = url;
                c.headers = s3_headers(NULL);
                r = s3_call(j, &c, "Listing the remote", 200, 200);
                for (p = c.resp; r >= 0 && p && xml_find(p, c.resp + c.resp_size, "Contents", &in, &in_end, &p);) {
                        _cleanup_free_ char *key = xml_text(in, in_end, "Key"), *size = xml_text(in, in_end, "Size"),
                                *mod = xml_text(in, in_end, "LastModified");
                        const char *name = key ? startswith(key, prefix) : NULL;

                        if (name && backup_name_is_valid(name))
                                r = remote_add_entry(j, name, size ? strtoull(size, NULL, 10) : 0,
                                                     time_parse_iso8601(mod));
                }
                truncated = c.resp ? xml_text(c.resp, c.resp + c.resp_size, "IsTruncated") : NULL;
                free(token);
                token = streq_ptr(truncated, "true") ? xml_text(c.resp, c.resp + c.resp_size, "NextContinuationToken") :
                        NULL;
                remote_call_done(&c);
                if (r < 0 || !token)
                        return r;
        }
        return remote_fail(j, -E2BIG, "protocol", "The remote lists too many objects");
}

static int s3_get(RemoteJob *j) {
        _cleanup_free_ char *url = NULL;
        RemoteCall c = { .out_fd = j->fd, .max_out = j->max_size, .progress = true };
        int r;

        r = object_url(j, NULL, &url);
        if (r < 0)
                return r;
        c.url = url;
        c.headers = s3_headers(NULL);
        r = s3_call(j, &c, "Downloading", 200, 200);
        if (r >= 0 && c.length_got >= 0 && (uint64_t) c.length_got != c.written)
                r = remote_fail(j, -EIO, "verify", "The download is incomplete: %llu of %lld bytes",
                                (unsigned long long) c.written, (long long) c.length_got);
        j->result_size = c.written;
        remote_call_done(&c);
        return r;
}

static int s3_delete(RemoteJob *j) {
        _cleanup_free_ char *url = NULL;
        RemoteCall h = { .method = "HEAD", .out_fd = -1 }, c = { .method = "DELETE", .out_fd = -1, .collect = true };
        int r;

        r = object_url(j, NULL, &url);
        if (r < 0)
                return r;
        /* S3 answers a DELETE of nothing with success: ask first, so that a wrong name is said to be one. */
        h.url = c.url = url;
        h.headers = s3_headers(NULL);
        r = s3_call(j, &h, "Deleting on the remote", 200, 200);
        remote_call_done(&h);
        if (r < 0)
                return r;
        c.headers = s3_headers(NULL);
        r = s3_call(j, &c, "Deleting on the remote", 204, 200);
        remote_call_done(&c);
        return r;
}

int remote_s3_run(RemoteJob *j) {
        switch (j->op) {
        case REMOTE_OP_PUT:
                return s3_put(j);
        case REMOTE_OP_LIST:
                return s3_list(j);
        case REMOTE_OP_GET:
                return s3_get(j);
        default:
                return s3_delete(j);
        }
}
