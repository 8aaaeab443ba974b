/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The words of opbackup-notify's notifications (opbackup-notify(1), NOTIFICATIONS). */

#include <stdarg.h>
#include <stdio.h>

#include "notify-text.h"
#include "util.h"

char *markup_escape(const char *s) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        for (const char *p = strempty(s); *p; p++)
                switch (*p) {
                case '&':
                        fputs("&amp;", f);
                        break;
                case '<':
                        fputs("&lt;", f);
                        break;
                case '>':
                        fputs("&gt;", f);
                        break;
                default:
                        fputc(*p, f);
                }
        if (fclose(f) != 0) {
                free(buf);
                return NULL;
        }
        return buf;
}

void notification_done(Notification *n) {
        free(n->summary);
        free(n->body);
        *n = (Notification) {};
}

/* Appends format to *body; each %s argument is escaped (the format itself is ours, and plain). */
static int append(char **body, const char *format, ...) {
        char *buf = NULL, *escaped[4] = {};
        size_t size = 0, k = 0;
        va_list ap;
        FILE *f;
        int r = 0;

        f = open_memstream(&buf, &size);
        if (!f)
                return -ENOMEM;
        fputs(strempty(*body), f);
        va_start(ap, format);
        for (const char *p = format; *p; p++) {
                if (p[0] != '%' || p[1] != 's') {
                        fputc(*p, f);
                        continue;
                }
                p++;
                if (k >= ELEMENTSOF(escaped)) {
                        r = -EINVAL;
                        break;
                }
                escaped[k] = markup_escape(va_arg(ap, const char *));
                if (!escaped[k]) {
                        r = -ENOMEM;
                        break;
                }
                fputs(escaped[k++], f);
        }
        va_end(ap);
        for (size_t i = 0; i < k; i++)
                free(escaped[i]);
        if (fclose(f) != 0 && r >= 0)
                r = -ENOMEM;
        if (r < 0) {
                free(buf);
                return r;
        }
        free(*body);
        *body = buf;
        return 0;
}

static int set_summary(Notification *n, const char *summary, Urgency urgency, const char *icon,
                       const char *category) {
        n->summary = strdup(summary);
        n->urgency = urgency;
        n->icon = icon;
        n->category = category;
        return n->summary ? 0 : -ENOMEM;
}

static const char *instance_of(const JobOutcome *o) {
        return isempty(o->instance) ? "(unknown instance)" : o->instance;
}

static const char *error_of(const JobOutcome *o) {
        return isempty(o->error) ? "no reason given" : o->error;
}

static size_t failed_uploads(const JobOutcome *o) {
        size_t n = 0;

        for (size_t k = 0; k < o->n_uploads; k++)
                n += !streq_ptr(o->uploads[k].result, "done");
        return n;
}

static int append_failed_uploads(const JobOutcome *o, Notification *n) {
        int r = 0;

        for (size_t k = 0; r >= 0 && k < o->n_uploads; k++)
                if (!streq_ptr(o->uploads[k].result, "done"))
                        r = append(&n->body, "%sNot copied to %s: %s", n->body ? "\n" : "",
                                   strempty(o->uploads[k].remote),
                                   isempty(o->uploads[k].error) ? "no reason given" : o->uploads[k].error);
        return r;
}

static int backup_text(const JobOutcome *o, Notification *n) {
        char size[32];
        int r;

        if (streq_ptr(o->result, "done")) {
                bool warn = failed_uploads(o) > 0;

                r = set_summary(n, "Backup created", warn ? URGENCY_CRITICAL : URGENCY_NORMAL,
                                warn ? "dialog-warning" : "document-save",
                                warn ? "transfer.error" : "transfer.complete");
                if (r >= 0 && o->has_size)
                        r = append(&n->body, "%s: %s, %s", instance_of(o), strempty(o->name),
                                   format_bytes(size, sizeof(size), o->size));
                else if (r >= 0)
                        r = append(&n->body, "%s: %s", instance_of(o), strempty(o->name));
                if (r >= 0)
                        r = append_failed_uploads(o, n);
                return r < 0 ? r : 1;
        }
        if (streq_ptr(o->result, "failed"))
                r = set_summary(n, "Backup failed", URGENCY_CRITICAL, "dialog-error", "transfer.error");
        else if (o->skipped)
                r = set_summary(n, "Scheduled backup skipped", URGENCY_LOW, "dialog-information", "transfer");
        else
                r = set_summary(n, "Backup canceled", URGENCY_LOW, "dialog-information", "transfer");
        if (r >= 0)
                r = append(&n->body, "%s: %s", instance_of(o), error_of(o));
        return r < 0 ? r : 1;
}

static int restore_text(const JobOutcome *o, Notification *n) {
        int r;

        if (streq_ptr(o->result, "done")) {
                r = set_summary(n, "Restore done", URGENCY_NORMAL,
                                o->n_plugins_missing > 0 ? "dialog-warning" : "document-revert", "transfer.complete");
                if (r >= 0 && !isempty(o->name))
                        r = append(&n->body, "%s was restored from %s.", instance_of(o), o->name);
                else if (r >= 0)
                        r = append(&n->body, "%s was restored.", instance_of(o));
                if (r >= 0 && o->n_plugins_missing > 0) {
                        char count[24];

                        snprintf(count, sizeof(count), "%zu", o->n_plugins_missing);
                        r = append(&n->body, "\n%s %s could not be reinstalled: 'opbackupctl unknown-plugins' "
                                   "lists them.", count, o->n_plugins_missing == 1 ? "plugin" : "plugins");
                }
                return r < 0 ? r : 1;
        }
        if (streq_ptr(o->result, "failed"))
                r = set_summary(n, "Restore failed", URGENCY_CRITICAL, "dialog-error", "transfer.error");
        else
                r = set_summary(n, "Restore canceled", URGENCY_NORMAL, "dialog-information", "transfer");
        if (r >= 0)
                r = append(&n->body, "%s: %s", instance_of(o), error_of(o));
        return r < 0 ? r : 1;
}

static int upload_text(const JobOutcome *o, Notification *n) {
        int r;

        if (streq_ptr(o->result, "done")) {
                /* Each remote it reached had its BackupUploaded. */
                if (failed_uploads(o) == 0)
                        return 0;
                r = set_summary(n, "Upload failed", URGENCY_CRITICAL, "dialog-error", "transfer.error");
                if (r >= 0)
                        r = append(&n->body, "%s: %s", instance_of(o), strempty(o->name));
                if (r >= 0)
                        r = append_failed_uploads(o, n);
                return r < 0 ? r : 1;
        }
        if (streq_ptr(o->result, "failed"))
                r = set_summary(n, "Upload failed", URGENCY_CRITICAL, "dialog-error", "transfer.error");
        else
                r = set_summary(n, "Upload canceled", URGENCY_LOW, "dialog-information", "transfer");
        if (r >= 0)
                r = append(&n->body, "%s: %s", instance_of(o), error_of(o));
        return r < 0 ? r : 1;
}

int notification_for_job(const JobOutcome *o, Notification *ret) {
        Notification n = {};
        int r;

        if (streq_ptr(o->operation, "backup"))
                r = backup_text(o, &n);
        else if (streq_ptr(o->operation, "restore"))
                r = restore_text(o, &n);
        else if (streq_ptr(o->operation, "upload"))
                r = upload_text(o, &n);
        else if (streq_ptr(o->result, "failed")) {
                /* A fetch, or an operation newer than this program: only its failure is news. */
                r = set_summary(&n, streq_ptr(o->operation, "fetch") ? "Download from a remote failed" : "Job failed",
                                URGENCY_CRITICAL, "dialog-error", "transfer.error");
                if (r >= 0)
                        r = append(&n.body, "%s: %s", instance_of(o), error_of(o));
                r = r < 0 ? r : 1;
        } else
                r = 0;
        if (r <= 0) {
                notification_done(&n);
                return r;
        }
        *ret = n;
        return 1;
}

int notification_for_upload(const char *instance, const char *name, const char *remote, Notification *ret) {
        Notification n = {};
        int r;

        r = set_summary(&n, "Backup uploaded", URGENCY_NORMAL, "network-server", "transfer.complete");
        if (r >= 0)
                r = append(&n.body, "%s: %s copied to %s.", strempty(instance), strempty(name), strempty(remote));
        if (r < 0) {
                notification_done(&n);
                return r;
        }
        *ret = n;
        return 0;
}
