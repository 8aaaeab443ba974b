/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <json-c/json.h>
#include <sys/stat.h>
#include <zip.h>

#include "backup-folder.h"
#include "names.h"
#include "util.h"

#define METADATA_SIZE_MAX (64U * 1024U)
#define METADATA_EXCLUDES_MAX 64U

int backup_folder_open(const char *path, int *ret_fd) {
        int fd;

        fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return -errno;
        *ret_fd = fd;
        return 0;
}

int backup_open_at(int dir_fd, const char *name, int *ret_fd) {
        struct stat st;
        int fd;

        if (!backup_name_is_valid(name))
                return -EINVAL;
        fd = openat(dir_fd, name, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
                close(fd);
                return -EBADF;
        }
        *ret_fd = fd;
        return 0;
}

void backup_info_done(BackupInfo *b) {
        free(b->version);
        strv_free(b->excludes);
        *b = (BackupInfo) {};
}

static int parse_metadata(const char *text, BackupInfo *b, char **ret_error) {
        json_object *o, *v;
        int r = -EBADMSG;

        o = json_tokener_parse(text);
        if (!o || !json_object_is_type(o, json_type_object)) {
                *ret_error = strdup("metadata.json is not a JSON object: not an OctoPrint backup");
                goto finish;
        }
        if (!json_object_object_get_ex(o, "version", &v) || !json_object_is_type(v, json_type_string)) {
                *ret_error = strdup("metadata.json has no version: not an OctoPrint backup");
                goto finish;
        }
        b->version = strdup(json_object_get_string(v));
        b->excludes = calloc(1, sizeof(char *));
        if (!b->version || !b->excludes) {
                r = -ENOMEM;
                goto finish;
        }
        if (json_object_object_get_ex(o, "excludes", &v) && json_object_is_type(v, json_type_array)) {
                size_t n = json_object_array_length(v);
                for (size_t k = 0; k < n && k < METADATA_EXCLUDES_MAX; k++) {
                        json_object *e = json_object_array_get_idx(v, k);
                        if (json_object_is_type(e, json_type_string) &&
                            strv_extend(&b->excludes, json_object_get_string(e)) < 0) {
                                r = -ENOMEM;
                                goto finish;
                        }
                }
        }
        r = 0;
finish:
        json_object_put(o);
        return r;
}

int backup_info_read(int fd, BackupInfo *ret, char **ret_error) {
        _cleanup_(backup_info_done) BackupInfo b = {};
        _cleanup_free_ char *text = NULL;
        zip_t *z;
        int zerr = 0;
        zip_stat_t st;
        zip_file_t *f;
        zip_int64_t n, k;
        int dup_fd, r;

        *ret_error = NULL;
        dup_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        if (dup_fd < 0)
                return -errno;
        (void) lseek(dup_fd, 0, SEEK_SET);
        z = zip_fdopen(dup_fd, ZIP_RDONLY, &zerr);
        if (!z) {
                zip_error_t ze;

                close(dup_fd);
                zip_error_init_with_code(&ze, zerr);
                r = asprintf(ret_error, "not a zip file (%s)", zip_error_strerror(&ze));
                zip_error_fini(&ze);
                return r < 0 ? -ENOMEM : -EBADMSG;
        }

        r = -EBADMSG;
        if (zip_stat(z, "metadata.json", 0, &st) < 0 || !(st.valid & ZIP_STAT_SIZE)) {
                *ret_error = strdup("the zip has no metadata.json: not an OctoPrint backup");
                goto finish;
        }
        if (st.size > METADATA_SIZE_MAX) {
                *ret_error = strdup("metadata.json is implausibly large: not an OctoPrint backup");
                goto finish;
        }
        text = calloc(1, st.size + 1);
        f = zip_fopen(z, "metadata.json", 0);
        if (!text || !f || zip_fread(f, text, st.size) != (zip_int64_t) st.size) {
                if (f)
                        zip_fclose(f);
                *ret_error = strdup("metadata.json cannot be read (damaged zip?)");
                goto finish;
        }
        zip_fclose(f);
        r = parse_metadata(text, &b, ret_error);
        if (r < 0)
                goto finish;

        n = zip_get_num_entries(z, 0);
        for (k = 0; k < n; k++)
                if (zip_stat_index(z, k, 0, &st) == 0 && (st.valid & ZIP_STAT_SIZE))
                        b.uncompressed += st.size;
        *ret = b;
        b = (BackupInfo) {};
        r = 0;
finish:
        zip_discard(z);
        return r;
}

bool backup_is_temp_name(const char *name) {
        _cleanup_free_ char *base = NULL;
        const char *zip;

        if (name[0] != '.')
                return false;
        zip = strstr(name, ".zip");
        if (!zip)
                return false;
        base = strndup(name + 1, zip + 4 - (name + 1));
        if (!base || !backup_name_is_valid(base))
                return false;
        /* ".<name>" itself, or libzip's temp file ".<name>.XXXXXX" */
        return zip[4] == 0 || zip[4] == '.';
}
