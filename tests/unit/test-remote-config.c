/* SPDX-License-Identifier: GPL-2.0-or-later */
/* remotes.d/<name>.conf, CopyTo= and the credentials files (opbackupd.conf(5), REMOTES). */
#include <sys/stat.h>

#include "instance/config.h"
#include "remote/remote-config.h"
#include "test-util.h"

static const RemoteConfig *get(const DaemonConfig *c, const char *name) {
        const RemoteConfig *rc = remote_config_find(c->remotes, c->n_remotes, name);

        if (!rc) {
                fprintf(stderr, "remote %s not found\n", name);
                exit(EXIT_FAILURE);
        }
        return rc;
}

/* One remote of each type, as the manual page shows them, and an instance copying to two of them. */
static void test_good(void) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};
        const RemoteConfig *rc;

        write_file(dir, "remotes.d/nas.conf",
                   "[Remote]\n"
                   "Type=sftp\n"
                   "URL=sftp://backup@nas.example.org:2222/srv/backups/octoprint/   # the trailing / is dropped\n"
                   "CredentialsFile=/etc/opbackup/keys/nas\n"
                   "HostKeySHA256=SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8\n"
                   "Keep=30\n"
                   "Verify=full\n");
        write_file(dir, "remotes.d/s3.conf",
                   "[Remote]\n"
                   "Type=S3\n"
                   "URL=https://s3.example.org/bucket/prefix\n"
                   "CredentialsFile=/etc/opbackup/keys/s3\n"
                   "PartSize=16m\n"
                   "Timeout=15\n"
                   "MultipartThreshold=5368709120\n");
        write_file(dir, "remotes.d/cloud.conf",
                   "[Remote]\n"
                   "Type=webdav\n"
                   "URL=https://cloud.example.org/remote.php/dav/files/me/octoprint\n"
                   "CAFile=/etc/ssl/private-ca.pem\n");
        write_file(dir, "remotes.d/.old.conf", "garbage");
        write_file(dir, "instances.d/pi.conf",
                   "[OctoPrint]\nBasedir=/home/pi/.octoprint\n[Backup]\nCopyTo=nas s3   # both\n");
        ASSERT_EQ(daemon_config_load(dir, 30, &c), 0);
        ASSERT_EQ(c.n_remotes, 3);
        ASSERT_STREQ(c.remotes[0]->name, "cloud");      /* sorted */

        rc = get(&c, "nas");
        ASSERT_NULL(rc->error);
        ASSERT_EQ(rc->type, REMOTE_TYPE_SFTP);
        ASSERT_STREQ(rc->url, "sftp://backup@nas.example.org:2222/srv/backups/octoprint");
        ASSERT_STREQ(rc->host_key_sha256, "nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8");
        ASSERT_EQ(rc->keep, 30);
        ASSERT_EQ(rc->verify, REMOTE_VERIFY_FULL);

        rc = get(&c, "s3");
        ASSERT_NULL(rc->error);
        ASSERT_EQ(rc->type, REMOTE_TYPE_S3);
        ASSERT_STREQ(rc->region, "us-east-1");          /* the default */
        ASSERT_EQ(rc->verify, REMOTE_VERIFY_SIZE);
        ASSERT_EQ(rc->part_size, 16ULL << 20);
        ASSERT_EQ(rc->timeout_s, 15);
        ASSERT_EQ(rc->multipart_threshold, 5ULL << 30);

        rc = get(&c, "cloud");
        ASSERT_NULL(rc->error);
        ASSERT_NULL(rc->credentials_file);              /* a WebDAV server without a login */
        ASSERT_STREQ(rc->ca_file, "/etc/ssl/private-ca.pem");

        ASSERT_EQ(c.n_instances, 1);
        ASSERT_EQ(strv_length(c.instances[0]->copy_to), 2);
        ASSERT_STREQ(c.instances[0]->copy_to[1], "s3");
        daemon_config_done(&c);
        rm_rf(dir);
}

static void expect_error(const char *text, const char *what) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};

        write_file(dir, "remotes.d/r.conf", text);
        ASSERT_EQ(daemon_config_load(dir, 30, &c), 0);
        ASSERT_EQ(c.n_remotes, 1);                      /* kept, to be listed with the reason */
        ASSERT_CONTAINS(c.remotes[0]->error, what);
        daemon_config_done(&c);
        rm_rf(dir);
}

static void test_bad(void) {
        expect_error("[Remote]\nURL=https://h/b\n", "Type= is not set");
        expect_error("[Remote]\nType=ftp\nURL=ftp://h/b\n", "expected s3, webdav or sftp");
        expect_error("[Remote]\nType=webdav\n", "URL= is not set");
        expect_error("[Remote]\nType=webdav\nURL=sftp://u@h/p\n", "needs an https://");
        expect_error("[Remote]\nType=webdav\nURL=https://me:secret@h/p\n", "contains a password");
        expect_error("[Remote]\nType=webdav\nURL=https://h\n", "a host and a path are needed");
        expect_error("[Remote]\nType=webdav\nURL=https://h/a/../b\n", "\"..\"");
        expect_error("[Remote]\nType=s3\nURL=https://h/bucket\n", "CredentialsFile= is not set");
        expect_error("[Remote]\nType=s3\nURL=https://h/bucket\nCredentialsFile=keys/s3\n", "expected an absolute path");
        expect_error("[Remote]\nType=sftp\nURL=sftp://h/p\nCredentialsFile=/k\n", "name the user");
        expect_error("[Remote]\nType=sftp\nURL=sftp://u@h/p\nCredentialsFile=/k\n", "HostKeySHA256= is not set");
        expect_error("[Remote]\nType=sftp\nURL=sftp://u@h/p\nCredentialsFile=/k\nHostKeySHA256=abc\n",
                     "fingerprint");
        expect_error("[Remote]\nType=s3\nURL=https://h/b\nCredentialsFile=/k\nKeep=-1\n", "a number");
        expect_error("[Remote]\nType=s3\nURL=https://h/b\nCredentialsFile=/k\nVerify=md5\n", "size or full");
        expect_error("[Remote]\nType=s3\nURL=https://h/b\nCredentialsFile=/k\nPartSize=4M\n", "from 5M to 5G");
        expect_error("[Remote]\nType=s3\nURL=https://h/b\nCredentialsFile=/k\nPartSize=6G\n", "from 5M to 5G");
        expect_error("[Remote]\nType=s3\nURL=https://h/b\nCredentialsFile=/k\nMultipartThreshold=1T\n",
                     "from 5M to 5G");
        expect_error("[Remote]\nType=s3\nURL=https://h/b\nCredentialsFile=/k\nPartSize=-5M\n", "from 5M to 5G");
        expect_error("[Remote]\nType=webdav\nURL=https://h/b\nTimeout=0\n", "seconds from 1 to 3600");
        expect_error("[Remote]\nType=webdav\nURL=https://h/b\nTimeout=1h\n", "seconds from 1 to 3600");
}

/* CopyTo= names: valid, each once; an unknown remote leaves the instance usable (the upload says why). */
static void test_copy_to(void) {
        _cleanup_free_ char *dir = make_tempdir();
        DaemonConfig c = {};

        write_file(dir, "instances.d/a.conf", "[OctoPrint]\nBasedir=/a\n[Backup]\nCopyTo=x x\n");
        write_file(dir, "instances.d/b.conf", "[OctoPrint]\nBasedir=/b\n[Backup]\nCopyTo=../etc\n");
        write_file(dir, "instances.d/c.conf", "[OctoPrint]\nBasedir=/c\n[Backup]\nCopyTo=missing\n");
        ASSERT_EQ(daemon_config_load(dir, 30, &c), 0);
        ASSERT_EQ(c.n_instances, 3);
        ASSERT_CONTAINS(c.instances[0]->error, "CopyTo=x x: expected names of remotes");
        ASSERT_CONTAINS(c.instances[1]->error, "CopyTo=../etc");
        ASSERT_NULL(c.instances[2]->error);
        ASSERT_STREQ(c.instances[2]->copy_to[0], "missing");
        daemon_config_done(&c);
        rm_rf(dir);
}

static RemoteConfig *load_one(const char *dir, const char *text) {
        _cleanup_free_ char *path = NULL;
        RemoteConfig *rc;

        write_file(dir, "remotes.d/r.conf", text);
        ASSERT_TRUE(asprintf(&path, "%s/remotes.d/r.conf", dir) > 0);
        ASSERT_EQ(remote_config_load(path, "r", &rc), 0);
        ASSERT_NULL(rc->error);
        return rc;
}

/* The credentials file: its owner and mode are checked before anything is read from it. */
static void test_credentials(void) {
        _cleanup_free_ char *dir = make_tempdir(), *conf = NULL, *key = NULL, *why = NULL;
        RemoteCredentials cred;
        RemoteConfig *rc;

        ASSERT_TRUE(asprintf(&key, "%s/key", dir) > 0);
        ASSERT_TRUE(asprintf(&conf, "[Remote]\nType=s3\nURL=http://127.0.0.1:1/b\nCredentialsFile=%s\n", key) > 0);
        rc = load_one(dir, conf);
        write_file(dir, "key", "# test\nAccessKeyId = AKID\nSecretAccessKey=se cret=x\n");

        ASSERT_EQ(chmod(key, 0640), 0);
        ASSERT_EQ(remote_credentials_read(rc, getuid(), &cred, &why), -EPERM);
        ASSERT_CONTAINS(why, "mode 0640");
        ASSERT_CONTAINS(why, "chmod 600");
        free(why);
        why = NULL;
        ASSERT_EQ(remote_credentials_read(rc, getuid() + 1, &cred, &why), -EPERM);  /* not the owner */
        free(why);
        why = NULL;

        ASSERT_EQ(chmod(key, 0400), 0);
        ASSERT_EQ(remote_credentials_read(rc, getuid(), &cred, &why), 0);
        ASSERT_STREQ(cred.user, "AKID");
        ASSERT_STREQ(cred.secret, "se cret=x");
        remote_credentials_done(&cred);

        ASSERT_EQ(chmod(key, 0600), 0);
        write_file(dir, "key", "AccessKeyId=AKID\n");
        ASSERT_EQ(remote_credentials_read(rc, getuid(), &cred, &why), -EINVAL);
        ASSERT_CONTAINS(why, "SecretAccessKey=");
        free(why);
        why = NULL;
        remote_config_free(rc);

        /* sftp: the file is the private key. */
        free(conf);
        conf = NULL;
        ASSERT_TRUE(asprintf(&conf, "[Remote]\nType=sftp\nURL=sftp://u@127.0.0.1/p\nCredentialsFile=%s\n"
                             "HostKeySHA256=nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8=\n", key) > 0);
        rc = load_one(dir, conf);
        ASSERT_EQ(remote_credentials_read(rc, getuid(), &cred, &why), -EINVAL);
        ASSERT_CONTAINS(why, "not an OpenSSH private key");
        free(why);
        why = NULL;
        write_file(dir, "key", "-----BEGIN OPENSSH PRIVATE KEY-----\nabc\n-----END OPENSSH PRIVATE KEY-----\n");
        ASSERT_EQ(remote_credentials_read(rc, getuid(), &cred, &why), 0);
        ASSERT_EQ(cred.secret_size, strlen(cred.secret));
        remote_credentials_done(&cred);

        /* A symlink is not followed: whoever could make one could point it at another file. */
        ASSERT_EQ(unlink(key), 0);
        ASSERT_EQ(symlink("/etc/passwd", key), 0);
        ASSERT_TRUE(remote_credentials_read(rc, getuid(), &cred, &why) < 0);
        ASSERT_CONTAINS(why, "Cannot open");
        remote_config_free(rc);
        rm_rf(dir);
}

int main(void) {
        RUN(test_good);
        RUN(test_bad);
        RUN(test_copy_to);
        RUN(test_credentials);
        return 0;
}
