/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

typedef struct Instance Instance;
typedef struct Job Job;
typedef struct RemoteFetch RemoteFetch;

/* A backup of the instance on a remote ("latest": the newest there, by name then time) copied into the
 * backup folder: downloaded (stage "fetching" of job) into an unnamed temporary file of the daemon's, then
 * imported with ImportBackup's code (folder/backup-import.h), which checks it and gives it a free name.
 * done() gets the stored name, or the error in words. Used by FetchRemoteBackup and by RestoreBackup's
 * option "remote". */
typedef void (*remote_fetch_done_fn)(Job *job, const char *stored, const char *error, void *userdata);

int remote_fetch_start(Instance *i, Job *job, const char *remote, const char *name, remote_fetch_done_fn done,
                       void *userdata, RemoteFetch **ret);
void remote_fetch_cancel(RemoteFetch *f);
RemoteFetch *remote_fetch_free(RemoteFetch *f);
