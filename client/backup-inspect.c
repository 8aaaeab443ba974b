/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Inspecting a backup zip: its metadata, plugin list, entries and sizes, and whether a restore would take
 * it — decided by the restore's own checker (common/archive-validate.h). Everything read from the archive
 * is bounded: the number of entries by INSPECT_ENTRIES_MAX, the folders kept by INSPECT_FOLDERS_MAX. */

#include <fcntl.h>

#include "backup-inspect.h"
#include "util.h"

static int add_problem(BackupInspection *b, const char *text) {
        return strv_extend(&b->problems, text);
}

static InspectFolder *find_folder(BackupInspection *b, const char *name, size_t len) {
        for (size_t k = 0; k < b->n_folders; k++)
                if (strlen(b->folders[k].name) == len && strncmp(b->folders[k].name, name, len) == 0)
                        return &b->folders[k];
        return NULL;
}

static void add_to_folder(BackupInspection *b, const char *name, size_t len, uint64_t size, uint64_t csize) {
        InspectFolder *f = find_folder(b, name, len);

        if (!f && b->n_folders >= INSPECT_FOLDERS_MAX - 1) {
                /* Many odd top-level folders: the rest is counted as one, bounding memory. */
                name = "(others)";
                len = strlen(name);
                f = find_folder(b, name, len);
        }
        if (!f) {
                InspectFolder *a = realloc(b->folders, (b->n_folders + 1) * sizeof(InspectFolder));
                char *copy = strndup(name, len);

                if (!a || !copy) {
                        free(copy);
                        if (a)
                                b->folders = a;
                        return;
                }
                b->folders = a;
                f = &b->folders[b->n_folders++];
                *f = (InspectFolder) { .name = copy };
        }
        f->entries++;
        f->size += size;
        f->compressed_size += csize;
}

/* Sizes and folders, for the reader: nothing here decides validity. */
static int describe(zip_t *z, BackupInspection *b) {
        zip_int64_t n = zip_get_num_entries(z, 0);

        if (n < 0)
                return -EIO;
        b->entries = (uint64_t) n;
        if ((uint64_t) n > INSPECT_ENTRIES_MAX)
                return 0;       /* don't walk an archive built to exhaust us: the validator said why */
        for (zip_int64_t k = 0; k < n; k++) {
                const char *rest;
                zip_stat_t st;

                zip_stat_init(&st);
                if (zip_stat_index(z, (zip_uint64_t) k, ZIP_FL_ENC_RAW, &st) < 0 || !(st.valid & ZIP_STAT_NAME))
                        continue;
                if (st.valid & ZIP_STAT_SIZE)
                        b->uncompressed_size += st.size;
                if (st.valid & ZIP_STAT_COMP_SIZE)
                        b->compressed_size += st.comp_size;
                if (streq(st.name, "metadata.json"))
                        b->has_metadata = true;
                else if (streq(st.name, "plugin_list.json"))
                        b->has_plugin_list = true;
                else if (streq(st.name, "basedir/config.yaml"))
                        b->has_config = true;
                else if (streq(st.name, "basedir/users.yaml"))
                        b->has_users = true;
                rest = startswith(st.name, "basedir/");
                if (rest && *rest && !endswith(st.name, "/")) {
                        const char *slash = strchr(rest, '/');
                        add_to_folder(b, rest, slash ? (size_t) (slash - rest) : 0, st.size, st.comp_size);
                }
        }
        return 0;
}

int backup_inspect(int fd, BackupInspection *ret) {
        _cleanup_(archive_summary_done) ArchiveSummary s = {};
        _cleanup_free_ char *error = NULL;
        BackupInspection b = {};
        int r, zerr = 0, dfd;
        zip_t *z;

        /* Valid means what a restore would say of the archive itself (common/archive-validate.h); only
         * what depends on the instance (its OctoPrint version, free space) is left to the restore. */
        r = archive_validate(fd, INSPECT_ENTRIES_MAX, &s, &error);
        if (r == -ENOMEM)
                return r;
        b.excludes = calloc(1, sizeof(char *));
        if (!b.excludes)
                return -ENOMEM;
        if (r < 0) {
                if (add_problem(&b, error ?: strerror(-r)) < 0) {
                        backup_inspection_done(&b);
                        return -ENOMEM;
                }
        } else {
                strv_free(b.excludes);
                b.version = TAKE_PTR(s.version);
                b.excludes = TAKE_PTR(s.excludes);
                b.plugins = TAKE_PTR(s.plugins);
                b.n_plugins = s.n_plugins;
                s.n_plugins = 0;
                b.warnings = TAKE_PTR(s.warnings);
        }

        dfd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dfd < 0) {
                backup_inspection_done(&b);
                return -errno;
        }
        z = zip_fdopen(dfd, ZIP_RDONLY, &zerr);
        if (!z)
                close(dfd);     /* not a zip at all: the validator said so, there is nothing to describe */
        else {
                r = describe(z, &b);
                zip_discard(z);
                if (r < 0) {
                        backup_inspection_done(&b);
                        return r;
                }
        }
        *ret = b;
        return 0;
}

void backup_inspection_done(BackupInspection *b) {
        free(b->version);
        strv_free(b->excludes);
        plugin_info_array_free(b->plugins, b->n_plugins);
        strv_free(b->warnings);
        for (size_t k = 0; k < b->n_folders; k++)
                free(b->folders[k].name);
        free(b->folders);
        strv_free(b->problems);
        *b = (BackupInspection) {};
}
