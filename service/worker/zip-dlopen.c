/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <dlfcn.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zip.h>

#include "build-config.h"
#include "worker/zip-dlopen.h"

/* Every libzip function the project calls, but zip_source_make_command_bitmap() (below). */
#define LIBZIP_FUNCTIONS(X)                                                                             \
        X(zip_close) X(zip_discard) X(zip_fdopen) X(zip_open_from_source) X(zip_get_error)               \
        X(zip_strerror) X(zip_get_num_entries) X(zip_name_locate) X(zip_stat) X(zip_stat_index)          \
        X(zip_stat_init) X(zip_fopen) X(zip_fopen_index) X(zip_fread) X(zip_fclose) X(zip_file_get_error) \
        X(zip_file_get_external_attributes) X(zip_file_add) X(zip_file_set_external_attributes)         \
        X(zip_file_set_mtime) X(zip_set_file_compression) X(zip_source_buffer) X(zip_source_function)   \
        X(zip_source_function_create) X(zip_source_free) X(zip_error_init) X(zip_error_init_with_code)   \
        X(zip_error_fini) X(zip_error_set) X(zip_error_code_zip) X(zip_error_code_system)                \
        X(zip_error_system_type) X(zip_error_strerror) X(zip_error_to_data)

#define POINTER(name) typeof(name) *name;
static struct {
        LIBZIP_FUNCTIONS(POINTER)
} sym;
#undef POINTER

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static bool loaded;
static char load_error[512];

/* The name of the first function the library lacks, or NULL. */
static const char *resolve(void *dl) {
#define RESOLVE(name)                           \
        sym.name = dlsym(dl, #name);            \
        if (!sym.name)                          \
                return #name;
        LIBZIP_FUNCTIONS(RESOLVE)
#undef RESOLVE
        return NULL;
}

static void load(void) {
        const char *missing;
        void *dl;

        /* RTLD_LOCAL: libzip's and libcrypto's symbols stay out of the global namespace. */
        dl = dlopen(LIBZIP_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (!dl) {
                (void) snprintf(load_error, sizeof(load_error), "Cannot load libzip: %s. Install the package %s.",
                                dlerror(), LIBZIP_PACKAGE);
                return;
        }
        missing = resolve(dl);
        if (missing) {
                (void) snprintf(load_error, sizeof(load_error),
                                "Cannot load libzip: %s has no %s(). Install libzip 1.7 or newer (the package %s).",
                                LIBZIP_SONAME, missing, LIBZIP_PACKAGE);
                (void) dlclose(dl);
                return;
        }
        loaded = true;
}

int zip_dlopen(char **ret_error) {
        (void) pthread_once(&load_once, load);
        if (loaded)
                return 0;
        if (ret_error) {
                *ret_error = strdup(load_error);
                if (!*ret_error)
                        return -ENOMEM;
        }
        return -ELIBACC;
}

/* Whether libzip is loaded; if not, *error (if given) says ZIP_ER_INTERNAL, as libzip says for failures
 * that have no code of their own. */
static bool have_libzip(zip_error_t *error) {
        if (zip_dlopen(NULL) >= 0)
                return true;
        if (error)
                *error = (zip_error_t) { .zip_err = ZIP_ER_INTERNAL };
        return false;
}

/* ---- Archives, entries and sources: without the library, the calls that make them fail ---- */

zip_t *zip_fdopen(int fd, int flags, int *errorp) {
        if (!have_libzip(NULL)) {
                if (errorp)
                        *errorp = ZIP_ER_INTERNAL;
                return NULL;
        }
        return sym.zip_fdopen(fd, flags, errorp);
}

zip_t *zip_open_from_source(zip_source_t *src, int flags, zip_error_t *error) {
        return have_libzip(error) ? sym.zip_open_from_source(src, flags, error) : NULL;
}

zip_source_t *zip_source_function_create(zip_source_callback fn, void *userdata, zip_error_t *error) {
        return have_libzip(error) ? sym.zip_source_function_create(fn, userdata, error) : NULL;
}

/* Only libzip makes a zip_t, zip_file_t or zip_source_t, so these are called with the library loaded; the
 * checks keep a NULL from the caller as harmless as libzip makes it. */

int zip_close(zip_t *za) {
        return have_libzip(NULL) ? sym.zip_close(za) : -1;
}

void zip_discard(zip_t *za) {
        if (have_libzip(NULL))
                sym.zip_discard(za);
}

zip_error_t *zip_get_error(zip_t *za) {
        return have_libzip(NULL) ? sym.zip_get_error(za) : NULL;
}

const char *zip_strerror(zip_t *za) {
        return have_libzip(NULL) ? sym.zip_strerror(za) : load_error;
}

zip_int64_t zip_get_num_entries(zip_t *za, zip_flags_t flags) {
        return have_libzip(NULL) ? sym.zip_get_num_entries(za, flags) : -1;
}

zip_int64_t zip_name_locate(zip_t *za, const char *name, zip_flags_t flags) {
        return have_libzip(NULL) ? sym.zip_name_locate(za, name, flags) : -1;
}

int zip_stat(zip_t *za, const char *name, zip_flags_t flags, zip_stat_t *st) {
        return have_libzip(NULL) ? sym.zip_stat(za, name, flags, st) : -1;
}

int zip_stat_index(zip_t *za, zip_uint64_t index, zip_flags_t flags, zip_stat_t *st) {
        return have_libzip(NULL) ? sym.zip_stat_index(za, index, flags, st) : -1;
}

zip_file_t *zip_fopen(zip_t *za, const char *name, zip_flags_t flags) {
        return have_libzip(NULL) ? sym.zip_fopen(za, name, flags) : NULL;
}

zip_file_t *zip_fopen_index(zip_t *za, zip_uint64_t index, zip_flags_t flags) {
        return have_libzip(NULL) ? sym.zip_fopen_index(za, index, flags) : NULL;
}

zip_int64_t zip_fread(zip_file_t *zf, void *buf, zip_uint64_t n) {
        return have_libzip(NULL) ? sym.zip_fread(zf, buf, n) : -1;
}

int zip_fclose(zip_file_t *zf) {
        return have_libzip(NULL) ? sym.zip_fclose(zf) : ZIP_ER_INTERNAL;
}

zip_error_t *zip_file_get_error(zip_file_t *zf) {
        return have_libzip(NULL) ? sym.zip_file_get_error(zf) : NULL;
}

int zip_file_get_external_attributes(zip_t *za, zip_uint64_t index, zip_flags_t flags, zip_uint8_t *opsys,
                                     zip_uint32_t *attributes) {
        return have_libzip(NULL) ? sym.zip_file_get_external_attributes(za, index, flags, opsys, attributes) : -1;
}

zip_int64_t zip_file_add(zip_t *za, const char *name, zip_source_t *src, zip_flags_t flags) {
        return have_libzip(NULL) ? sym.zip_file_add(za, name, src, flags) : -1;
}

int zip_file_set_external_attributes(zip_t *za, zip_uint64_t index, zip_flags_t flags, zip_uint8_t opsys,
                                     zip_uint32_t attributes) {
        return have_libzip(NULL) ? sym.zip_file_set_external_attributes(za, index, flags, opsys, attributes) : -1;
}

int zip_file_set_mtime(zip_t *za, zip_uint64_t index, time_t mtime, zip_flags_t flags) {
        return have_libzip(NULL) ? sym.zip_file_set_mtime(za, index, mtime, flags) : -1;
}

int zip_set_file_compression(zip_t *za, zip_uint64_t index, zip_int32_t method, zip_uint32_t level) {
        return have_libzip(NULL) ? sym.zip_set_file_compression(za, index, method, level) : -1;
}

zip_source_t *zip_source_buffer(zip_t *za, const void *data, zip_uint64_t len, int freep) {
        return have_libzip(NULL) ? sym.zip_source_buffer(za, data, len, freep) : NULL;
}

zip_source_t *zip_source_function(zip_t *za, zip_source_callback fn, void *userdata) {
        return have_libzip(NULL) ? sym.zip_source_function(za, fn, userdata) : NULL;
}

void zip_source_free(zip_source_t *src) {
        if (have_libzip(NULL))
                sym.zip_source_free(src);
}

/* Variadic, so it cannot be forwarded; it is simple enough to be libzip's own here: the commands up to a
 * negative one, as bits. */
zip_int64_t zip_source_make_command_bitmap(zip_source_cmd_t cmd0, ...) {
        zip_int64_t bitmap = ZIP_SOURCE_MAKE_COMMAND_BITMASK(cmd0);
        va_list ap;

        va_start(ap, cmd0);
        for (int cmd = va_arg(ap, int); cmd >= 0; cmd = va_arg(ap, int))
                bitmap |= ZIP_SOURCE_MAKE_COMMAND_BITMASK(cmd);
        va_end(ap);
        return bitmap;
}

/* ---- Plain structures: they keep working without the library, to carry its absence to the message ---- */

void zip_stat_init(zip_stat_t *st) {
        if (have_libzip(NULL))
                sym.zip_stat_init(st);
        else
                *st = (zip_stat_t) { .index = ZIP_UINT64_MAX, .mtime = (time_t) -1 };
}

void zip_error_init(zip_error_t *error) {
        if (have_libzip(NULL))
                sym.zip_error_init(error);
        else
                *error = (zip_error_t) { .zip_err = ZIP_ER_OK };
}

void zip_error_init_with_code(zip_error_t *error, int ze) {
        if (have_libzip(NULL))
                sym.zip_error_init_with_code(error, ze);
        else
                *error = (zip_error_t) { .zip_err = ze };
}

void zip_error_fini(zip_error_t *error) {
        if (have_libzip(NULL))
                sym.zip_error_fini(error);
}

void zip_error_set(zip_error_t *error, int ze, int se) {
        if (have_libzip(NULL))
                sym.zip_error_set(error, ze, se);
        else if (error)
                *error = (zip_error_t) { .zip_err = ze, .sys_err = se };
}

int zip_error_code_zip(const zip_error_t *error) {
        return have_libzip(NULL) ? sym.zip_error_code_zip(error) : error->zip_err;
}

int zip_error_code_system(const zip_error_t *error) {
        return have_libzip(NULL) ? sym.zip_error_code_system(error) : error->sys_err;
}

int zip_error_system_type(const zip_error_t *error) {
        return have_libzip(NULL) ? sym.zip_error_system_type(error) : ZIP_ET_NONE;
}

/* Without the library, every error is its absence. */
const char *zip_error_strerror(zip_error_t *error) {
        if (have_libzip(NULL))
                return sym.zip_error_strerror(error);
        return error->zip_err == ZIP_ER_OK ? "No error" : load_error;
}

zip_int64_t zip_error_to_data(const zip_error_t *error, void *data, zip_uint64_t length) {
        return have_libzip(NULL) ? sym.zip_error_to_data(error, data, length) : -1;
}
