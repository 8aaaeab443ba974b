/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Remotes (opbackupd.conf(5), REMOTES): other machines' storage every backup of an instance can be copied to.
 * <config dir>/remotes.d/<name>.conf, one remote each, the name under the same rule as instance names.
 * Parsed with inih, like the instance files. */

typedef enum RemoteType {
        REMOTE_TYPE_INVALID = -1,
        REMOTE_TYPE_S3,
        REMOTE_TYPE_WEBDAV,
        REMOTE_TYPE_SFTP,
} RemoteType;

typedef enum RemoteVerify {
        REMOTE_VERIFY_SIZE,             /* the size after the upload (and S3's checksums) */
        REMOTE_VERIFY_FULL,             /* also read the upload back and compare its SHA-256 */
} RemoteVerify;

#define REMOTES_MAX 256U
#define REMOTES_PER_BACKUP_MAX 8U        /* CopyTo=, UploadBackup */
#define REMOTE_CREDENTIALS_MAX (16U * 1024U)
/* S3's limits: parts of 5 MiB to 5 GiB, one PUT of at most 5 GiB. */
#define REMOTE_S3_PART_MIN (5ULL << 20)
#define REMOTE_S3_PUT_MAX (5ULL << 30)
#define REMOTE_S3_PART_SIZE_DEFAULT (64ULL << 20)
#define REMOTE_S3_THRESHOLD_DEFAULT (2ULL << 30)
#define REMOTE_TIMEOUT_DEFAULT_S 60U
#define REMOTE_TIMEOUT_MAX_S 3600U

typedef struct RemoteConfig {
        char *name;
        char *source;                   /* the file it came from */
        RemoteType type;
        char *url;                      /* without a trailing slash; never holds a password (refused) */
        char *region;                   /* s3; default us-east-1 */
        char *credentials_file;
        char *host_key_sha256;          /* sftp: base64, without "SHA256:" and '=' padding */
        char *ca_file;
        unsigned keep;                  /* 0 = keep all */
        RemoteVerify verify;
        uint64_t part_size;             /* s3: of a multipart upload's parts; 0 = the default */
        uint64_t multipart_threshold;   /* s3: larger archives go in parts; 0 = the default */
        unsigned timeout_s;             /* a transfer without progress for this long fails; 0 = the default */
        char *error;                    /* set when the remote cannot be used: why, for a person */
} RemoteConfig;

/* Loads dir/remotes.d/\*.conf, sorted by name. A broken file is kept with ->error set (listed, but every
 * transfer to it refused with that reason). A missing folder is no remotes. Only -ENOMEM fails. */
int remote_config_load_dir(const char *dir, RemoteConfig ***ret, size_t *ret_n);
int remote_config_load(const char *path, const char *name, RemoteConfig **ret);

RemoteConfig *remote_config_free(RemoteConfig *rc);
void remote_config_free_many(RemoteConfig **l, size_t n);
const RemoteConfig *remote_config_find(RemoteConfig *const *l, size_t n, const char *name);

const char *remote_type_to_string(RemoteType t);
RemoteType remote_type_from_string(const char *s);

/* The credentials, read from rc->credentials_file by the daemon (root) and sent to the transfer helper over
 * its socket: s3: the key id and secret; webdav: user and password; sftp: the private key itself (secret). */
typedef struct RemoteCredentials {
        char *user;                     /* AccessKeyId= / User= */
        char *secret;                   /* SecretAccessKey= / Password= / the key file's text */
        size_t secret_size;
} RemoteCredentials;

/* Reads them. The file must be a regular file owned by owner_uid (root, 0, in the daemon) and readable by
 * it alone (mode 0600 or 0400): anyone else who could read it would learn the secret, anyone who could
 * write it could redirect the backups. -EPERM (and *ret_why) otherwise, -EINVAL for a file that does not
 * hold what the type needs. */
int remote_credentials_read(const RemoteConfig *rc, uid_t owner_uid, RemoteCredentials *ret, char **ret_why);
/* Overwrites the secret before freeing it. */
void remote_credentials_done(RemoteCredentials *c);
