/* SPDX-License-Identifier: GPL-2.0-or-later */
/* service/folder/backup-metadata.c: what ListBackups reads of a zip — the end record, the central
 * directory, metadata.json's local header and data (stored or deflated, CRC-checked) and its JSON. */

#include "folder/backup-metadata.h"
#include "fuzz-util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_close_ int fd = fuzz_memfd(data, size);
        _cleanup_(backup_info_done) BackupInfo info = {};
        _cleanup_free_ char *why = NULL;
        int r;

        if (fd < 0)
                abort();
        r = backup_metadata_read(fd, size, &info, &why);
        if (r >= 0 && (!info.version || !info.excludes || why))
                abort();        /* promised: a backup has a version and a list of excludes */
        if (r == -EBADMSG && !why)
                abort();        /* promised: a file that is no backup comes with the reason */
        return 0;
}
