/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The commands of opbackupctl, in the order --help lists them. */

#include "cmd-backup.h"
#include "cmd-cancel.h"
#include "cmd-delete.h"
#include "cmd-export.h"
#include "cmd-fetch.h"
#include "cmd-import.h"
#include "cmd-inspect.h"
#include "cmd-jobs.h"
#include "cmd-list.h"
#include "cmd-monitor.h"
#include "cmd-prune.h"
#include "cmd-remotes.h"
#include "cmd-restore.h"
#include "cmd-scheduled.h"
#include "cmd-status.h"
#include "cmd-unknown-plugins.h"
#include "cmd-upload.h"
#include "options.h"
#include "util.h"
#include "verbs.h"

const Verb verbs[] = {
        {
                .name = "status",
                .max_args = 0,
                .flags = VERB_DEFAULT,
                .doing = "show the status",
                .synopsis = "status",
                .summary = "Show the instances, OctoPrint versions and jobs",
                .description = "Show each instance (basedir, backup folder and its free space, user, OctoPrint "
                               "version, whether it is usable and whether it can be restored) and the running "
                               "jobs; with -i, only that instance. This is what runs without a command.",
                .run = cmd_status,
        },
        {
                .name = "list",
                .max_args = 0,
                .options = OPTION_REMOTE,
                .doing = "list backups",
                .synopsis = "list [--remote NAME]",
                .summary = "List the backups of the instance, newest first",
                .description = "List the valid backups of the instance, newest first: name, date, size, "
                               "OctoPrint version and the folders they leave out. With --remote, those on that "
                               "remote: name, date, size.",
                .run = cmd_list,
        },
        {
                .name = "backup",
                .max_args = 0,
                .options = OPTION_EXCLUDE | OPTION_NAME | OPTION_WHEN_IDLE | OPTION_NO_WAIT,
                .doing = "back up",
                .action = "create",
                .synopsis = "backup [--exclude ID]... [--name NAME.zip] [--when-idle] [--no-wait]",
                .summary = "Back up the instance",
                .description = "Back up the instance into its backup folder, as OctoPrint's backup plugin "
                               "does. On a terminal a progress bar is shown; Ctrl-C asks whether to cancel the "
                               "backup or leave it running. Without a terminal, SIGINT and SIGTERM cancel it. "
                               "A --when-idle backup skipped because the printer kept printing exits with 5.",
                .run = cmd_backup,
        },
        {
                .name = "restore",
                .min_args = 1,
                .max_args = 1,
                .options = OPTION_SKIP_PLUGINS | OPTION_IGNORE_PLUGIN_ERRORS | OPTION_KEEP_PREVIOUS |
                           OPTION_NO_RESTART | OPTION_YES | OPTION_REMOTE,
                .doing = "restore",
                .action = "restore",
                .wrong_count = "'restore' needs one backup: a NAME in the backup folder or a FILE.",
                .synopsis = "restore NAME|FILE [--skip-plugins] [--ignore-plugin-errors] [--keep-previous] "
                            "[--no-restart] [--yes] | restore --remote NAME BACKUP|latest ...",
                .summary = "Replace the instance's basedir with a backup",
                .description = "Replace the instance's basedir with the contents of a backup: NAME in the "
                               "backup folder, or a local FILE (with a '/', or an existing file; copied into "
                               "the backup folder first). The backup is checked completely before anything "
                               "changes; the backup folder, logs and the folders the backup left out are kept. "
                               "Plugins in the backup are reinstalled from the plugin repository; those that "
                               "cannot be are listed at the end. With --remote, the backup (latest: the newest) "
                               "is fetched from that remote into the backup folder first: on a fresh machine "
                               "with only the remote configured, this brings the instance back. Restoring needs "
                               "an administrator: root, or a polkit rule granting it.",
                .run = cmd_restore,
        },
        {
                .name = "delete",
                .min_args = 1,
                .max_args = VERB_ANY,
                .options = OPTION_REMOTE,
                .doing = "delete backups",
                .action = "delete",
                .wrong_count = "'delete' needs the names of the backups to delete (see 'opbackupctl list').",
                .synopsis = "delete NAME... [--remote NAME]",
                .summary = "Delete backups",
                .description = "Delete backups of the instance (with --remote, those on that remote). All are "
                               "tried; the exit status is that of the first that could not be deleted.",
                .run = cmd_delete,
        },
        {
                .name = "export",
                .min_args = 1,
                .max_args = 1,
                .options = OPTION_OUTPUT | OPTION_FORCE,
                .doing = "export",
                .wrong_count = "'export' needs the name of one backup (see 'opbackupctl list').",
                .synopsis = "export NAME [-o FILE|-] [--force]",
                .summary = "Copy a backup out (to stdout with -o -)",
                .description = "Copy a backup out of the backup folder, into FILE (by way of a temporary file "
                               "renamed into place) or to standard output.",
                .run = cmd_export,
        },
        {
                .name = "import",
                .min_args = 1,
                .max_args = 1,
                .options = OPTION_NAME,
                .doing = "import",
                .action = "create",
                .wrong_count = "'import' needs one FILE (or - for standard input).",
                .synopsis = "import FILE|- [--name NAME.zip]",
                .summary = "Copy a zip into the backup folder",
                .description = "Copy a backup zip (made by opbackup or by OctoPrint) into the instance's backup "
                               "folder. It keeps its file name (or takes --name) if that is a valid backup name "
                               "and free (else NAME.1.zip, ...). With -, the zip is read from standard input "
                               "into an unnamed temporary file first (in $TMPDIR, else /var/tmp).",
                .run = cmd_import,
        },
        {
                .name = "remotes",
                .max_args = 0,
                .doing = "list the remotes",
                .synopsis = "remotes",
                .summary = "List the remotes backups are copied to",
                .description = "List the configured remotes (/etc/opbackup/remotes.d/NAME.conf): name, type "
                               "(s3, webdav, sftp) and URL. 'list --remote NAME' shows the backups on one.",
                .run = cmd_remotes,
        },
        {
                .name = "upload",
                .min_args = 1,
                .max_args = 1,
                .options = OPTION_REMOTE,
                .doing = "upload",
                .action = "create",
                .wrong_count = "'upload' needs the name of one backup (see 'opbackupctl list').",
                .synopsis = "upload NAME [--remote NAME]...",
                .summary = "Copy a backup to remotes",
                .description = "Copy a backup of the backup folder to the remotes given (default: the "
                               "instance's CopyTo=), each checked before it gets its name there. Exits 1 if a "
                               "copy failed, saying why.",
                .run = cmd_upload,
        },
        {
                .name = "fetch",
                .min_args = 1,
                .max_args = 1,
                .options = OPTION_REMOTE,
                .required = OPTION_REMOTE,
                .doing = "fetch",
                .action = "create",
                .wrong_count = "'fetch' needs the name of one backup on the remote, or latest.",
                .synopsis = "fetch --remote NAME BACKUP|latest",
                .summary = "Copy a backup from a remote into the backup folder",
                .description = "Download a backup of the instance from a remote (latest: the newest there) into "
                               "the backup folder, checked like an import; it keeps its name if that is free "
                               "(else NAME.1.zip, ...).",
                .run = cmd_fetch,
        },
        {
                .name = "inspect",
                .min_args = 1,
                .max_args = 1,
                .doing = "inspect",
                .wrong_count = "'inspect' needs one backup: a NAME in the backup folder or a FILE.",
                .synopsis = "inspect NAME|FILE",
                .summary = "Show what a backup holds and if it is valid",
                .description = "Show a backup's metadata, plugin list, entries and sizes, and whether it is a "
                               "valid OctoPrint backup. NAME is a backup of the instance; a FILE (with a '/', "
                               "or an existing file) is read locally, without the service. Exits 1 if it is "
                               "not a valid backup.",
                .run = cmd_inspect,
        },
        {
                .name = "prune",
                .max_args = 0,
                .options = OPTION_KEEP | OPTION_MATCH,
                .required = OPTION_KEEP,
                .doing = "prune backups",
                .action = "delete",
                .synopsis = "prune --keep N [--match GLOB]",
                .summary = "Delete all but the newest N backups",
                .description = "Delete all but the newest N backups (of those whose name matches GLOB). --keep "
                               "is required: a forgotten number must not mean \"delete everything\".",
                .run = cmd_prune,
        },
        {
                .name = "unknown-plugins",
                .max_args = 0,
                .options = OPTION_CLEAR,
                .doing = "list the plugins to reinstall by hand",
                .synopsis = "unknown-plugins [--clear]",
                .summary = "Plugins a restore could not reinstall",
                .description = "The plugins the last restore could not reinstall, with their homepages; plugins "
                               "installed since then drop out. --clear forgets the list.",
                .run = cmd_unknown_plugins,
        },
        {
                .name = "jobs",
                .max_args = 0,
                .doing = "list jobs",
                .synopsis = "jobs",
                .summary = "List the running and queued jobs",
                .description = "List the running and queued backup and restore jobs, oldest first, with their "
                               "stage and progress; with -i, only that instance's.",
                .run = cmd_jobs,
        },
        {
                .name = "cancel",
                .min_args = 1,
                .max_args = 1,
                .doing = "cancel the job",
                .wrong_count = "'cancel' needs one job ID (see 'opbackupctl jobs').",
                .synopsis = "cancel ID",
                .summary = "Cancel a job",
                .description = "Cancel a running or queued job (see 'opbackupctl jobs' for the IDs). It needs "
                               "the authorization that started the job.",
                .run = cmd_cancel,
        },
        {
                .name = "monitor",
                .max_args = 0,
                .doing = "monitor the service",
                .synopsis = "monitor",
                .summary = "Print the service's signals as they come",
                .description = "Print the service's signals as they come, one line each: BackupCreated, "
                               "BackupDeleted, JobNew, JobRemoved and the log lines of jobs, of every instance. "
                               "Stops on Ctrl-C. With --json, one JSON object a line.",
                .run = cmd_monitor,
        },
        {
                .name = "scheduled-backup",
                .max_args = 0,
                .doing = "run the scheduled backups",
                .action = "create",
                .synopsis = "scheduled-backup",
                .summary = "Back up and prune as the timer does",
                .description = "Back up every instance (or the one given with -i) as scheduled: leaving out the "
                               "folders of its [Schedule] Exclude=, waiting while its printer prints, then "
                               "deleting all but the newest Keep= backups with generated names. Run by "
                               "opbackup-backup.service from its timer. A backup skipped because the printer "
                               "kept printing is reported, not a failure; the exit status is that of the first "
                               "instance that failed, else 0.",
                .run = cmd_scheduled_backup,
        },
};

const size_t n_verbs = ELEMENTSOF(verbs);

const Verb *verb_find(const char *name) {
        for (size_t k = 0; k < n_verbs; k++)
                if (streq(verbs[k].name, name))
                        return &verbs[k];
        return NULL;
}

const Verb *verb_default(void) {
        for (size_t k = 0; k < n_verbs; k++)
                if (verbs[k].flags & VERB_DEFAULT)
                        return &verbs[k];
        return NULL;
}
