/* SPDX-License-Identifier: GPL-2.0-or-later */
/* What opbackup-notify says for each way a job ends (opbackup-notify(1), NOTIFICATIONS). */
#include "notify-text.h"
#include "test-util.h"

static void check(const JobOutcome *o, int want_r, const char *summary, const char *body, Urgency urgency) {
        Notification n = {};
        int r = notification_for_job(o, &n);

        ASSERT_EQ(r, want_r);
        if (r > 0) {
                ASSERT_STREQ(n.summary, summary);
                ASSERT_STREQ(n.body, body);
                ASSERT_EQ(n.urgency, urgency);
                ASSERT_NOT_NULL(n.icon);
                ASSERT_NOT_NULL(n.category);
        }
        notification_done(&n);
}

static void test_backup(void) {
        UploadOutcome uploads[] = {
                { "nas", "done", "" },
                { "s3", "failed", "The server refused the credentials <403>." },
        };

        check(&(JobOutcome) { .operation = "backup", .instance = "pi", .result = "done",
                              .name = "octoprint-backup-20261204-184500.zip", .size = 3 * 1024 * 1024 / 2,
                              .has_size = true },
              1, "Backup created", "pi: octoprint-backup-20261204-184500.zip, 1.5 MiB", URGENCY_NORMAL);
        /* The backup is made, but a remote did not get it: that needs attention. */
        check(&(JobOutcome) { .operation = "backup", .instance = "pi", .result = "done", .name = "b.zip",
                              .size = 100, .has_size = true, .uploads = uploads, .n_uploads = 2 },
              1, "Backup created", "pi: b.zip, 100 B\nNot copied to s3: The server refused the credentials &lt;403&gt;.",
              URGENCY_CRITICAL);
        check(&(JobOutcome) { .operation = "backup", .instance = "pi & co", .result = "failed",
                              .error = "No space left on /srv/backups." },
              1, "Backup failed", "pi &amp; co: No space left on /srv/backups.", URGENCY_CRITICAL);
        check(&(JobOutcome) { .operation = "backup", .instance = "pi", .result = "canceled", .skipped = true,
                              .error = "The printer kept printing." },
              1, "Scheduled backup skipped", "pi: The printer kept printing.", URGENCY_LOW);
        check(&(JobOutcome) { .operation = "backup", .instance = "pi", .result = "canceled", .error = "" },
              1, "Backup canceled", "pi: no reason given", URGENCY_LOW);
        /* From a daemon whose details do not name the instance. */
        check(&(JobOutcome) { .operation = "backup", .result = "failed", .error = "x" },
              1, "Backup failed", "(unknown instance): x", URGENCY_CRITICAL);
}

static void test_restore(void) {
        check(&(JobOutcome) { .operation = "restore", .instance = "pi", .result = "done" },
              1, "Restore done", "pi was restored.", URGENCY_NORMAL);
        check(&(JobOutcome) { .operation = "restore", .instance = "pi", .result = "done", .name = "a.zip",
                              .n_plugins_missing = 2 },
              1, "Restore done", "pi was restored from a.zip.\n2 plugins could not be reinstalled: "
              "'opbackupctl unknown-plugins' lists them.", URGENCY_NORMAL);
        check(&(JobOutcome) { .operation = "restore", .instance = "pi", .result = "failed", .error = "Bad zip." },
              1, "Restore failed", "pi: Bad zip.", URGENCY_CRITICAL);
}

static void test_upload_and_fetch(void) {
        UploadOutcome ok[] = { { "nas", "done", "" } }, bad[] = { { "nas", "failed", "Timeout." } };

        /* Each remote reached has its BackupUploaded notification: the job's end adds nothing. */
        check(&(JobOutcome) { .operation = "upload", .instance = "pi", .result = "done", .name = "a.zip",
                              .uploads = ok, .n_uploads = 1 }, 0, NULL, NULL, 0);
        check(&(JobOutcome) { .operation = "upload", .instance = "pi", .result = "done", .name = "a.zip",
                              .uploads = bad, .n_uploads = 1 },
              1, "Upload failed", "pi: a.zip\nNot copied to nas: Timeout.", URGENCY_CRITICAL);
        check(&(JobOutcome) { .operation = "fetch", .instance = "pi", .result = "done" }, 0, NULL, NULL, 0);
        check(&(JobOutcome) { .operation = "fetch", .instance = "pi", .result = "failed", .error = "404." },
              1, "Download from a remote failed", "pi: 404.", URGENCY_CRITICAL);
        check(&(JobOutcome) { .operation = "defragment", .instance = "pi", .result = "done" }, 0, NULL, NULL, 0);
}

static void test_uploaded(void) {
        Notification n = {};

        ASSERT_EQ(notification_for_upload("pi", "a.zip", "nas<1>", &n), 0);
        ASSERT_STREQ(n.summary, "Backup uploaded");
        ASSERT_STREQ(n.body, "pi: a.zip copied to nas&lt;1&gt;.");
        notification_done(&n);
}

static void test_escape(void) {
        _cleanup_free_ char *a = markup_escape("<b>&amp;</b>"), *b = markup_escape(NULL);

        ASSERT_STREQ(a, "&lt;b&gt;&amp;amp;&lt;/b&gt;");
        ASSERT_STREQ(b, "");
}

int main(void) {
        test_backup();
        test_restore();
        test_upload_and_fetch();
        test_uploaded();
        test_escape();
        return 0;
}
