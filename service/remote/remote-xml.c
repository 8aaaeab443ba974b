/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The little XML remotes answer with (remote-xml.h). */

#include <time.h>

#include "remote/remote-xml.h"
#include "util.h"

/* Whether the tag at p ('<' already passed) is named local, with or without a prefix; *ret_after: past the
 * name. */
static bool tag_is(const char *p, const char *end, const char *local, const char **ret_after) {
        const char *name_end = p, *colon = NULL, *n;
        size_t k = strlen(local);

        while (name_end < end && !strchr(" \t\r\n/>", *name_end)) {
                if (*name_end == ':')
                        colon = name_end;
                name_end++;
        }
        n = colon ? colon + 1 : p;
        if ((size_t) (name_end - n) != k || memcmp(n, local, k) != 0)
                return false;
        *ret_after = name_end;
        return true;
}

bool xml_find(const char *s, const char *end, const char *local, const char **ret_inner, const char **ret_inner_end,
              const char **ret_next) {
        for (const char *p = s; p < end && (p = memchr(p, '<', end - p)); p++) {
                const char *after, *gt, *q;
                unsigned depth = 0;

                if (p + 1 >= end || p[1] == '/' || p[1] == '?' || p[1] == '!' || !tag_is(p + 1, end, local, &after))
                        continue;
                gt = memchr(after, '>', end - after);
                if (!gt)
                        return false;
                if (gt[-1] == '/') {            /* <x/> */
                        *ret_inner = *ret_inner_end = gt + 1;
                        *ret_next = gt + 1;
                        return true;
                }
                /* The matching end tag, over nested elements of the same name. */
                for (q = gt + 1; q < end && (q = memchr(q, '<', end - q)); q++) {
                        const char *a2, *g2;

                        if (q + 1 < end && q[1] == '/' && tag_is(q + 2, end, local, &a2)) {
                                if (depth == 0) {
                                        g2 = memchr(a2, '>', end - a2);
                                        if (!g2)
                                                return false;
                                        *ret_inner = gt + 1;
                                        *ret_inner_end = q;
                                        *ret_next = g2 + 1;
                                        return true;
                                }
                                depth--;
                        } else if (q + 1 < end && q[1] != '/' && tag_is(q + 1, end, local, &a2)) {
                                g2 = memchr(a2, '>', end - a2);
                                if (g2 && g2[-1] != '/')
                                        depth++;
                        }
                }
                return false;
        }
        return false;
}

char *xml_text(const char *s, const char *end, const char *local) {
        const char *in, *in_end, *next;
        char *t, *o;

        if (!xml_find(s, end, local, &in, &in_end, &next))
                return NULL;
        t = o = malloc(in_end - in + 1);
        if (!t)
                return NULL;
        for (const char *p = in; p < in_end;) {
                static const struct { const char *e; char c; } entities[] = {
                        { "&amp;", '&' }, { "&lt;", '<' }, { "&gt;", '>' }, { "&quot;", '"' }, { "&apos;", '\'' },
                };
                bool done = false;

                if (*p == '&') {
                        for (size_t i = 0; i < ELEMENTSOF(entities); i++) {
                                size_t k = strlen(entities[i].e);

                                if ((size_t) (in_end - p) >= k && memcmp(p, entities[i].e, k) == 0) {
                                        *o++ = entities[i].c;
                                        p += k;
                                        done = true;
                                        break;
                                }
                        }
                        if (!done && p + 2 < in_end && p[1] == '#') {
                                char *e;
                                unsigned long c = p[2] == 'x' ? strtoul(p + 3, &e, 16) : strtoul(p + 2, &e, 10);

                                /* Names are ASCII: anything else is not one of ours. */
                                if (e < in_end && *e == ';' && c > 0 && c < 0x80) {
                                        *o++ = (char) c;
                                        p = e + 1;
                                        done = true;
                                }
                        }
                }
                if (!done)
                        *o++ = *p++;
        }
        *o = 0;
        return t;
}

static int hexval(char c) {
        if (c >= '0' && c <= '9')
                return c - '0';
        if (c >= 'a' && c <= 'f')
                return c - 'a' + 10;
        if (c >= 'A' && c <= 'F')
                return c - 'A' + 10;
        return -1;
}

char *url_unescape(const char *s, size_t n) {
        char *t = malloc(n + 1), *o = t;

        if (!t)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                if (s[i] == '%') {
                        int a = i + 2 < n ? hexval(s[i + 1]) : -1, b = a >= 0 ? hexval(s[i + 2]) : -1;

                        if (a < 0 || b < 0 || (a == 0 && b == 0)) {
                                free(t);
                                return NULL;
                        }
                        *o++ = (char) (a * 16 + b);
                        i += 2;
                } else
                        *o++ = s[i];
        }
        *o = 0;
        return t;
}

int64_t time_parse_iso8601(const char *s) {
        struct tm tm = {};
        const char *e = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
        long usec = 0;
        time_t t;

        if (!e)
                return 0;
        if (*e == '.') {
                long scale = 100000;

                for (e++; *e >= '0' && *e <= '9'; e++, scale /= 10)
                        usec += (*e - '0') * scale;
        }
        if (*e != 'Z' && *e != 0)
                return 0;
        t = timegm(&tm);
        return t < 0 ? 0 : (int64_t) t * 1000000 + usec;
}

int64_t time_parse_http(const char *s) {
        struct tm tm = {};
        const char *e = s ? strptime(s, "%a, %d %b %Y %H:%M:%S GMT", &tm) : NULL;
        time_t t;

        if (!e)
                return 0;
        t = timegm(&tm);
        return t < 0 ? 0 : (int64_t) t * 1000000;
}
