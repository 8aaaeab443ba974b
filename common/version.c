/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <ctype.h>
#include <limits.h>
#include <strings.h>

#include "util.h"
#include "version.h"

/* More release parts than any real version has; longer ones are treated as unparsable rather than
 * truncated, so that two different versions never compare equal by accident. */
#define RELEASE_MAX 16

typedef enum PreKind {
        PRE_NONE = -1,
        PRE_A,
        PRE_B,
        PRE_RC,
} PreKind;

typedef struct Version {
        unsigned long long release[RELEASE_MAX];
        size_t n_release;
        PreKind pre;
        unsigned long long pre_num;
        bool post;
        unsigned long long post_num;
        bool dev;
        unsigned long long dev_num;
        const char *local;            /* after '+', NULL if none; points into the parsed string */
} Version;

/* Reads a decimal number; refuses overflow. Numbers of 19+ digits do not occur in versions. */
static int parse_number(const char **p, unsigned long long *ret) {
        unsigned long long v = 0;
        const char *s = *p;

        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        for (; isdigit((unsigned char) *s); s++) {
                if (v > (ULLONG_MAX - 9) / 10)
                        return -ERANGE;
                v = v * 10 + (*s - '0');
        }
        *p = s;
        *ret = v;
        return 0;
}

static bool is_sep(char c) {
        return c == '.' || c == '-' || c == '_';
}

/* Matches one of the words (case-insensitively) at *p, longest first as listed by the caller. */
static int match_word(const char **p, const char *const *words, size_t n) {
        for (size_t i = 0; i < n; i++) {
                size_t l = strlen(words[i]);
                if (strncasecmp(*p, words[i], l) == 0) {
                        *p += l;
                        return (int) i;
                }
        }
        return -1;
}

/* An optional separator, then an optional number (PEP 440: "1.0rc", "1.0-rc.1" and "1.0rc1" are valid). */
static int parse_implicit_number(const char **p, unsigned long long *ret) {
        const char *s = *p;

        if (is_sep(*s) && isdigit((unsigned char) s[1]))
                s++;
        if (!isdigit((unsigned char) *s)) {
                *ret = 0;
                return 0;
        }
        *p = s;
        return parse_number(p, ret);
}

static int parse_pre(const char **p, Version *v) {
        static const char *const words[] = { "alpha", "a", "beta", "b", "rc", "c", "preview", "pre" };
        static const PreKind kinds[] = { PRE_A, PRE_A, PRE_B, PRE_B, PRE_RC, PRE_RC, PRE_RC, PRE_RC };
        const char *s = *p;
        int i;

        if (is_sep(*s))
                s++;
        i = match_word(&s, words, ELEMENTSOF(words));
        if (i < 0)
                return 0;
        v->pre = kinds[i];
        *p = s;
        return parse_implicit_number(p, &v->pre_num);
}

static int parse_post(const char **p, Version *v) {
        static const char *const words[] = { "post", "rev", "r" };
        const char *s = *p;

        /* "1.0-1" is the implicit form of "1.0.post1". */
        if (*s == '-' && isdigit((unsigned char) s[1])) {
                s++;
                v->post = true;
                *p = s;
                return parse_number(p, &v->post_num);
        }
        if (is_sep(*s))
                s++;
        if (match_word(&s, words, ELEMENTSOF(words)) < 0)
                return 0;
        v->post = true;
        *p = s;
        return parse_implicit_number(p, &v->post_num);
}

static int parse_dev(const char **p, Version *v) {
        const char *s = *p;

        if (is_sep(*s))
                s++;
        if (strncasecmp(s, "dev", 3) != 0)
                return 0;
        s += 3;
        v->dev = true;
        *p = s;
        return parse_implicit_number(p, &v->dev_num);
}

static int version_parse(const char *s, Version *ret) {
        Version v = { .pre = PRE_NONE };
        int r;

        if (!s)
                return -EINVAL;
        if (*s == 'v' || *s == 'V')
                s++;
        for (;;) {
                if (v.n_release >= RELEASE_MAX)
                        return -EINVAL;
                r = parse_number(&s, &v.release[v.n_release++]);
                if (r < 0)
                        return r;
                if (*s != '.' || !isdigit((unsigned char) s[1]))
                        break;
                s++;
        }
        r = parse_pre(&s, &v);
        if (r < 0)
                return r;
        r = parse_post(&s, &v);
        if (r < 0)
                return r;
        r = parse_dev(&s, &v);
        if (r < 0)
                return r;
        if (*s == '+') {
                v.local = ++s;
                if (!*s)
                        return -EINVAL;
                for (; *s; s++)
                        if (!isalnum((unsigned char) *s) && !is_sep(*s))
                                return -EINVAL;
        }
        if (*s)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int cmp_ull(unsigned long long a, unsigned long long b) {
        return (a > b) - (a < b);
}

static int release_compare(const Version *a, const Version *b) {
        size_t n = a->n_release > b->n_release ? a->n_release : b->n_release;

        /* Missing parts are 0: 1.10 == 1.10.0. */
        for (size_t i = 0; i < n; i++) {
                int r = cmp_ull(i < a->n_release ? a->release[i] : 0, i < b->n_release ? b->release[i] : 0);
                if (r != 0)
                        return r;
        }
        return 0;
}

/* The pre-release key of PEP 440: a bare dev release sorts before every pre-release of the same
 * release, a final release (no pre part) after all of them. */
static int pre_key(const Version *v, unsigned long long *ret_num) {
        *ret_num = v->pre_num;
        if (v->pre == PRE_NONE)
                return (!v->post && v->dev) ? -1 : 3;
        return (int) v->pre;
}

static int local_compare(const char *a, const char *b) {
        /* PEP 440: no local part sorts first; segments compare numerically when both are numbers,
         * a number beats a word, words compare case-insensitively, more segments win. */
        if (!a || !b)
                return (a != NULL) - (b != NULL);
        while (*a && *b) {
                size_t la = strcspn(a, ".-_"), lb = strcspn(b, ".-_");
                bool na = strspn(a, "0123456789") >= la, nb = strspn(b, "0123456789") >= lb;
                int r;

                if (na && nb) {
                        unsigned long long x = 0, y = 0;
                        const char *pa = a, *pb = b;
                        if (parse_number(&pa, &x) < 0 || parse_number(&pb, &y) < 0)
                                r = strcmp(a, b);
                        else
                                r = cmp_ull(x, y);
                } else if (na != nb)
                        r = na ? 1 : -1;
                else {
                        r = strncasecmp(a, b, la < lb ? la : lb);
                        if (r == 0)
                                r = cmp_ull(la, lb);
                }
                if (r != 0)
                        return r;
                a += la + (a[la] != 0);
                b += lb + (b[lb] != 0);
        }
        return (*a != 0) - (*b != 0);
}

static int version_compare_parsed(const Version *a, const Version *b, bool with_local) {
        unsigned long long na, nb;
        int r, ka, kb;

        r = release_compare(a, b);
        if (r != 0)
                return r;
        ka = pre_key(a, &na);
        kb = pre_key(b, &nb);
        if (ka != kb)
                return ka < kb ? -1 : 1;
        if (ka >= 0 && ka < 3) {
                r = cmp_ull(na, nb);
                if (r != 0)
                        return r;
        }
        /* No post release sorts before any post release. */
        if (a->post != b->post)
                return a->post ? 1 : -1;
        r = cmp_ull(a->post_num, b->post_num);
        if (r != 0)
                return r;
        /* No dev release sorts after any dev release. */
        if (a->dev != b->dev)
                return a->dev ? -1 : 1;
        r = cmp_ull(a->dev_num, b->dev_num);
        if (r != 0)
                return r;
        return with_local ? local_compare(a->local, b->local) : 0;
}

int version_compare(const char *a, const char *b) {
        Version va, vb;
        bool pa, pb;
        int r;

        pa = version_parse(a, &va) >= 0;
        pb = version_parse(b, &vb) >= 0;
        if (pa && pb)
                return version_compare_parsed(&va, &vb, true);
        if (pa != pb)
                return pa ? 1 : -1;
        r = strcmp(strempty(a), strempty(b));
        return (r > 0) - (r < 0);
}

int version_major_minor(const char *v, unsigned *ret_major, unsigned *ret_minor) {
        unsigned long long major, minor;
        const char *s = v;

        if (!s)
                return -EINVAL;
        if (*s == 'v' || *s == 'V')
                s++;
        if (parse_number(&s, &major) < 0 || *s != '.')
                return -EINVAL;
        s++;
        if (parse_number(&s, &minor) < 0)
                return -EINVAL;
        if (major > UINT_MAX || minor > UINT_MAX)
                return -ERANGE;
        if (ret_major)
                *ret_major = major;
        if (ret_minor)
                *ret_minor = minor;
        return 0;
}

static bool version_is_prerelease(const Version *v) {
        return v->pre != PRE_NONE || v->dev;
}

/* "==1.4.*": the release parts given must match, whatever follows. */
static int prefix_matches(const char *prefix, const Version *v) {
        _cleanup_free_ char *p = strdup(prefix);
        Version pv;

        if (!p)
                return -ENOMEM;
        p[strlen(p) - 2] = 0;             /* drop ".*" */
        if (version_parse(p, &pv) < 0 || pv.pre != PRE_NONE || pv.post || pv.dev || pv.local)
                return -EINVAL;
        for (size_t i = 0; i < pv.n_release; i++)
                if ((i < v->n_release ? v->release[i] : 0) != pv.release[i])
                        return 0;
        return 1;
}

/* "~=1.4.5" is ">=1.4.5, ==1.4.*". */
static int compatible_matches(const Version *s, const Version *v) {
        Version prefix;

        if (s->n_release < 2)
                return -EINVAL;
        if (version_compare_parsed(v, s, true) < 0)
                return 0;
        prefix = *s;
        prefix.n_release--;
        for (size_t i = 0; i < prefix.n_release; i++)
                if ((i < v->n_release ? v->release[i] : 0) != prefix.release[i])
                        return 0;
        return 1;
}

static int clause_matches(const char *op, const char *spec, const Version *v, const char *version) {
        Version s;
        int c;

        if (streq(op, "==="))
                return streq(spec, version);
        if ((streq(op, "==") || streq(op, "!=")) && endswith(spec, ".*")) {
                int r = prefix_matches(spec, v);
                if (r < 0)
                        return r;
                return streq(op, "==") ? r : !r;
        }
        if (version_parse(spec, &s) < 0)
                return -EINVAL;
        if (streq(op, "~="))
                return compatible_matches(&s, v);

        /* A spec without a local part ignores the candidate's local part (PEP 440). */
        c = version_compare_parsed(v, &s, s.local != NULL);
        if (streq(op, "=="))
                return c == 0;
        if (streq(op, "!="))
                return c != 0;
        if (streq(op, ">="))
                return c >= 0;
        if (streq(op, "<="))
                return c <= 0;

        /* Exclusive comparisons do not match pre/post releases of the version given, so "<2.0" is
         * not fulfilled by 2.0rc1 and ">1.7" not by 1.7.post1 (PEP 440). */
        if (streq(op, "<")) {
                if (c >= 0)
                        return 0;
                if (!version_is_prerelease(&s) && version_is_prerelease(v) && release_compare(v, &s) == 0)
                        return 0;
                return 1;
        }
        if (streq(op, ">")) {
                if (c <= 0)
                        return 0;
                if (release_compare(v, &s) == 0 && ((!s.post && v->post) || v->local))
                        return 0;
                return 1;
        }
        return -EINVAL;
}

int version_spec_matches(const char *spec, const char *version) {
        static const char *const ops[] = { "===", "==", "!=", "~=", ">=", "<=", ">", "<" };
        _cleanup_free_ char *copy = NULL;
        char *clause, *saveptr = NULL;
        Version v;

        if (!spec || spec[strspn(spec, " \t")] == 0)
                return 1;
        if (version_parse(version, &v) < 0)
                return -EINVAL;
        copy = strdup(spec);
        if (!copy)
                return -ENOMEM;
        if (copy[0] == ',' || endswith(copy, ",") || strstr(copy, ",,"))
                return -EINVAL;

        for (clause = strtok_r(copy, ",", &saveptr); clause; clause = strtok_r(NULL, ",", &saveptr)) {
                const char *op = ">=";        /* a bare version means ">=", as OctoPrint reads it */
                char *end;
                int r;

                clause += strspn(clause, " \t");
                for (size_t i = 0; i < ELEMENTSOF(ops); i++) {
                        const char *rest = startswith(clause, ops[i]);
                        if (rest) {
                                op = ops[i];
                                clause = (char *) rest + strspn(rest, " \t");
                                break;
                        }
                }
                end = clause + strlen(clause);
                while (end > clause && strchr(" \t", end[-1]))
                        *--end = 0;
                if (!*clause)
                        return -EINVAL;
                r = clause_matches(op, clause, &v, version);
                if (r <= 0)
                        return r;
        }
        return 1;
}
