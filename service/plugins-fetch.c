/* SPDX-License-Identifier: GPL-2.0-or-later */
/* HTTP(S) downloads of the plugin repository and of plugin archives, with libcurl, with a limit on every
 * resource the other side controls: size, time, redirects, protocols. */

#include <curl/curl.h>
#include <time.h>

#include "build-config.h"
#include "plugins.h"

typedef struct Fetch {
        int fd;                         /* body to a file, or ... */
        char *buf;                      /* ... into memory */
        size_t size, allocated;
        uint64_t max_size;
        bool too_large;
        int write_error;                /* negative errno from writing to fd */
        bool canceled;
        const BackupCallbacks *cb;
        uint64_t last_progress_usec;
} Fetch;

/* curl calls back many times a second; the job hears about it at most this often. */
#define FETCH_PROGRESS_USEC (200U * 1000U)

static uint64_t now_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000ULL + (uint64_t) ts.tv_nsec / 1000ULL;
}

static size_t fetch_write(char *data, size_t size, size_t nmemb, void *userdata) {
        Fetch *f = userdata;
        size_t n = size * nmemb;

        /* Content-Length is checked by CURLOPT_MAXFILESIZE before the body starts; a body without
         * one (chunked, or up to the end of the connection) is stopped here. */
        if (n > f->max_size - f->size) {
                f->too_large = true;
                return 0;
        }
        if (f->fd >= 0) {
                int r = write_all(f->fd, data, n);
                if (r < 0) {
                        f->write_error = r;
                        return 0;
                }
        } else {
                if (f->size + n + 1 > f->allocated) {
                        size_t a = (f->size + n + 1) * 2;
                        char *t;

                        if (a > f->max_size + 1)
                                a = f->max_size + 1;
                        t = realloc(f->buf, a);
                        if (!t) {
                                f->write_error = -ENOMEM;
                                return 0;
                        }
                        f->buf = t;
                        f->allocated = a;
                }
                memcpy(f->buf + f->size, data, n);
                f->buf[f->size + n] = 0;
        }
        f->size += n;
        return n;
}

static int fetch_xferinfo(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                          curl_off_t ulnow) {
        Fetch *f = userdata;
        uint64_t now = now_usec();

        /* Also asks whether to go on, so a canceled job does not wait for a slow download (curl calls at
         * least once a second, also while nothing arrives). */
        if (now < f->last_progress_usec + FETCH_PROGRESS_USEC)
                return 0;
        f->last_progress_usec = now;
        if (backup_progress(f->cb, "downloading", (uint64_t) dlnow, dltotal > 0 ? (uint64_t) dltotal : 0) < 0) {
                f->canceled = true;
                return 1;
        }
        return 0;
}

static int fetch_setup(CURL *c, const char *url, const FetchLimits *limits, Fetch *f, char *errbuf) {
#define SET(opt, val)                                                   \
        do {                                                            \
                if (curl_easy_setopt(c, opt, val) != CURLE_OK)          \
                        return -EIO;                                    \
        } while (0)

        SET(CURLOPT_URL, url);
        SET(CURLOPT_ERRORBUFFER, errbuf);
        SET(CURLOPT_NOSIGNAL, 1L);
        SET(CURLOPT_USERAGENT, "opbackup/" PACKAGE_VERSION);
        /* A repository entry may point anywhere: never let it make us read a file:// or talk to other
         * protocols, not even through a redirect. */
        SET(CURLOPT_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
        SET(CURLOPT_FOLLOWLOCATION, 1L);
        SET(CURLOPT_MAXREDIRS, 5L);
        SET(CURLOPT_SSL_VERIFYPEER, 1L);
        SET(CURLOPT_SSL_VERIFYHOST, 2L);
        SET(CURLOPT_CONNECTTIMEOUT, 10L);
        SET(CURLOPT_TIMEOUT, limits->timeout_sec);
        /* Give up on a transfer that stalls (below 1 KiB/s for 30 s) long before the total limit. */
        SET(CURLOPT_LOW_SPEED_LIMIT, 1024L);
        SET(CURLOPT_LOW_SPEED_TIME, 30L);
        SET(CURLOPT_FAILONERROR, 1L);
        SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) limits->max_size);
        SET(CURLOPT_ACCEPT_ENCODING, "");      /* whatever curl can decode; limits apply to the decoded body */
        SET(CURLOPT_WRITEFUNCTION, fetch_write);
        SET(CURLOPT_WRITEDATA, f);
        SET(CURLOPT_XFERINFOFUNCTION, fetch_xferinfo);
        SET(CURLOPT_XFERINFODATA, f);
        SET(CURLOPT_NOPROGRESS, 0L);
#undef SET
        return 0;
}

static int fetch_error(const char *url, CURLcode code, const char *errbuf, const Fetch *f, const FetchLimits *limits,
                       char **ret_error) {
        char size[32];
        int r;

        format_bytes(size, sizeof(size), limits->max_size);
        if (f->canceled) {
                r = -ECANCELED;
                *ret_error = strdup("Canceled");
                return r;
        }
        if (f->too_large || code == CURLE_FILESIZE_EXCEEDED) {
                r = asprintf(ret_error, "Cannot download %s: it is larger than the limit of %s", url, size);
                if (r < 0)
                        *ret_error = NULL;
                return -EFBIG;
        }
        if (f->write_error < 0) {
                r = asprintf(ret_error, "Cannot download %s: cannot store it: %s", url, strerror(-f->write_error));
                if (r < 0)
                        *ret_error = NULL;
                return f->write_error;
        }
        r = asprintf(ret_error, "Cannot download %s: %s", url, !isempty(errbuf) ? errbuf : curl_easy_strerror(code));
        if (r < 0)
                *ret_error = NULL;
        return -EIO;
}

int plugin_fetch(const char *url, const FetchLimits *limits, const BackupCallbacks *cb, int fd, char **ret_buf,
                 size_t *ret_size, char **ret_effective_url, char **ret_error) {
        char errbuf[CURL_ERROR_SIZE] = "";
        Fetch f = { .fd = fd, .max_size = limits->max_size, .cb = cb };
        CURLcode code;
        CURL *c;
        int r;

        c = curl_easy_init();
        if (!c) {
                *ret_error = strdup("Cannot initialize libcurl");
                return -ENOMEM;
        }
        r = fetch_setup(c, url, limits, &f, errbuf);
        if (r < 0) {
                curl_easy_cleanup(c);
                if (asprintf(ret_error, "Cannot set up the download of %s (libcurl too old?)", url) < 0)
                        *ret_error = NULL;
                return r;
        }

        code = curl_easy_perform(c);
        if (code != CURLE_OK) {
                r = fetch_error(url, code, errbuf, &f, limits, ret_error);
                curl_easy_cleanup(c);
                free(f.buf);
                return r;
        }

        if (ret_effective_url) {
                char *eff = NULL;

                *ret_effective_url = NULL;
                if (curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &eff) == CURLE_OK && eff)
                        *ret_effective_url = strdup(eff);
        }
        curl_easy_cleanup(c);

        if (fd < 0) {
                if (!f.buf) {
                        f.buf = strdup("");
                        if (!f.buf)
                                return -ENOMEM;
                }
                *ret_buf = f.buf;
        }
        if (ret_size)
                *ret_size = f.size;
        return 0;
}
