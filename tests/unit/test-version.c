/* SPDX-License-Identifier: GPL-2.0-or-later */
#include "test-util.h"
#include "version.h"

static int sign(int x) {
        return (x > 0) - (x < 0);
}

/* Order checked against Python's packaging.version.Version (sorted()). */
static void test_compare_order(void) {
        static const char *const sorted[] = {
                "1.0.dev1", "1.0a1.dev1", "1.0a1", "1.0a2", "1.0b1", "1.0rc1", "1.0rc2.dev3", "1.0",
                "1.0.post1.dev1", "1.0.post1", "1.0.post2", "1.0.1", "1.9.9", "1.10", "2.0.0.dev12",
                "2.0.0.dev12+gabc", "2.0.0.dev12+gabd", "2.0.0",
        };

        for (size_t i = 0; i < ELEMENTSOF(sorted); i++)
                for (size_t j = 0; j < ELEMENTSOF(sorted); j++) {
                        int expected = sign((int) i - (int) j);
                        if (sign(version_compare(sorted[i], sorted[j])) != expected) {
                                fprintf(stderr, "compare(%s, %s) != %d\n", sorted[i], sorted[j], expected);
                                exit(EXIT_FAILURE);
                        }
                }
}

static void test_compare_equivalent_spellings(void) {
        /* Numeric, not textual: 1.10 is newer than 1.9, which a strcmp gets wrong. */
        ASSERT_TRUE(version_compare("1.10.0", "1.9.3") > 0);
        ASSERT_EQ(version_compare("1.10", "1.10.0"), 0);
        ASSERT_EQ(version_compare("1.10.0", "1.10"), 0);
        ASSERT_EQ(version_compare("1.0rc1", "1.0-RC.1"), 0);
        ASSERT_EQ(version_compare("1.0alpha2", "1.0a2"), 0);
        ASSERT_EQ(version_compare("1.0c1", "1.0rc1"), 0);
        ASSERT_EQ(version_compare("1.0-1", "1.0.post1"), 0);
        ASSERT_EQ(version_compare("v1.2.3", "1.2.3"), 0);
        ASSERT_EQ(version_compare("1.9.3.post1", "1.9.3.post1"), 0);
        ASSERT_TRUE(version_compare("1.9.3.post1", "1.9.3") > 0);
        ASSERT_TRUE(version_compare("1.11.0rc3", "1.11.0") < 0);
        ASSERT_TRUE(version_compare("1.11.0rc3", "1.10.99") > 0);
}

static void test_compare_unparsable(void) {
        /* Unparsable sorts first and never equals a real version. */
        ASSERT_TRUE(version_compare("garbage", "0.0.1") < 0);
        ASSERT_TRUE(version_compare("0.0.1", "garbage") > 0);
        ASSERT_TRUE(version_compare("abc", "abd") < 0);
        ASSERT_EQ(version_compare("abc", "abc"), 0);
        ASSERT_TRUE(version_compare(NULL, "1.0") < 0);
        ASSERT_TRUE(version_compare("1.0 ", "1.0") < 0);
        ASSERT_TRUE(version_compare("1.0.", "1.0") < 0);
        ASSERT_TRUE(version_compare("1.0+", "1.0") < 0);
        /* Too big to be a real release number: refused rather than wrapped around. */
        ASSERT_TRUE(version_compare("99999999999999999999999.0", "1.0") < 0);
}

static void test_major_minor(void) {
        unsigned major = 0, minor = 0;

        ASSERT_EQ(version_major_minor("1.11.8", &major, &minor), 0);
        ASSERT_EQ(major, 1);
        ASSERT_EQ(minor, 11);
        ASSERT_EQ(version_major_minor("1.10rc3", &major, &minor), 0);
        ASSERT_EQ(minor, 10);
        ASSERT_EQ(version_major_minor("2.0.0.dev12+gabc", &major, &minor), 0);
        ASSERT_EQ(major, 2);
        ASSERT_EQ(minor, 0);
        ASSERT_EQ(version_major_minor("2", &major, &minor), -EINVAL);
        ASSERT_EQ(version_major_minor("1.x", &major, &minor), -EINVAL);
        ASSERT_EQ(version_major_minor("", &major, &minor), -EINVAL);
        ASSERT_EQ(version_major_minor(NULL, &major, &minor), -EINVAL);
        ASSERT_EQ(version_major_minor("4294967296.0", &major, &minor), -ERANGE);
}

/* Expected values from pkg_resources' SpecifierSet(spec).contains(version, prereleases=True), which
 * is what OctoPrint's is_octoprint_compatible() uses. */
static void test_spec_matches(void) {
        static const struct {
                const char *spec, *version;
                int expected;
        } cases[] = {
                { ">=1.4.0", "1.11.8", 1 },
                { ">=1.4.0", "1.3.12", 0 },
                { "1.4.0", "1.11.8", 1 },               /* bare: ">=" */
                { "1.12.0", "1.11.8", 0 },
                { ">=1.3.0,<2", "1.11.8", 1 },
                { ">=1.3.0, <2", "2.0.0", 0 },
                { "1.3.0,<2", "1.2.0", 0 },
                { "<2", "2.0rc1", 0 },
                { "<1.11.8", "1.11.8rc1", 0 },
                { "<1.11.8rc2", "1.11.8rc1", 1 },
                { ">1.7", "1.7.post1", 0 },
                { ">1.7", "1.7.1", 1 },
                { ">1.7", "1.7+loc", 0 },
                { "<=1.7", "1.7.0", 1 },
                { "~=1.4.5", "1.4.9", 1 },
                { "~=1.4.5", "1.5.0", 0 },
                { "~=1.4.5", "1.4.4", 0 },
                { "==1.4.*", "1.4.5rc1", 1 },
                { "==1.4.*", "1.5", 0 },
                { "!=1.4.*", "1.5", 1 },
                { "==1.4", "1.4.0", 1 },
                { "==1.4", "1.4.0+local", 1 },
                { "!=1.4", "1.4.0", 0 },
                { "===1.4", "1.4", 1 },
                { "===1.4", "1.4.0", 0 },
                { "", "1.0", 1 },
                { "  ", "1.0", 1 },
                { NULL, "1.0", 1 },
        };

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                int r = version_spec_matches(cases[i].spec, cases[i].version);
                if (r != cases[i].expected) {
                        fprintf(stderr, "spec_matches(\"%s\", \"%s\") = %d, expected %d\n",
                                strempty(cases[i].spec), cases[i].version, r, cases[i].expected);
                        exit(EXIT_FAILURE);
                }
        }
}

static void test_spec_invalid(void) {
        ASSERT_EQ(version_spec_matches(">=", "1.0"), -EINVAL);
        ASSERT_EQ(version_spec_matches(">=1.0,", "1.0"), -EINVAL);
        ASSERT_EQ(version_spec_matches(">=1.0,,<2", "1.0"), -EINVAL);
        ASSERT_EQ(version_spec_matches(">=1.0, ,<2", "1.0"), -EINVAL);
        ASSERT_EQ(version_spec_matches(">=banana", "1.0"), -EINVAL);
        ASSERT_EQ(version_spec_matches("~=1", "1.0"), -EINVAL);
        ASSERT_EQ(version_spec_matches("==1.0rc1.*", "1.0"), -EINVAL);
        ASSERT_EQ(version_spec_matches(">=1.0", "not a version"), -EINVAL);
}

int main(void) {
        RUN(test_compare_order);
        RUN(test_compare_equivalent_spellings);
        RUN(test_compare_unparsable);
        RUN(test_major_minor);
        RUN(test_spec_matches);
        RUN(test_spec_invalid);
        return 0;
}
