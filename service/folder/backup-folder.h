/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Safe access to the files of a backup folder, for workers running as the instance user. */

/* Opens the backup folder (O_DIRECTORY); -ENOENT if it does not exist. */
int backup_folder_open(const char *path, int *ret_fd);

/* Opens a backup by name for reading: the name must be valid (opbackupd(8), ARCHIVE FORMAT), the file a
 * regular file, not a symlink. Returns -EINVAL (bad name), -ENOENT, -ELOOP (symlink), -EBADF (not a regular
 * file). */
int backup_open_at(int dir_fd, const char *name, int *ret_fd);
/* The same, also returning the fstat() of what was opened. */
int backup_open_at_stat(int dir_fd, const char *name, int *ret_fd, struct stat *ret_st);

/* A backup's metadata.json, read without trusting the archive: sizes and counts are bounded. */
typedef struct BackupInfo {
        char *version;
        char **excludes;
        uint64_t uncompressed;
} BackupInfo;

/* Reads metadata from an open zip fd (the fd is not consumed, its offset is not used). On failure
 * *ret_error says why it is not an OctoPrint backup. -EBADF if fd is no regular file. */
int backup_info_read(int fd, BackupInfo *ret, char **ret_error);
/* The same when the caller has fstat()ed fd already: size is its st_size. */
int backup_info_read_sized(int fd, uint64_t size, BackupInfo *ret, char **ret_error);
void backup_info_done(BackupInfo *b);
/* metadata.json's text (NUL-terminated) into b: a JSON object with a string "version". */
int backup_metadata_parse(const char *text, BackupInfo *b, char **ret_error);
#define METADATA_SIZE_MAX (64U * 1024U)

/* Hidden temp files of backups in progress: ".<valid name>" and libzip's ".<valid name>.XXXXXX". */
bool backup_is_temp_name(const char *name);

/* The copy an import makes where the file system cannot make an unnamed one (O_TMPFILE):
 * ".import-" 16 hex digits ".tmp", a name no backup ever has. */
#define IMPORT_TEMP_PREFIX ".import-"
#define IMPORT_TEMP_SUFFIX ".tmp"
bool import_is_temp_name(const char *name);
