/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The XML answers remotes send (remote/remote-xml.h): WebDAV multistatus as Apache and rclone write it, S3's
 * ListObjectsV2 and InitiateMultipartUpload, and what broken answers give. */
#include "remote/remote-xml.h"
#include "test-util.h"

static const char apache_propfind[] =
        "<?xml version=\"1.0\" encoding=\"utf-8\"?>\n"
        "<D:multistatus xmlns:D=\"DAV:\" xmlns:ns0=\"DAV:\">\n"
        "<D:response xmlns:lp1=\"DAV:\"><D:href>/octoprint/farm/pi/</D:href><D:propstat><D:prop>"
        "<lp1:resourcetype><D:collection/></lp1:resourcetype></D:prop></D:propstat></D:response>\n"
        "<D:response xmlns:lp1=\"DAV:\"><D:href>/octoprint/farm/pi/a%20b%2Bc.zip</D:href><D:propstat><D:prop>"
        "<lp1:resourcetype/><lp1:getcontentlength>3000000</lp1:getcontentlength>"
        "<lp1:getlastmodified>Fri, 04 Dec 2026 21:00:05 GMT</lp1:getlastmodified></D:prop></D:propstat>"
        "</D:response>\n</D:multistatus>\n";

static const char s3_list[] =
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Name>b</Name>"
        "<IsTruncated>true</IsTruncated><NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>"
        "<Contents><Key>farm/pi/x&amp;y.zip</Key><LastModified>2026-12-04T21:00:00.250Z</LastModified>"
        "<ETag>&quot;abc&quot;</ETag><Size>1000</Size></Contents>"
        "<Contents><Key>farm/pi/z.zip</Key><Size>5</Size></Contents></ListBucketResult>";

static void test_propfind(void) {
        const char *p = apache_propfind, *end = p + sizeof(apache_propfind) - 1, *in, *in_end, *ci, *ce, *cn;
        _cleanup_free_ char *href = NULL, *len = NULL, *mod = NULL, *name = NULL;

        ASSERT_TRUE(xml_find(p, end, "response", &in, &in_end, &p));
        ASSERT_TRUE(xml_find(in, in_end, "collection", &ci, &ce, &cn));   /* the folder itself: <D:collection/> */
        ASSERT_TRUE(xml_find(p, end, "response", &in, &in_end, &p));
        ASSERT_FALSE(xml_find(in, in_end, "collection", &ci, &ce, &cn));
        href = xml_text(in, in_end, "href");
        len = xml_text(in, in_end, "getcontentlength");
        mod = xml_text(in, in_end, "getlastmodified");
        ASSERT_STREQ(href, "/octoprint/farm/pi/a%20b%2Bc.zip");
        ASSERT_STREQ(len, "3000000");
        ASSERT_EQ(time_parse_http(mod), 1796418005LL * 1000000);
        name = url_unescape(href + 19, strlen(href + 19));
        ASSERT_STREQ(name, "a b+c.zip");
        ASSERT_FALSE(xml_find(p, end, "response", &in, &in_end, &p));
}

static void test_s3(void) {
        const char *p = s3_list, *end = p + sizeof(s3_list) - 1, *in, *in_end;
        _cleanup_free_ char *token = xml_text(p, end, "NextContinuationToken"), *key = NULL, *mod = NULL;
        int n = 0;

        ASSERT_STREQ(token, "1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=");
        while (xml_find(p, end, "Contents", &in, &in_end, &p)) {
                if (n++ == 0) {
                        key = xml_text(in, in_end, "Key");
                        mod = xml_text(in, in_end, "LastModified");
                }
        }
        ASSERT_EQ(n, 2);
        ASSERT_STREQ(key, "farm/pi/x&y.zip");                   /* entities decoded */
        ASSERT_EQ(time_parse_iso8601(mod), 1796418000LL * 1000000 + 250000);
}

static void test_broken(void) {
        static const char cut[] = "<a><b>text";          /* no end tag */
        const char *in, *in_end, *next;
        _cleanup_free_ char *t = NULL;

        ASSERT_FALSE(xml_find(cut, cut + sizeof(cut) - 1, "b", &in, &in_end, &next));
        ASSERT_NULL(xml_text(cut, cut + sizeof(cut) - 1, "a"));
        ASSERT_NULL(url_unescape("%zz", 3));
        ASSERT_NULL(url_unescape("a%00", 4));                   /* a NUL would cut the name */
        ASSERT_EQ(time_parse_iso8601("yesterday"), 0);
        ASSERT_EQ(time_parse_http(NULL), 0);
        /* Nested elements of the same name end at the matching tag. */
        t = xml_text("<x><x>in</x>out</x>", "<x><x>in</x>out</x>" + 19, "x");
        ASSERT_STREQ(t, "<x>in</x>out");
}

int main(void) {
        RUN(test_propfind);
        RUN(test_s3);
        RUN(test_broken);
        return 0;
}
