/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <stdint.h>

#include "pyjson.h"
#include "util.h"

static void pyjson_append(PyJson *j, const char *s, size_t n) {
        if (j->error < 0)
                return;
        if (j->allocated - j->len <= n) {
                size_t na = j->allocated ? j->allocated : 256;
                char *t;

                while (na - j->len <= n) {
                        if (na > SIZE_MAX / 2) {
                                j->error = -ENOMEM;
                                return;
                        }
                        na *= 2;
                }
                t = realloc(j->buf, na);
                if (!t) {
                        j->error = -ENOMEM;
                        return;
                }
                j->buf = t;
                j->allocated = na;
        }
        memcpy(j->buf + j->len, s, n);
        j->len += n;
        j->buf[j->len] = 0;
}

void pyjson_raw(PyJson *j, const char *s) {
        pyjson_append(j, s, strlen(s));
}

/* Decodes one UTF-8 sequence strictly: no overlong forms, no surrogates, nothing above U+10FFFF —
 * exactly what Python's bytes.decode("utf-8") refuses. Returns its length, or -EILSEQ. */
static int utf8_decode(const unsigned char *s, uint32_t *ret) {
        uint32_t c;
        int n;

        if (s[0] < 0x80) {
                *ret = s[0];
                return 1;
        }
        if (s[0] >= 0xc2 && s[0] <= 0xdf) {
                n = 2;
                c = s[0] & 0x1f;
        } else if (s[0] >= 0xe0 && s[0] <= 0xef) {
                n = 3;
                c = s[0] & 0x0f;
        } else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
                n = 4;
                c = s[0] & 0x07;
        } else
                return -EILSEQ;

        /* The terminating NUL is not a continuation byte, so this never reads past the string. */
        for (int i = 1; i < n; i++) {
                if ((s[i] & 0xc0) != 0x80)
                        return -EILSEQ;
                c = (c << 6) | (s[i] & 0x3f);
        }
        if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) || c > 0x10ffff ||
            (c >= 0xd800 && c <= 0xdfff))
                return -EILSEQ;
        *ret = c;
        return n;
}

/* u < 0x10000. Python writes the hex digits in lower case. */
static void append_u(PyJson *j, uint32_t u) {
        static const char hex[] = "0123456789abcdef";
        char b[6] = { '\\', 'u', hex[(u >> 12) & 0xf], hex[(u >> 8) & 0xf], hex[(u >> 4) & 0xf], hex[u & 0xf] };

        pyjson_append(j, b, sizeof(b));
}

bool utf8_is_valid(const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        if (!s)
                return false;
        while (*p) {
                uint32_t c;
                int n = utf8_decode(p, &c);
                if (n < 0)
                        return false;
                p += n;
        }
        return true;
}

static void append_char(PyJson *j, uint32_t c) {
        static const char *const named[0x20] = {
                ['\b'] = "\\b", ['\f'] = "\\f", ['\n'] = "\\n", ['\r'] = "\\r", ['\t'] = "\\t",
        };

        if (c == '"')
                pyjson_append(j, "\\\"", 2);
        else if (c == '\\')
                pyjson_append(j, "\\\\", 2);
        else if (c < 0x20 && named[c])
                pyjson_append(j, named[c], 2);
        else if (c >= 0x20 && c <= 0x7e) {
                char ch = (char) c;
                pyjson_append(j, &ch, 1);
        } else if (c < 0x10000)
                append_u(j, c);                 /* controls, DEL (0x7f) and the BMP */
        else {
                c -= 0x10000;
                append_u(j, 0xd800 | (c >> 10));
                append_u(j, 0xdc00 | (c & 0x3ff));
        }
}

void pyjson_string(PyJson *j, const char *s) {
        const unsigned char *p = (const unsigned char *) s;

        if (!s) {
                pyjson_raw(j, "null");
                return;
        }
        pyjson_append(j, "\"", 1);
        while (*p && j->error >= 0) {
                uint32_t c;
                int n = utf8_decode(p, &c);

                if (n < 0) {
                        j->error = n;
                        return;
                }
                append_char(j, c);
                p += n;
        }
        pyjson_append(j, "\"", 1);
}

char *pyjson_finish(PyJson *j, int *ret_error) {
        char *s;

        if (j->error >= 0 && !j->buf)
                pyjson_append(j, "", 0);      /* nothing written: still return "" */
        if (j->error < 0) {
                if (ret_error)
                        *ret_error = j->error;
                pyjson_done(j);
                return NULL;
        }
        s = TAKE_PTR(j->buf);
        *j = (PyJson) {};
        if (ret_error)
                *ret_error = 0;
        return s;
}

void pyjson_done(PyJson *j) {
        free(j->buf);
        *j = (PyJson) {};
}

char *pyjson_metadata(const char *version, char *const *excludes) {
        PyJson j = {};
        bool first = true;
        char *s;
        int r;

        pyjson_raw(&j, "{\"version\": ");
        pyjson_string(&j, version);
        pyjson_raw(&j, ", \"excludes\": [");
        STRV_FOREACH(e, excludes) {
                if (!first)
                        pyjson_raw(&j, ", ");
                pyjson_string(&j, *e);
                first = false;
        }
        pyjson_raw(&j, "]}");
        s = pyjson_finish(&j, &r);
        if (!s)
                errno = -r;
        return s;
}
