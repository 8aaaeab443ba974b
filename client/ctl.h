/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#include "bus-names.h"

struct json_object;

/* Exit codes (opbackupctl(1), EXIT STATUS). */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_NOT_AUTHORIZED = 3,
        EXIT_NOT_FOUND = 4,
        EXIT_BUSY = 5,
};


typedef struct Ctl {
        const char *instance;           /* -i */
        const char *host;               /* -H */
        bool json;
        bool ask_password;
        bool quiet;
        sd_bus *bus;
} Ctl;

/* Connects (system bus, or a remote host's over ssh) and starts the polkit agent when on a terminal. */
int ctl_connect(Ctl *ctl);

/* Prints a failed call's error the way a person can act on and returns the exit code for it. */
int ctl_report_error(const char *what, const sd_bus_error *error, int r);

/* Calls a method on the opbackup service; on failure reports and returns the exit code (>0),
 * on success 0. */
int ctl_call(Ctl *ctl, const char *path, const char *interface, const char *member,
             sd_bus_message **ret_reply, const char *types, ...);

/* Like ctl_call(), for a message the caller built (arrays of variable length). timeout_usec 0: the
 * default, longer when polkit may ask for a password. */
int ctl_call_message(Ctl *ctl, sd_bus_message *m, uint64_t timeout_usec, sd_bus_message **ret_reply);

/* Walks the a{sv} at m's read position: fn gets each key and its variant's signature and either reads
 * the variant (returns 1) or leaves it to be skipped (returns 0); negative stops the walk. */
typedef int (*ctl_dict_entry_fn)(sd_bus_message *m, const char *key, const char *contents, void *userdata);
int ctl_read_dict(sd_bus_message *m, ctl_dict_entry_fn fn, void *userdata);

/* The object path of -i INSTANCE (or the only instance). */
int ctl_instance_path(Ctl *ctl, char **ret_path);

/* pkttyagent for interactive polkit authentication (agent.c). */
void polkit_agent_open_if_tty(void);
void polkit_agent_close(void);

/* Output helpers (output.c). */
void ctl_json_print(struct json_object *o);             /* pretty, for documents */
void ctl_json_print_line(struct json_object *o);        /* one line, flushed: for streams (monitor) */
const char *format_timestamp(char *buf, size_t size, int64_t usec);      /* local "YYYY-mm-dd HH:MM:SS" */
const char *format_timestamp_iso(char *buf, size_t size, int64_t usec);  /* local ISO 8601 with offset */
int parse_uint32(const char *s, uint32_t *ret);

/* The options of a command that has only --json and --help, and n_args arguments after them (else
 * wrong_count is printed; NULL: "COMMAND takes no arguments"). 1: go on, 0: help was shown, <0: -exit code. */
int ctl_parse_json_only(Ctl *ctl, int argc, char *argv[], void (*help)(void), int n_args, const char *wrong_count);
/* A progress bar on stderr: a terminal, and not -q. */
bool ctl_show_progress(const Ctl *ctl);

/* Waiting for a job to end (job-wait.c). job_watch_new() subscribes and watches the signals before the
 * caller starts the job; job_watch_wait() waits for the job's JobRemoved while showing progress and log
 * lines (warnings and errors; info lines too with log_info), handles Ctrl-C (ask, or cancel) and the
 * service going away. It returns an exit code; on success *ret_removed is the JobRemoved message, read up
 * to its details a{sv} — or NULL if the user chose to leave the job running. Failed and canceled jobs are
 * reported as "<What> failed: ..." / "<What> canceled." (what: "backup", "restore"); a backup
 * skipped by its "when-idle" check is reported as "Backup skipped: ..." with EXIT_BUSY. */
typedef struct JobWatch JobWatch;
int job_watch_new(Ctl *ctl, const char *what, bool log_info, JobWatch **ret);
int job_watch_wait(JobWatch *w, uint32_t id, const char *path, sd_bus_message **ret_removed);
/* Whether a signal comes from the service the watch subscribed at (for the caller's own matches). */
bool job_watch_from_service(JobWatch *w, sd_bus_message *m);
JobWatch *job_watch_free(JobWatch *w);
static inline void job_watch_freep(JobWatch **w) {
        job_watch_free(*w);
}

/* Instance.CreateBackup and, unless no_wait, waiting for the job, printing what `backup` prints
 * (cmd-backup.c). Returns an exit code: EXIT_BUSY also for a when-idle backup skipped while printing. */
typedef struct BackupArgs {
        char **excludes;
        const char *name;
        bool no_wait;
        bool when_idle;
} BackupArgs;
int backup_instance(Ctl *ctl, const char *instance_path, const BackupArgs *args);

int cmd_status(Ctl *ctl, int argc, char *argv[]);
int cmd_list(Ctl *ctl, int argc, char *argv[]);
int cmd_backup(Ctl *ctl, int argc, char *argv[]);
int cmd_delete(Ctl *ctl, int argc, char *argv[]);
int cmd_export(Ctl *ctl, int argc, char *argv[]);
int cmd_import(Ctl *ctl, int argc, char *argv[]);
int cmd_inspect(Ctl *ctl, int argc, char *argv[]);
int cmd_prune(Ctl *ctl, int argc, char *argv[]);
int cmd_jobs(Ctl *ctl, int argc, char *argv[]);
int cmd_cancel(Ctl *ctl, int argc, char *argv[]);
int cmd_monitor(Ctl *ctl, int argc, char *argv[]);
int cmd_restore(Ctl *ctl, int argc, char *argv[]);
int cmd_unknown_plugins(Ctl *ctl, int argc, char *argv[]);
int cmd_scheduled_backup(Ctl *ctl, int argc, char *argv[]);
