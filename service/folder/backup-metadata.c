/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <json-c/json.h>
#include <libdeflate.h>

#include "folder/backup-metadata.h"
#include "little-endian.h"
#include "util.h"
#include "zip-directory.h"

#define LOCAL_HEADER_SIZE 30U
#define SIG_LOCAL 0x04034b50U
#define METHOD_STORED 0U
#define METHOD_DEFLATED 8U
#define FLAG_ENCRYPTED 0x0001U
#define METADATA_NAME "metadata.json"
#define METADATA_EXCLUDES_MAX 64U

void backup_info_done(BackupInfo *b) {
        free(b->version);
        strv_free(b->excludes);
        *b = (BackupInfo) {};
}

int backup_metadata_parse(const char *text, BackupInfo *b, char **ret_error) {
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

typedef struct Scan {
        uint64_t uncompressed;
        bool found;
        ZipDirectoryEntry metadata;     /* its name pointer is not kept */
} Scan;

static int scan_entry(const ZipDirectoryEntry *e, void *userdata) {
        Scan *s = userdata;

        s->uncompressed += e->size;
        if (!s->found && e->name_len == strlen(METADATA_NAME) && memcmp(e->name, METADATA_NAME, e->name_len) == 0) {
                s->metadata = *e;
                s->metadata.name = NULL;
                s->found = true;
        }
        return 0;
}

static int no_backup(char **ret_error, const char *why) {
        *ret_error = strdup(why);
        return *ret_error ? -EBADMSG : -ENOMEM;
}

/* metadata.json's bytes, inflated and checked, NUL-terminated, into *ret_text. */
static int read_metadata(int fd, uint64_t size, const ZipDirectoryEntry *e, char **ret_text, char **ret_error) {
        _cleanup_free_ uint8_t *data = NULL;
        _cleanup_free_ char *text = NULL;
        uint8_t h[LOCAL_HEADER_SIZE];
        uint64_t start;
        ssize_t k;

        if (e->flags & FLAG_ENCRYPTED)
                return no_backup(ret_error, "metadata.json is encrypted: not an OctoPrint backup");
        if (e->method != METHOD_STORED && e->method != METHOD_DEFLATED)
                return no_backup(ret_error, "metadata.json is compressed with a method other than deflate");
        if (e->size > METADATA_SIZE_MAX || e->compressed_size > METADATA_SIZE_MAX + 1024)
                return no_backup(ret_error, "metadata.json is implausibly large: not an OctoPrint backup");
        if (e->local_offset > size || size - e->local_offset < LOCAL_HEADER_SIZE)
                return no_backup(ret_error, "metadata.json cannot be read (damaged zip?)");
        k = pread_full(fd, h, sizeof(h), e->local_offset);
        if (k < 0)
                return (int) k;
        if ((size_t) k != sizeof(h) || (h[0] | h[1] << 8 | h[2] << 16 | (uint32_t) h[3] << 24) != SIG_LOCAL)
                return no_backup(ret_error, "metadata.json cannot be read (damaged zip?)");
        start = e->local_offset + LOCAL_HEADER_SIZE + le16(h + 26) + le16(h + 28);
        if (start > size || size - start < e->compressed_size)
                return no_backup(ret_error, "metadata.json cannot be read (damaged zip?)");

        data = malloc(e->compressed_size ?: 1);
        text = malloc(e->size + 1);
        if (!data || !text)
                return -ENOMEM;
        k = pread_full(fd, data, e->compressed_size, start);
        if (k < 0)
                return (int) k;
        if ((uint64_t) k != e->compressed_size)
                return no_backup(ret_error, "metadata.json cannot be read (damaged zip?)");
        if (e->method == METHOD_STORED) {
                if (e->compressed_size != e->size)
                        return no_backup(ret_error, "metadata.json cannot be read (damaged zip?)");
                memcpy(text, data, e->size);
        } else {
                struct libdeflate_decompressor *d = libdeflate_alloc_decompressor();
                enum libdeflate_result res;

                if (!d)
                        return -ENOMEM;
                res = libdeflate_deflate_decompress(d, data, e->compressed_size, text, e->size, NULL);
                libdeflate_free_decompressor(d);
                if (res != LIBDEFLATE_SUCCESS)
                        return no_backup(ret_error, "metadata.json cannot be read (damaged zip?)");
        }
        if (libdeflate_crc32(0, text, e->size) != e->crc32)
                return no_backup(ret_error, "metadata.json cannot be read (damaged zip?)");
        text[e->size] = 0;
        *ret_text = TAKE_PTR(text);
        return 0;
}

int backup_metadata_read(int fd, uint64_t size, BackupInfo *ret, char **ret_error) {
        _cleanup_(backup_info_done) BackupInfo b = {};
        _cleanup_free_ char *text = NULL, *why = NULL;
        ZipDirectory d;
        Scan s = {};
        int r;

        *ret_error = NULL;
        r = zip_directory_find(fd, &d, &why);
        if (r < 0) {
                if (r == -EBADMSG)
                        *ret_error = TAKE_PTR(why);
                return r;
        }
        r = zip_directory_foreach(fd, &d, scan_entry, &s);
        if (r == -EBADMSG)
                return no_backup(ret_error, "not a zip file: its central directory is damaged");
        if (r < 0)
                return r;
        if (!s.found)
                return no_backup(ret_error, "the zip has no metadata.json: not an OctoPrint backup");
        r = read_metadata(fd, size, &s.metadata, &text, ret_error);
        if (r < 0)
                return r;
        r = backup_metadata_parse(text, &b, ret_error);
        if (r < 0)
                return r;
        b.uncompressed = s.uncompressed;
        *ret = b;
        b = (BackupInfo) {};
        return 0;
}
