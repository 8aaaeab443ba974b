/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The daemon's INI files (service/instance/config.c, inih): the input is read either as an instance file
 * (instances.d/<name>.conf) on top of defaults, or as opbackupd.conf with its [Daemon] section; the first
 * byte picks which. */

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "fuzz-util.h"
#include "instance/config.h"
#include "log.h"

static char *tmp_dir;

/* A folder of this process's own, made once: daemon_config_load() reads <dir>/opbackupd.conf by path. */
static const char *fuzz_dir(void) {
        static const char instance[] = "[OctoPrint]\nBasedir=/home/pi/.octoprint\n";
        _cleanup_close_ int fd = -1;
        char *sub;

        if (tmp_dir)
                return tmp_dir;
        tmp_dir = fuzz_mkdtemp("fuzz-config");
        if (asprintf(&sub, "%s/instances.d", tmp_dir) < 0 || mkdir(sub, 0700) < 0)
                abort();
        free(sub);
        /* One instance, so that the defaults of the fuzzed opbackupd.conf are applied to something. */
        if (asprintf(&sub, "%s/instances.d/pi.conf", tmp_dir) < 0 ||
            (fd = open(sub, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600)) < 0 ||
            write_all(fd, instance, strlen(instance)) < 0)
                abort();
        free(sub);
        /* Broken files are logged: keep the fuzzer's output readable (and fast). */
        log_set_max_level(LOG_CRIT);
        return tmp_dir;
}

static void load_instance(const uint8_t *data, size_t size) {
        _cleanup_close_ int fd = fuzz_memfd(data, size);
        InstanceConfig defaults = {
                .name = (char *) "defaults",
                .compression_level = 5,
                .print_poll_sec = PRINT_POLL_SEC_DEFAULT,
                .print_wait_max_sec = PRINT_WAIT_MAX_SEC_DEFAULT,
        };
        InstanceConfig *ic = NULL;
        char path[64];

        if (fd < 0)
                abort();
        snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
        if (instance_config_load(path, "fuzz", &defaults, &ic) < 0)
                return;
        (void) instance_config_finish(ic);
        instance_config_free(ic);
}

static void load_daemon(const uint8_t *data, size_t size) {
        _cleanup_free_ char *path = NULL;
        _cleanup_close_ int fd = -1;
        const char *dir = fuzz_dir();
        DaemonConfig c = {};

        if (asprintf(&path, "%s/opbackupd.conf", dir) < 0)
                abort();
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0 || write_all(fd, data, size) < 0)
                abort();
        if (daemon_config_load(dir, 30, &c) >= 0)
                daemon_config_done(&c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        if (size == 0)
                return 0;
        if (data[0] & 1)
                load_daemon(data + 1, size - 1);
        else
                load_instance(data + 1, size - 1);
        return 0;
}
