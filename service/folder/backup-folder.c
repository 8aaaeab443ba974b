/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <sys/stat.h>
#include <zip.h>

#include "folder/backup-folder.h"
#include "names.h"
#include "util.h"


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

        return backup_open_at_stat(dir_fd, name, ret_fd, &st);
}

int backup_open_at_stat(int dir_fd, const char *name, int *ret_fd, struct stat *ret_st) {
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
        *ret_st = st;
        return 0;
}

/* libzip reads the archive through this source rather than zip_fdopen(): stdio on a dup()ed fd costs a
 * dozen syscalls per archive (dup, fcntl, fstat twice, lseek after lseek), which is most of the time of a
 * ListBackups that reads a thousand small backups. Here a read is one pread() or none: the last block read
 * is kept, and a small backup is read whole. libzip parses the same bytes either way and the source
 * answers as libzip's file sources do (an empty file is no zip), so what is accepted does not change. */
#define ZIP_READER_BLOCK (64U * 1024U)

typedef struct ZipReader {
        int fd;
        uint64_t size;
        uint64_t offset;
        uint8_t *block;                 /* ZIP_READER_BLOCK bytes; holds [block_offset, +block_len) */
        uint64_t block_offset;
        size_t block_len;
        zip_error_t error;
} ZipReader;

static uint64_t min_u64(uint64_t a, uint64_t b) {
        return a < b ? a : b;
}

/* All of [offset, offset + size): a file shorter than fstat() said changed under us. */
static int pread_exact(int fd, void *buf, size_t size, uint64_t offset) {
        ssize_t n = pread_full(fd, buf, size, offset);

        if (n < 0)
                return (int) n;
        return (size_t) n == size ? 0 : -EIO;
}

static zip_int64_t zip_reader_read(ZipReader *z, void *data, zip_uint64_t len) {
        int r;

        if (z->offset >= z->size)
                return 0;
        len = min_u64(len, z->size - z->offset);
        if (z->offset < z->block_offset || z->offset + len > z->block_offset + z->block_len) {
                if (len >= ZIP_READER_BLOCK) {
                        r = pread_exact(z->fd, data, len, z->offset);
                        if (r < 0)
                                goto fail;
                        z->offset += len;
                        return len;
                }
                /* A file that fits is read whole; else the block starts where the read does. */
                z->block_offset = z->size <= ZIP_READER_BLOCK ? 0 : z->offset;
                z->block_len = min_u64(ZIP_READER_BLOCK, z->size - z->block_offset);
                r = pread_exact(z->fd, z->block, z->block_len, z->block_offset);
                if (r < 0) {
                        z->block_len = 0;
                        goto fail;
                }
        }
        memcpy(data, z->block + (z->offset - z->block_offset), len);
        z->offset += len;
        return len;
fail:
        zip_error_set(&z->error, ZIP_ER_READ, -r);
        return -1;
}

static zip_int64_t zip_reader_seek(ZipReader *z, void *data, zip_uint64_t len) {
        const zip_source_args_seek_t *a = data;
        int64_t base;

        if (len < sizeof(*a) || (a->whence != SEEK_SET && a->whence != SEEK_CUR && a->whence != SEEK_END)) {
                zip_error_set(&z->error, ZIP_ER_INVAL, 0);
                return -1;
        }
        base = a->whence == SEEK_SET ? 0 : a->whence == SEEK_CUR ? (int64_t) z->offset : (int64_t) z->size;
        if (a->offset < -base || a->offset > (int64_t) z->size - base) {
                zip_error_set(&z->error, ZIP_ER_INVAL, 0);
                return -1;
        }
        z->offset = base + a->offset;
        return 0;
}

static zip_int64_t zip_reader_callback(void *userdata, void *data, zip_uint64_t len, zip_source_cmd_t cmd) {
        ZipReader *z = userdata;

        switch (cmd) {
        case ZIP_SOURCE_OPEN:
                z->offset = 0;
                return 0;
        case ZIP_SOURCE_READ:
                return zip_reader_read(z, data, len);
        case ZIP_SOURCE_CLOSE:
        case ZIP_SOURCE_FREE:
                return 0;
        case ZIP_SOURCE_STAT: {
                zip_stat_t *st = data;

                if (len < sizeof(*st)) {
                        zip_error_set(&z->error, ZIP_ER_INVAL, 0);
                        return -1;
                }
                zip_stat_init(st);
                st->size = z->size;
                st->valid |= ZIP_STAT_SIZE;
                return sizeof(*st);
        }
        case ZIP_SOURCE_ACCEPT_EMPTY:
                return 0;       /* an empty file is no zip, as with libzip's own file sources */
        case ZIP_SOURCE_ERROR:
                return zip_error_to_data(&z->error, data, len);
        case ZIP_SOURCE_SEEK:
                return zip_reader_seek(z, data, len);
        case ZIP_SOURCE_TELL:
                return (zip_int64_t) z->offset;
        case ZIP_SOURCE_SUPPORTS:
                return zip_source_make_command_bitmap(ZIP_SOURCE_OPEN, ZIP_SOURCE_READ, ZIP_SOURCE_CLOSE,
                                                      ZIP_SOURCE_STAT, ZIP_SOURCE_ERROR, ZIP_SOURCE_FREE,
                                                      ZIP_SOURCE_SEEK, ZIP_SOURCE_TELL, ZIP_SOURCE_SUPPORTS,
                                                      ZIP_SOURCE_ACCEPT_EMPTY, -1);
        default:
                zip_error_set(&z->error, ZIP_ER_OPNOTSUPP, 0);
                return -1;
        }
}

static int open_zip(ZipReader *reader, zip_t **ret, char **ret_error) {
        _cleanup_(zip_error_fini) zip_error_t ze = {};
        zip_source_t *src;
        int r;

        zip_error_init(&ze);
        src = zip_source_function_create(zip_reader_callback, reader, &ze);
        if (src) {
                *ret = zip_open_from_source(src, ZIP_RDONLY, &ze);
                if (*ret)
                        return 0;
                zip_source_free(src);
        }
        r = asprintf(ret_error, "not a zip file (%s)", zip_error_strerror(&ze));
        return r < 0 ? -ENOMEM : -EBADMSG;
}

int backup_info_read(int fd, BackupInfo *ret, char **ret_error) {
        struct stat st;

        *ret_error = NULL;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADF;
        return backup_info_read_sized(fd, st.st_size, ret, ret_error);
}

int backup_info_read_sized(int fd, uint64_t size, BackupInfo *ret, char **ret_error) {
        _cleanup_(backup_info_done) BackupInfo b = {};
        _cleanup_free_ uint8_t *block = NULL;
        _cleanup_free_ char *text = NULL;
        ZipReader reader = { .fd = fd, .size = size };
        zip_t *z = NULL;
        zip_stat_t st;
        zip_file_t *f;
        zip_int64_t n, k;
        int r;

        *ret_error = NULL;
        block = malloc(ZIP_READER_BLOCK);
        if (!block)
                return -ENOMEM;
        reader.block = block;
        zip_error_init(&reader.error);
        r = open_zip(&reader, &z, ret_error);
        if (r < 0)
                goto finish;

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
        r = backup_metadata_parse(text, &b, ret_error);
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
        if (z)
                zip_discard(z);         /* frees the source, which uses reader */
        zip_error_fini(&reader.error);
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

bool import_is_temp_name(const char *name) {
        const char *hex = startswith(name, IMPORT_TEMP_PREFIX);

        if (!hex || strspn(hex, "0123456789abcdef") != 16)
                return false;
        return streq(hex + 16, IMPORT_TEMP_SUFFIX);
}
