/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <libgen.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "instance/instance.h"
#include "instance/probe.h"
#include "log.h"
#include "util.h"
#include "worker/privs.h"
#include "worker/worker.h"

/* As long as probe_run() waits. */
#define PROBE_TIMEOUT_SEC 10U

int instance_new(Daemon *d, InstanceConfig *config, Instance **ret) {
        Instance *i;
        int r;

        i = calloc(1, sizeof(*i));
        if (!i)
                return -ENOMEM;
        i->daemon = d;
        i->uid = (uid_t) -1;
        i->gid = (gid_t) -1;
        i->name = strdup(config->name);
        if (!i->name) {
                free(i);
                return -ENOMEM;
        }
        r = sd_bus_path_encode(OBJECT_INSTANCE_PREFIX, i->name, &i->object_path);
        if (r < 0) {
                free(i->name);
                free(i);
                return r;
        }
        i->config = config;
        *ret = i;
        return 0;
}

static void instance_clear_probe(Instance *i) {
        free(i->user);
        octoconfig_done(&i->octo);
        free(i->backup_folder);
        free(i->venv);
        free(i->octoprint_version);
        free(i->unusable_reason);
        free(i->restore_unsupported_reason);
        i->user = i->backup_folder = i->venv = i->octoprint_version = NULL;
        i->unusable_reason = i->restore_unsupported_reason = NULL;
        i->has_pip = false;
}

static void remote_status_done(InstanceRemoteStatus *s) {
        free(s->remote);
        free(s->name);
        free(s->result);
        free(s->error);
}

int instance_set_remote_status(Instance *i, const char *remote, const char *name, uint64_t time_usec,
                               const char *result, const char *error) {
        InstanceRemoteStatus s = {
                .remote = strdup(remote), .name = strdup(name), .time_usec = time_usec,
                .result = strdup(result), .error = strdup(strempty(error)),
        };
        size_t k;

        if (!s.remote || !s.name || !s.result || !s.error) {
                remote_status_done(&s);
                return -ENOMEM;
        }
        for (k = 0; k < i->n_remote_status; k++)
                if (streq(i->remote_status[k].remote, remote))
                        break;
        if (k == i->n_remote_status) {
                InstanceRemoteStatus *n = reallocarray(i->remote_status, k + 1, sizeof(InstanceRemoteStatus));
                if (!n) {
                        remote_status_done(&s);
                        return -ENOMEM;
                }
                i->remote_status = n;
                i->n_remote_status++;
        } else
                remote_status_done(&i->remote_status[k]);
        i->remote_status[k] = s;
        return 0;
}

Instance *instance_free(Instance *i) {
        if (!i)
                return NULL;
        for (size_t k = 0; k < i->n_remote_status; k++)
                remote_status_done(&i->remote_status[k]);
        free(i->remote_status);
        instance_clear_probe(i);
        backup_refresh_free(i->refresh);
        backup_cache_done(&i->backup_cache);
        strv_free(i->importing);
        instance_config_free(i->config);
        free(i->name);
        free(i->object_path);
        free(i);
        return NULL;
}

static int env_truthy(const char *name, const char **ret_value) {
        const char *v = getenv(name);

        *ret_value = v;
        return v && parse_boolean(v) > 0;
}

int restore_support_reason(bool config_unsupported, const char *config_source, bool yaml_unsupported,
                           const char *env_octoprint, const char *env_opbackup, bool parent_writable,
                           const char *basedir_parent, const char *read_only_fix, bool has_venv,
                           char **ret_reason) {
        int r = 0;

        *ret_reason = NULL;
        if (config_unsupported)
                r = asprintf(ret_reason, "Restore is disabled by Unsupported=yes in %s", strempty(config_source));
        else if (env_octoprint && parse_boolean(env_octoprint) > 0)
                r = asprintf(ret_reason, "Restore is disabled by the environment variable "
                             "OCTOPRINT_BACKUP_RESTORE_UNSUPPORTED=%s", env_octoprint);
        else if (env_opbackup && parse_boolean(env_opbackup) > 0)
                r = asprintf(ret_reason, "Restore is disabled by the environment variable "
                             "OPBACKUP_RESTORE_UNSUPPORTED=%s", env_opbackup);
        else if (yaml_unsupported)
                r = asprintf(ret_reason, "Restore is disabled by plugins.backup.restore_unsupported in config.yaml");
        else if (!parent_writable && read_only_fix)
                r = asprintf(ret_reason, "Restore is not possible: the folder containing the basedir (%s) "
                             "is read-only for opbackupd. %s", strempty(basedir_parent), read_only_fix);
        else if (!parent_writable)
                r = asprintf(ret_reason, "Restore is not possible: the folder containing the basedir (%s) "
                             "is not writable", strempty(basedir_parent));
        else if (!has_venv)
                r = asprintf(ret_reason, "Restore is not possible: the instance has no Python environment "
                             "to reinstall plugins with (set Python=)");
        /* No pip is no reason: only reinstalling plugins needs it, and a restore that must reinstall some
         * says so itself (restore-worker.c), before it changes anything. */
        return r < 0 ? -ENOMEM : 0;
}


/* Replaces *p with a message made of fmt and one string argument. */
#define set_reason(p, fmt, arg) (free(*(p)), asprintf((p), fmt, (arg)) < 0 ? -ENOMEM : 0)

static int instance_find_user(Instance *i) {
        struct stat st;
        int r;

        if (i->config->user) {
                r = resolve_user(i->config->user, &i->uid, &i->gid, &i->user);
                if (r < 0)
                        return set_reason(&i->unusable_reason, "User=%s does not exist", i->config->user);
        } else {
                if (stat(i->config->basedir, &st) < 0)
                        return asprintf(&i->unusable_reason, "Basedir %s cannot be used: %s",
                                        i->config->basedir, strerror(errno)) < 0 ? -ENOMEM : 0;
                r = resolve_user_by_uid(st.st_uid, &i->uid, &i->gid, &i->user);
                if (r < 0)
                        return asprintf(&i->unusable_reason, "The owner of %s (uid %u) has no user entry: "
                                        "set User=", i->config->basedir, (unsigned) st.st_uid) < 0 ? -ENOMEM : 0;
        }
        /* Working as root on a root-owned basedir would defeat the privilege separation; only an
         * explicit User=root allows it. */
        if (i->uid == 0 && !streq_ptr(i->config->user, "root"))
                return set_reason(&i->unusable_reason, "Basedir %s belongs to root: set User=root explicitly "
                                  "if OctoPrint really runs as root", i->config->basedir);
        return 0;
}

static int instance_compute_paths(Instance *i) {
        if (i->config->python) {
                _cleanup_free_ char *copy = strdup(i->config->python);
                if (!copy)
                        return -ENOMEM;
                /* <venv>/bin/python → <venv> */
                i->venv = strdup(dirname(dirname(copy)));
                if (!i->venv)
                        return -ENOMEM;
        }
        if (i->config->backup_folder)
                i->backup_folder = strdup(i->config->backup_folder);
        else if (i->octo.backup_path)
                i->backup_folder = strdup(i->octo.backup_path);
        else if (asprintf(&i->backup_folder, "%s/data/backup", i->config->basedir) < 0)
                i->backup_folder = NULL;
        return i->backup_folder ? 0 : -ENOMEM;
}

/* path itself, or its nearest existing parent when it does not exist (yet): a backup folder before the
 * first backup is created in that parent. */
static int nearest_existing(const char *path, char **ret) {
        _cleanup_free_ char *p = strdup(path);
        struct stat st;

        if (!p)
                return -ENOMEM;
        while (stat(p, &st) < 0) {
                char *slash = strrchr(p, '/');

                if (errno != ENOENT || !slash)
                        return -errno;
                if (slash == p) {
                        p[1] = 0;
                        break;
                }
                *slash = 0;
        }
        *ret = TAKE_PTR(p);
        return 0;
}

/* Whether writes to path (or where it would be created) fail with "Read-only file system" for this
 * process. opbackupd.service's ProtectSystem=strict makes everything outside its ReadWritePaths= a
 * read-only bind mount in the daemon's mount namespace, which the workers share: the daemon asks here, in
 * that namespace, rather than trusting what the folder looks like from a shell. Root is exempt from
 * permissions, so access(W_OK) fails only for EROFS (and ETXTBSY, irrelevant for folders). */
static bool on_read_only_mount(const char *path) {
        _cleanup_free_ char *p = NULL;

        if (nearest_existing(path, &p) < 0)
                return false;   /* the backup or restore itself reports what is wrong */
        return access(p, W_OK) < 0 && errno == EROFS;
}

static bool path_is_under(const char *path, const char *folder) {
        const char *rest = startswith(path, folder);

        return rest && (*rest == '/' || *rest == 0 || streq(folder, "/"));
}

/* The fix for an instance whose folders are read-only for the daemon: the folders to add to the unit's
 * ReadWritePaths=, named exactly, in one line (it ends up in logs and in status). The basedir's parent
 * covers the basedir, its default backup folder and the restore's staging folder next to the basedir;
 * ReadWritePaths= needs folders that exist when the unit starts. */
static int read_only_fix(Instance *i, char **ret) {
        _cleanup_free_ char *copy = strdup(i->config->basedir), *parent = NULL, *folder = NULL;
        _cleanup_free_ char *paths = NULL;
        const char *d;

        if (!copy)
                return -ENOMEM;
        d = dirname(copy);
        parent = strdup(streq(d, "/") ? i->config->basedir : d);
        if (!parent)
                return -ENOMEM;
        if (i->backup_folder && !path_is_under(i->backup_folder, parent) && on_read_only_mount(i->backup_folder)) {
                int r = nearest_existing(i->backup_folder, &folder);
                if (r < 0)
                        return r;
        }
        if (asprintf(&paths, "%s%s%s", parent, folder ? " " : "", strempty(folder)) < 0)
                return -ENOMEM;
        return asprintf(ret, "If it is writable outside the service, opbackupd.service's ProtectSystem=strict "
                        "hides it: run `systemctl edit opbackupd.service`, add the lines \"[Service]\" and "
                        "\"ReadWritePaths=%s\", then `systemctl restart opbackupd.service` (see opbackupd(8))",
                        paths) < 0 ? -ENOMEM : 0;
}

/* A backup folder the daemon's workers cannot write makes every backup fail with "Read-only file system":
 * status must say so before the first backup does. */
static int instance_check_backup_folder(Instance *i) {
        _cleanup_free_ char *fix = NULL;
        int r;

        if (i->unusable_reason || !i->backup_folder || !on_read_only_mount(i->backup_folder))
                return 0;
        r = read_only_fix(i, &fix);
        if (r < 0)
                return r;
        return asprintf(&i->unusable_reason, "The backup folder %s is on a read-only file system for "
                        "opbackupd, so no backup can be written. %s", i->backup_folder, fix) < 0 ? -ENOMEM : 0;
}

static int instance_compute_restore_support(Instance *i) {
        _cleanup_free_ char *copy = NULL, *fix = NULL;
        const char *env1, *env2, *parent;
        bool writable;
        int r;

        if (i->unusable_reason)
                return set_reason(&i->restore_unsupported_reason, "%s", i->unusable_reason);

        copy = strdup(i->config->basedir);
        if (!copy)
                return -ENOMEM;
        parent = dirname(copy);
        writable = access(parent, W_OK) == 0;
        if (!writable && errno == EROFS) {
                r = read_only_fix(i, &fix);
                if (r < 0)
                        return r;
        }
        (void) env_truthy("OCTOPRINT_BACKUP_RESTORE_UNSUPPORTED", &env1);
        (void) env_truthy("OPBACKUP_RESTORE_UNSUPPORTED", &env2);
        return restore_support_reason(i->config->restore_unsupported, i->config->source,
                                      i->octo.restore_unsupported, env1, env2, writable, parent, fix,
                                      i->venv != NULL, &i->restore_unsupported_reason);
}

/* Takes what a probe found into the instance (r < 0: the probe failed). */
static int instance_apply_probe(Instance *i, int r, ProbeResult *p) {
        if (r < 0)
                r = asprintf(&i->unusable_reason, "Cannot examine the instance as user %s: %s", i->user,
                             strerror(-r)) < 0 ? -ENOMEM : 0;
        else if (p->error)
                i->unusable_reason = TAKE_PTR(p->error);
        else {
                i->octo = p->octo;
                p->octo = (OctoConfig) {};
                i->octoprint_version = TAKE_PTR(p->octoprint_version);
                i->has_pip = p->has_pip;
        }
        return r;
}

static int instance_probe_finish(Instance *i) {
        int r;

        r = instance_compute_paths(i);
        if (r < 0)
                return r;
        r = instance_check_backup_folder(i);
        if (r < 0)
                return r;
        if (i->unusable_reason)
                log_warning("Instance %s is unusable: %s", i->name, i->unusable_reason);
        return instance_compute_restore_support(i);
}

/* The venv a Python= path names: <venv>/bin/python → <venv>. */
static char *venv_of(const char *python) {
        _cleanup_free_ char *copy = python ? strdup(python) : NULL;

        return copy ? strdup(dirname(dirname(copy))) : NULL;
}

int instance_probe(Instance *i) {
        _cleanup_(probe_result_done) ProbeResult p = {};
        int r;

        instance_clear_probe(i);

        if (i->config->error) {
                i->unusable_reason = strdup(i->config->error);
                if (!i->unusable_reason)
                        return -ENOMEM;
                return instance_compute_restore_support(i);
        }

        r = instance_find_user(i);
        if (r < 0)
                return r;
        if (!i->unusable_reason) {
                _cleanup_free_ char *venv = venv_of(i->config->python);

                r = probe_run(i->uid, i->gid, i->config->basedir, i->config->config_file, venv, &p);
                r = instance_apply_probe(i, r, &p);
                if (r < 0)
                        return r;
        }
        return instance_probe_finish(i);
}

struct InstanceProbe {
        Instance *instance;
        Worker *worker;
        instance_probe_done_fn done;
        void *userdata;
};

InstanceProbe *instance_probe_free(InstanceProbe *p) {
        if (!p)
                return NULL;
        worker_free(p->worker);
        free(p);
        return NULL;
}

static void on_probed(int r, WorkerReply *reply, void *userdata) {
        _cleanup_(probe_result_done) ProbeResult p = {};
        InstanceProbe *probe = userdata;
        Instance *i = probe->instance;
        uid_t uid = i->uid;
        gid_t gid = i->gid;
        _cleanup_free_ char *user = TAKE_PTR(i->user);

        /* Until now the instance was left as it was, for those who use it meanwhile. */
        instance_clear_probe(i);
        i->uid = uid;
        i->gid = gid;
        i->user = TAKE_PTR(user);
        if (r >= 0)
                r = probe_result_from_json(json_object_to_json_string_ext(reply->json, JSON_C_TO_STRING_PLAIN), &p);
        r = instance_apply_probe(i, r, &p);
        if (r >= 0)
                r = instance_probe_finish(i);
        if (r < 0)
                log_error_errno(r, "Instance %s: cannot take in what was found: %m", i->name);
        probe->done(i, probe->userdata);
}

int instance_probe_start(Instance *i, instance_probe_done_fn done, void *userdata, InstanceProbe **ret) {
        _cleanup_free_ char *venv = NULL;
        InstanceProbe *probe;
        ProbeArgs a;
        int r;

        /* Only a usable instance has files to read: the others are probed at once, without a worker. */
        if (i->config->error || i->unusable_reason || !i->user)
                return instance_probe(i);
        venv = venv_of(i->config->python);
        if (i->config->python && !venv)
                return -ENOMEM;
        a = (ProbeArgs) { .basedir = i->config->basedir, .config_file = i->config->config_file, .venv = venv };
        probe = calloc(1, sizeof(*probe));
        if (!probe)
                return -ENOMEM;
        *probe = (InstanceProbe) { .instance = i, .done = done, .userdata = userdata };
        r = worker_start(i->daemon->event, i->uid, i->gid, "opbackup-probe", PROBE_TIMEOUT_SEC, probe_task, &a, -1,
                         on_probed, probe, &probe->worker);
        if (r < 0) {
                free(probe);
                return r;
        }
        *ret = probe;
        return 1;
}

int instance_free_space(Instance *i, uint64_t *ret) {
        _cleanup_free_ char *path = NULL;
        struct statvfs sv;

        *ret = 0;
        /* The folder may not exist before the first backup: ask its nearest existing parent. */
        if (!i->backup_folder || nearest_existing(i->backup_folder, &path) < 0 || statvfs(path, &sv) < 0)
                return 0;
        *ret = (uint64_t) sv.f_bavail * sv.f_frsize;
        return 0;
}
