/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Shared by the libFuzzer targets (tests/fuzz/): the input as a file descriptor, for code that reads
 * files rather than buffers. */

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A memfd holding data, offset 0; -errno on failure (the target then aborts: that is a setup bug). */
static inline int fuzz_memfd(const uint8_t *data, size_t size) {
        _cleanup_close_ int fd = memfd_create("fuzz-input", MFD_CLOEXEC);

        if (fd < 0)
                return -errno;
        if (size > 0 && write_all(fd, data, size) < 0)
                return -EIO;
        if (lseek(fd, 0, SEEK_SET) < 0)
                return -errno;
        return TAKE_FD(fd);
}

/* A new folder under $TMPDIR (tests/run-fuzz.sh points it at its work folder, which it removes), for
 * code that reads files by path or below a directory fd. Aborts on failure. */
static inline char *fuzz_mkdtemp(const char *prefix) {
        const char *tmp = getenv("TMPDIR");
        char *t;

        if (asprintf(&t, "%s/%s.XXXXXX", tmp && *tmp ? tmp : "/tmp", prefix) < 0 || !mkdtemp(t))
                abort();
        return t;
}
