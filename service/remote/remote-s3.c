/* SPDX-License-Identifier: GPL-2.0-or-later */
/* S3 (path-style: <endpoint>/<bucket>/<prefix>), signed with SigV4 by libcurl. One PUT with its
 * x-amz-checksum-crc32 for an archive up to MultipartThreshold= (2 GiB), a multipart upload of PartSize=
 * (64 MiB) parts above, each part with its Content-MD5, hashed while the part before it is sent; aborted on
 * failure. Either way the server checks what it got against the checksum before the object exists, and the
 * object appears whole or not at all. ListObjectsV2 with continuation, GET, DELETE. */

#include <libdeflate.h>
#include <openssl/evp.h>
#include <pthread.h>

#include "names.h"
#include "remote/remote-serve.h"
#include "remote/remote-xml.h"

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

static int checksum_header(const char *name, const unsigned char *md, unsigned n, char **ret) {
        _cleanup_free_ char *b64 = remote_base64(md, n);

        if (!b64 || asprintf(ret, "%s: %s", name, b64) < 0)
                return -ENOMEM;
        return 0;
}

static int s3_call(RemoteJob *j, RemoteCall *c, const char *what, long ok1, long ok2) {
        int r = remote_call(j, c, what);

        if (r >= 0 && c->status != ok1 && c->status != ok2)
                r = remote_fail_status(j, c, what);
        return r;
}

/* The CRC-32 of the whole archive, at memory speed (libdeflate), for x-amz-checksum-crc32. */
static int archive_crc32(RemoteJob *j, uint32_t *ret) {
        _cleanup_free_ uint8_t *buf = malloc(1024 * 1024);
        uint64_t offset = 0;
        uint32_t crc = 0;

        if (!buf)
                return remote_fail(j, -ENOMEM, "local", "Out of memory");
        while (offset < j->size) {
                ssize_t n = pread_full(j->fd, buf, MIN(j->size - offset, (uint64_t) 1024 * 1024), offset);

                if (n <= 0)
                        return remote_fail(j, n < 0 ? (int) n : -EIO, "local", "Cannot read the backup: %s",
                                           strerror(n < 0 ? (int) -n : EIO));
                crc = libdeflate_crc32(crc, buf, (size_t) n);
                offset += (uint64_t) n;
        }
        *ret = crc;
        return 0;
}

/* One PUT with x-amz-checksum-crc32, which S3 verifies before it stores the object. The header goes
 * before the body, so the whole archive is read for it first: CRC-32 (the AWS SDKs' default) takes a
 * fraction of a second for 2 GiB where SHA-256 or MD5 would hold the upload back by seconds. It guards
 * against corruption on the way; TLS guards against tampering. */
static int put_single(RemoteJob *j, const char *url) {
        _cleanup_free_ char *sum = NULL;
        RemoteCall c = { .url = url, .out_fd = -1, .collect = true, .upload = true, .length = j->size, .progress = true };
        unsigned char be[4];
        uint32_t crc = 0;
        int r;

        r = archive_crc32(j, &crc);
        if (r < 0)
                return r;
        be[0] = (unsigned char) (crc >> 24);
        be[1] = (unsigned char) (crc >> 16);
        be[2] = (unsigned char) (crc >> 8);
        be[3] = (unsigned char) crc;
        r = checksum_header("x-amz-checksum-crc32", be, sizeof(be), &sum);
        if (r < 0)
                return r;
        c.headers = s3_headers(sum);
        r = s3_call(j, &c, "Uploading", 200, 200);
        remote_call_done(&c);
        return r;
}

/* The MD5 of one part, computed in a thread of its own while the part before it is being sent. */
typedef struct PartHash {
        int fd;
        uint64_t offset, length;
        unsigned char md[EVP_MAX_MD_SIZE];
        unsigned n;
        int r;
        pthread_t thread;
        bool running;
} PartHash;

static void *part_hash_thread(void *userdata) {
        PartHash *h = userdata;

        h->r = remote_digest_range(h->fd, EVP_md5(), h->offset, h->length, h->md, &h->n);
        return NULL;
}

static int part_hash_start(PartHash *h, int fd, uint64_t offset, uint64_t length) {
        *h = (PartHash) { .fd = fd, .offset = offset, .length = length };
        if (pthread_create(&h->thread, NULL, part_hash_thread, h) != 0) {
                /* No thread: hash here. */
                part_hash_thread(h);
                return 0;
        }
        h->running = true;
        return 0;
}

static int part_hash_wait(PartHash *h) {
        if (h->running) {
                pthread_join(h->thread, NULL);
                h->running = false;
        }
        return h->r;
}

static int abort_multipart(RemoteJob *j, const char *upload_id) {
        _cleanup_free_ char *q = NULL, *url = NULL, *esc = s3_escape(upload_id);
        _cleanup_free_ char *keep_error = TAKE_PTR(j->error), *keep_kind = TAKE_PTR(j->kind);
        RemoteCall c = { .method = "DELETE", .out_fd = -1, .collect = true };

        j->cleaning = true;
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
        uint64_t part_size = j->part_size, parts = (j->size + part_size - 1) / part_size;
        PartHash hash[2] = {};
        size_t complete_size = 0;
        FILE *f;
        int r;

        if (parts > S3_PARTS_MAX)
                return remote_fail(j, -EFBIG, "quota", "The backup is too large for S3 in parts of %llu MiB (more "
                                   "than %llu parts): raise PartSize= of remote %s",
                                   (unsigned long long) (part_size >> 20), S3_PARTS_MAX, j->remote);
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
        if (!esc || !f) {
                if (f)
                        fclose(f);
                abort_multipart(j, upload_id);
                return -ENOMEM;
        }
        fputs("<CompleteMultipartUpload>", f);
        /* Part i's checksum is in hash[i % 2]; part i + 1's is computed while part i is sent. */
        part_hash_start(&hash[0], j->fd, 0, MIN(part_size, j->size));
        for (uint64_t i = 0; r >= 0 && i < parts; i++) {
                _cleanup_free_ char *part_url = NULL, *md5 = NULL, *q = NULL;
                RemoteCall p = { .out_fd = -1, .collect = true, .upload = true, .progress = true,
                                 .offset = i * part_size };
                PartHash *h = &hash[i % 2];

                p.length = MIN(part_size, j->size - p.offset);
                r = part_hash_wait(h);
                if (r < 0) {
                        r = remote_fail(j, r, "local", "Cannot read the backup: %s", strerror(-r));
                        break;
                }
                r = checksum_header("Content-MD5", h->md, h->n, &md5);
                if (r < 0)
                        break;
                if (i + 1 < parts)
                        part_hash_start(&hash[(i + 1) % 2], j->fd, p.offset + p.length,
                                        MIN(part_size, j->size - p.offset - p.length));
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
        /* A thread still hashing when a part failed. */
        (void) part_hash_wait(&hash[0]);
        (void) part_hash_wait(&hash[1]);
        fputs("</CompleteMultipartUpload>", f);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r >= 0) {
                _cleanup_free_ char *q = NULL, *done_url = NULL;
                RemoteCall d = { .method = "POST", .body = complete, .body_size = complete_size, .out_fd = -1,
                                 .collect = true };

                if (asprintf(&q, "uploadId=%s", esc) < 0 || object_url(j, q, &done_url) < 0)
                        r = -ENOMEM;
                else {
                        d.url = done_url;
                        d.headers = s3_headers("Content-Type: application/xml");
                        r = s3_call(j, &d, "Completing the multipart upload", 200, 200);
                        /* S3 may answer 200 and put the error in the body. */
                        if (r >= 0 && d.resp && strstr(d.resp, "<Error>"))
                                r = remote_fail(j, -EIO, "protocol", "Completing the multipart upload failed: %s",
                                                d.resp);
                        remote_call_done(&d);
                }
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
        r = j->size <= j->multipart_threshold ? put_single(j, url) : put_multipart(j);
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
