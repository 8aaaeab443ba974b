/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* A zip's central directory read straight from the file, with pread() and bounded memory, without libzip.
 *
 * Why not libzip alone: libzip hands out entry names as C strings and turns a NUL byte inside a stored
 * name into a space, so "basedir/a\0b" looks like "basedir/a b" — while CPython's zipfile (what OctoPrint
 * restores with) cuts the name at the NUL. A checker must see the bytes as stored. And finding the
 * end-of-central-directory record costs a few reads, so a file that is not a zip at all can be refused
 * before anything else is done with it (an import copies nothing then). */

typedef struct ZipDirectory {
        uint64_t n_entries;             /* as the end record says (ZIP64 when present) */
        uint64_t offset, size;          /* of the central directory in the file */
        uint64_t end_offset;            /* where the end-of-central-directory record starts */
        bool zip64;
} ZipDirectory;

/* Finds and checks the end-of-central-directory record (and the ZIP64 one it points to), reading only the
 * file's end, whatever its size: the record must be in the last 64 KiB + 22 bytes (the last one that fits
 * wins: a comment may hold the signature too), on one disk, and describe a non-empty central directory
 * that lies inside the file, large enough for the entries it claims, and starting with a central
 * directory header. What passes may still be no backup; what fails is no zip libzip or CPython's zipfile
 * would open. 0 on success; -EBADMSG when fd holds no zip, with *ret_error (may be NULL) saying why ("not
 * a zip file: its central directory would lie outside the file"); another negative errno when it cannot
 * be read ("cannot read it: ..."). */
int zip_directory_find(int fd, ZipDirectory *ret, char **ret_error);

typedef struct ZipDirectoryEntry {
        uint64_t index;
        const char *name;               /* the bytes as stored, NOT NUL-terminated (may contain NULs) */
        size_t name_len;
        uint16_t flags, method;
        uint64_t compressed_size, size; /* from the ZIP64 extra field where the header says 0xffffffff */
        uint32_t crc;
        uint64_t local_offset;          /* of the entry's local header (ZIP64 extra field likewise) */
} ZipDirectoryEntry;

/* Calls fn for every entry of the central directory, in order; fn's negative return stops the walk and
 * is returned. -EBADMSG when the directory is damaged (a header without its signature, a record that
 * runs past the directory, fewer or more entries than the end record says). Memory: one 256 KiB buffer,
 * whatever the number of entries. */
typedef int (*zip_directory_entry_fn)(const ZipDirectoryEntry *e, void *userdata);
int zip_directory_foreach(int fd, const ZipDirectory *d, zip_directory_entry_fn fn, void *userdata);
