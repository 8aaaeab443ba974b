/* SPDX-License-Identifier: GPL-2.0-or-later */
/* common/zip-directory.c alone: the end-of-central-directory record, ZIP64, and the walk over the central
 * directory's headers. */

#include "fuzz-util.h"
#include "zip-directory.h"

typedef struct Walk {
        uint64_t n;
        uint64_t name_bytes;
} Walk;

static int visit(const ZipDirectoryEntry *e, void *userdata) {
        Walk *w = userdata;

        if (e->index != w->n)
                abort();
        w->n++;
        /* Touch every byte of the name: ASan reports a name pointing outside the buffer. */
        for (size_t i = 0; i < e->name_len; i++)
                w->name_bytes += (uint8_t) e->name[i];
        return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_close_ int fd = fuzz_memfd(data, size);
        ZipDirectory d;
        Walk w = {};

        if (fd < 0)
                abort();
        if (zip_directory_find(fd, &d, NULL) < 0)
                return 0;
        if (d.offset > size || d.size > size - d.offset || d.end_offset > size)
                abort();        /* promised: the directory lies inside the file */
        if (zip_directory_foreach(fd, &d, visit, &w) >= 0 && w.n != d.n_entries)
                abort();        /* promised: exactly as many entries as the end record says */
        return 0;
}
