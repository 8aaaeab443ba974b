/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The restore's judge of an archive on raw zip bytes: archive_validate() through restore_archive_validate_full()
 * (the central directory, entry names, metadata.json, plugin_list.json, the version checks), then every
 * accepted entry streamed the way a restore extracts it (libzip's inflate and CRC check). */

#include "archive-validate.h"
#include "fuzz-util.h"

/* Entries larger than this are not streamed: a deflate bomb would only make the target slow. */
#define STREAM_ENTRY_MAX (1024U * 1024U)

static int discard(const void *data, size_t n, void *userdata) {
        *(uint64_t *) userdata += n;
        return 0;
}

static void stream_all(int fd) {
        _cleanup_(archive_plan_done) ArchivePlan p = {};
        _cleanup_free_ char *error = NULL;
        char buf[16384];

        if (archive_plan_open(fd, RESTORE_ENTRIES_MAX, &p, &error) < 0)
                return;
        for (size_t i = 0; i < p.n_items; i++) {
                _cleanup_free_ char *e = NULL;
                uint64_t total = 0;

                if (p.items[i].kind == ITEM_DIR || p.items[i].kind == ITEM_ROOT || p.items[i].size > STREAM_ENTRY_MAX)
                        continue;
                if (archive_item_stream(p.zip, &p.items[i], buf, sizeof(buf), discard, &total, &e) >= 0 &&
                    total != p.items[i].size)
                        abort();        /* the stream must refuse anything but the declared size */
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        _cleanup_free_ char *error = NULL;
        _cleanup_close_ int fd = fuzz_memfd(data, size);
        int r;

        if (fd < 0)
                abort();
        r = restore_archive_validate_full(fd, "1.11.8", UINT64_C(1) << 40, RESTORE_ENTRIES_MAX, &s, &error);
        if (r < 0 && !error && r != -ENOMEM)
                abort();        /* every refusal says why */
        stream_all(fd);
        return 0;
}
