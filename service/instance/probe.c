/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Probing an instance: its config.yaml and its venv are the user's files, so they are read by a
 * short-lived child that has become the instance user. The child parses config.yaml too (libyaml on
 * hostile input is better done without root) and sends back JSON. */

#include <fcntl.h>
#include <json-c/json.h>
#include <poll.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include "instance/distinfo.h"
#include "instance/probe.h"
#include "log.h"
#include "util.h"
#include "worker/privs.h"

#define PROBE_TIMEOUT_MS 10000
#define PROBE_REPLY_MAX (1U * 1024U * 1024U)

void probe_result_done(ProbeResult *p) {
        free(p->error);
        octoconfig_done(&p->octo);
        free(p->octoprint_version);
        *p = (ProbeResult) {};
}

static void add_string(json_object *o, const char *key, const char *value) {
        if (value)
                json_object_object_add(o, key, json_object_new_string(value));
}

char *probe_result_to_json(const ProbeResult *p) {
        json_object *o = json_object_new_object(), *folders = json_object_new_object();
        char *s;

        add_string(o, "error", p->error);
        add_string(o, "appearance_name", p->octo.appearance_name);
        add_string(o, "backup_path", p->octo.backup_path);
        add_string(o, "plugin_repository", p->octo.plugin_repository);
        add_string(o, "restart_command", p->octo.restart_command);
        json_object_object_add(o, "restore_unsupported", json_object_new_boolean(p->octo.restore_unsupported));
        for (int i = 0; i < _FOLDER_MAX; i++)
                add_string(folders, folder_id_to_string(i), p->octo.folders[i]);
        json_object_object_add(o, "folders", folders);
        add_string(o, "octoprint_version", p->octoprint_version);
        json_object_object_add(o, "has_pip", json_object_new_boolean(p->has_pip));

        s = strdup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        json_object_put(o);
        return s;
}

static int get_string(json_object *o, const char *key, char **ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        return free_and_strdup(ret, json_object_get_string(v));
}

int probe_result_from_json(const char *json, ProbeResult *ret) {
        _cleanup_(probe_result_done) ProbeResult p = {};
        json_object *o, *v;
        int r = 0;

        o = json_tokener_parse(json);
        if (!o || !json_object_is_type(o, json_type_object)) {
                json_object_put(o);
                return -EBADMSG;
        }
        if ((r = get_string(o, "error", &p.error)) < 0 ||
            (r = get_string(o, "appearance_name", &p.octo.appearance_name)) < 0 ||
            (r = get_string(o, "backup_path", &p.octo.backup_path)) < 0 ||
            (r = get_string(o, "plugin_repository", &p.octo.plugin_repository)) < 0 ||
            (r = get_string(o, "restart_command", &p.octo.restart_command)) < 0 ||
            (r = get_string(o, "octoprint_version", &p.octoprint_version)) < 0)
                goto finish;
        if (json_object_object_get_ex(o, "restore_unsupported", &v))
                p.octo.restore_unsupported = json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "has_pip", &v))
                p.has_pip = json_object_get_boolean(v);
        if (json_object_object_get_ex(o, "folders", &v) && json_object_is_type(v, json_type_object))
                for (int i = 0; i < _FOLDER_MAX; i++)
                        if ((r = get_string(v, folder_id_to_string(i), &p.octo.folders[i])) < 0)
                                goto finish;
        *ret = p;
        p = (ProbeResult) {};
finish:
        json_object_put(o);
        return r;
}

static int probe_config(const char *config_file, ProbeResult *p) {
        _cleanup_close_ int fd = -1;
        _cleanup_free_ char *data = NULL, *err = NULL;
        size_t size;
        int r;

        fd = open(config_file, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
        if (fd < 0)
                return asprintf(&p->error, "Cannot read %s: %s", config_file, strerror(errno)) < 0 ? -ENOMEM : 0;
        r = read_full_fd(fd, OCTOCONFIG_SIZE_MAX, &data, &size);
        if (r == -EFBIG)
                return asprintf(&p->error, "%s is larger than %u MiB: not an OctoPrint config.yaml",
                                config_file, OCTOCONFIG_SIZE_MAX >> 20) < 0 ? -ENOMEM : 0;
        if (r < 0)
                return asprintf(&p->error, "Cannot read %s: %s", config_file, strerror(-r)) < 0 ? -ENOMEM : 0;
        r = octoconfig_parse(data, size, &p->octo, &err);
        if (r < 0)
                return asprintf(&p->error, "Cannot parse %s: %s", config_file,
                                err ?: strerror(-r)) < 0 ? -ENOMEM : 0;
        return 0;
}

static int probe_venv(const char *venv, ProbeResult *p) {
        _cleanup_free_ char *site = NULL, *pip = NULL;
        _cleanup_close_ int fd = -1;
        struct stat st;
        int r;

        if (!venv)
                return asprintf(&p->error, "No Python environment configured and none found: set Python= "
                                "in the instance's configuration") < 0 ? -ENOMEM : 0;
        r = venv_open_site_packages(venv, &site, &fd);
        if (r < 0)
                return asprintf(&p->error, "No site-packages in the Python environment %s: %s", venv,
                                strerror(-r)) < 0 ? -ENOMEM : 0;
        r = distinfo_octoprint_version(fd, &p->octoprint_version);
        if (r < 0)
                return asprintf(&p->error, "OctoPrint is not installed in %s (no OctoPrint-*.dist-info): "
                                "check Python= in the instance's configuration", site) < 0 ? -ENOMEM : 0;
        if (asprintf(&pip, "%s/bin/pip", venv) < 0)
                return -ENOMEM;
        p->has_pip = stat(pip, &st) == 0 && S_ISREG(st.st_mode);
        return 0;
}

/* What a probe finds, in the child. A negative return: it could not even find out. */
static int probe_collect(const char *basedir, const char *config_file, const char *venv, ProbeResult *p) {
        struct stat st;
        int r;

        if (stat(basedir, &st) < 0 || !S_ISDIR(st.st_mode))
                return asprintf(&p->error, "Basedir %s is not a readable folder: %s", basedir,
                                errno ? strerror(errno) : "not a folder") < 0 ? -ENOMEM : 0;
        r = probe_config(config_file, p);
        if (r >= 0 && !p->error)
                r = probe_venv(venv, p);
        return r;
}

static _Noreturn void probe_child(int wfd, const char *basedir, const char *config_file, const char *venv) {
        _cleanup_(probe_result_done) ProbeResult p = {};
        _cleanup_free_ char *json = NULL;

        errno = 0;
        if (probe_collect(basedir, config_file, venv, &p) < 0)
                _exit(EXIT_FAILURE);
        json = probe_result_to_json(&p);
        if (!json || write_all(wfd, json, strlen(json)) < 0)
                _exit(EXIT_FAILURE);
        _exit(EXIT_SUCCESS);
}

int probe_task(void *userdata, json_object **ret_json, int *ret_fd) {
        const ProbeArgs *a = userdata;
        _cleanup_(probe_result_done) ProbeResult p = {};
        _cleanup_free_ char *json = NULL;
        int r;

        errno = 0;
        r = probe_collect(a->basedir, a->config_file, a->venv, &p);
        if (r < 0)
                return r;
        json = probe_result_to_json(&p);
        if (!json)
                return -ENOMEM;
        *ret_json = json_tokener_parse(json);
        return *ret_json ? 0 : -ENOMEM;
}

static int read_with_timeout(int fd, char **ret) {
        struct timespec start;
        size_t size = 0;
        _cleanup_free_ char *buf = malloc(PROBE_REPLY_MAX + 1);

        if (!buf)
                return -ENOMEM;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (;;) {
                struct pollfd pfd = { .fd = fd, .events = POLLIN };
                struct timespec now;
                long elapsed;
                ssize_t k;
                int r;

                clock_gettime(CLOCK_MONOTONIC, &now);
                elapsed = (now.tv_sec - start.tv_sec) * 1000 + (now.tv_nsec - start.tv_nsec) / 1000000;
                if (elapsed >= PROBE_TIMEOUT_MS)
                        return -ETIMEDOUT;
                r = poll(&pfd, 1, PROBE_TIMEOUT_MS - elapsed);
                if (r < 0 && errno != EINTR)
                        return -errno;
                if (r <= 0)
                        continue;
                k = read(fd, buf + size, PROBE_REPLY_MAX - size);
                if (k < 0 && errno != EINTR && errno != EAGAIN)
                        return -errno;
                if (k == 0)
                        break;
                if (k > 0)
                        size += k;
                if (size >= PROBE_REPLY_MAX)
                        return -EFBIG;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        return 0;
}

int probe_run(uid_t uid, gid_t gid, const char *basedir, const char *config_file, const char *venv,
              ProbeResult *ret) {
        _cleanup_free_ char *json = NULL;
        int fds[2], r, status;
        pid_t pid;

        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        privs_groups_prepare(uid, gid);
        r = fork_worker("opbackup-probe", &pid);
        if (r < 0) {
                close(fds[0]);
                close(fds[1]);
                return r;
        }
        if (r == 0) {
                close(fds[0]);
                if (drop_privileges(uid, gid) < 0)
                        _exit(EXIT_FAILURE);
                probe_child(fds[1], basedir, config_file, venv);
        }

        close(fds[1]);
        r = read_with_timeout(fds[0], &json);
        close(fds[0]);
        if (r < 0)
                kill(pid, SIGKILL);
        (void) waitpid(pid, &status, 0);
        if (r < 0)
                return r;
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                return -EPROTO;
        return probe_result_from_json(json, ret);
}
