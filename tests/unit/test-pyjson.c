/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "pyjson.h"
#include "test-util.h"

/* Every expected string below was produced once with /usr/bin/python3 (3.11): json.dumps(value). */

static char *dump_string(const char *s, int *ret_error) {
        PyJson j = {};

        pyjson_string(&j, s);
        return pyjson_finish(&j, ret_error);
}

static void check_string(const char *in, const char *expected) {
        _cleanup_free_ char *out = NULL;
        int r = 1;

        out = dump_string(in, &r);
        ASSERT_EQ(r, 0);
        ASSERT_STREQ(out, expected);
}

static void test_ascii(void) {
        check_string("plain", "\"plain\"");
        check_string("", "\"\"");
        check_string("quote \" and backslash \\ and slash /",
                     "\"quote \\\" and backslash \\\\ and slash /\"");
        /* Named escapes, \u00XX for other controls, and DEL escaped too ([^ -~] in Python). */
        check_string("ctl \b\f\n\r\t \x01\x1f \x7f end",
                     "\"ctl \\b\\f\\n\\r\\t \\u0001\\u001f \\u007f end\"");
}

static void test_non_ascii(void) {
        /* "Drucker über été": two-byte sequences, lower-case hex. */
        check_string("Drucker \xc3\xbc" "ber \xc3\xa9t\xc3\xa9", "\"Drucker \\u00fcber \\u00e9t\\u00e9\"");
        /* Three-byte sequences, including BOM and U+FFFF. */
        check_string("\xe2\x82\xac \xef\xbb\xbf \xef\xbf\xbf", "\"\\u20ac \\ufeff \\uffff\"");
        check_string("\xe4\xb8\xad\xe6\x96\x87", "\"\\u4e2d\\u6587\"");
        /* Above the BMP: surrogate pairs (😀, U+10FFFF, U+10000). */
        check_string("emoji \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xf0\x90\x80\x80",
                     "\"emoji \\ud83d\\ude00 \\udbff\\udfff \\ud800\\udc00\"");
}

static void test_invalid_utf8(void) {
        static const char *const bad[] = {
                "\xff",                  /* never valid */
                "abc\xc3",               /* truncated at the end */
                "\xc3(",                 /* bad continuation */
                "\xc0\xaf",              /* overlong '/' */
                "\xe0\x80\xaf",          /* overlong, three bytes */
                "\xed\xa0\x80",          /* encoded surrogate U+D800 */
                "\xf4\x90\x80\x80",      /* U+110000 */
                "\x80",                  /* lone continuation byte */
        };

        for (size_t i = 0; i < ELEMENTSOF(bad); i++) {
                int r = 0;
                char *out = dump_string(bad[i], &r);
                ASSERT_NULL(out);
                ASSERT_EQ(r, -EILSEQ);
                ASSERT_FALSE(utf8_is_valid(bad[i]));
        }
        ASSERT_FALSE(utf8_is_valid(NULL));
        ASSERT_TRUE(utf8_is_valid(""));
        ASSERT_TRUE(utf8_is_valid("F\xc3\xb6\xc3\xb6 \xf0\x9f\x98\x80 \xf4\x8f\xbf\xbf \xef\xbf\xbf"));
}

static void test_error_is_sticky(void) {
        PyJson j = {};
        int r = 0;

        pyjson_raw(&j, "[");
        pyjson_string(&j, "\xff");
        pyjson_raw(&j, ", ");
        pyjson_string(&j, "fine");
        pyjson_raw(&j, "]");
        ASSERT_EQ(j.error, -EILSEQ);
        ASSERT_NULL(pyjson_finish(&j, &r));
        ASSERT_EQ(r, -EILSEQ);
        /* finish resets: the struct can be reused. */
        ASSERT_NULL(j.buf);
        ASSERT_EQ(j.error, 0);
}

static void test_null_and_raw(void) {
        _cleanup_free_ char *out = NULL;
        PyJson j = {};
        int r = 1;

        pyjson_raw(&j, "[");
        pyjson_string(&j, NULL);
        pyjson_raw(&j, ", ");
        pyjson_string(&j, "x");
        pyjson_raw(&j, "]");
        out = pyjson_finish(&j, &r);
        ASSERT_EQ(r, 0);
        ASSERT_STREQ(out, "[null, \"x\"]");
}

static void test_long_string(void) {
        _cleanup_free_ char *in = malloc(100001), *out = NULL, *expected = malloc(100003);
        int r;

        /* Crosses many buffer growths. */
        ASSERT_NOT_NULL(in);
        ASSERT_NOT_NULL(expected);
        memset(in, 'a', 100000);
        in[100000] = 0;
        expected[0] = '"';
        memset(expected + 1, 'a', 100000);
        strcpy(expected + 100001, "\"");
        out = dump_string(in, &r);
        ASSERT_EQ(r, 0);
        ASSERT_STREQ(out, expected);
}

static void test_metadata(void) {
        char *out;

        out = pyjson_metadata("1.11.8", NULL);
        ASSERT_STREQ(out, "{\"version\": \"1.11.8\", \"excludes\": []}");
        free(out);

        out = pyjson_metadata("1.11.8", (char *[]) { "timelapse", "uploads", "timelapse_tmp", NULL });
        ASSERT_STREQ(out, "{\"version\": \"1.11.8\", \"excludes\": [\"timelapse\", \"uploads\", \"timelapse_tmp\"]}");
        free(out);

        out = pyjson_metadata("1.11.8\xc3\xa9", (char *[]) { "x\"y", NULL });
        ASSERT_STREQ(out, "{\"version\": \"1.11.8\\u00e9\", \"excludes\": [\"x\\\"y\"]}");
        free(out);

        errno = 0;
        out = pyjson_metadata("1.0", (char *[]) { "\xff", NULL });
        ASSERT_NULL(out);
        ASSERT_EQ(errno, EILSEQ);
}

int main(void) {
        RUN(test_ascii);
        RUN(test_non_ascii);
        RUN(test_invalid_utf8);
        RUN(test_error_is_sticky);
        RUN(test_null_and_raw);
        RUN(test_long_string);
        RUN(test_metadata);
        return 0;
}
