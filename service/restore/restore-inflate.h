/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* The data of the files a restore extracts, read from the archive, inflated and checked by threads of
 * their own ahead of the writer, so that inflating (user time) and creating and writing files (the
 * kernel's time) overlap, on all cores.
 *
 * Each reader thread (a "lane", one a CPU, at most ENTRY_READER_LANES_MAX) takes the next entry not yet
 * taken and hands out its data in pieces, in order; the writer takes pieces from whichever lane has one,
 * so that the small files behind a large one are written while the large one is being inflated. A
 * large file (ENTRY_READER_DIRECT_MIN bytes or more) the writer only creates (every path is walked and
 * every file created by the writer, with O_NOFOLLOW and O_EXCL) and finishes: the lane writes its data
 * itself, with O_DIRECT, so that the writer does not wait for the disk. Lanes beyond the first read
 * through a zip_t of their own, on a file description of their own (libzip reads with seek + read);
 * where the archive cannot be opened again there is one lane.
 *
 * Each entry's data is read raw from libzip (ZIP_FL_COMPRESSED) and checked here as libzip would: it may
 * not inflate beyond its declared size (checked while inflating, so a bomb is stopped at once), must
 * reach it, and must match its CRC-32. Entries of at most ENTRY_READER_CHUNK bytes are inflated in one
 * call to libdeflate (faster than zlib), and so are the pieces of larger ones written by opbackup, which
 * deflates every ENTRY_READER_CHUNK bytes on their own; other large entries stream through zlib. Memory
 * stays bounded whatever the sizes: per lane, ENTRY_READER_SLOTS pieces of ENTRY_READER_CHUNK bytes and
 * one input buffer. */

#include "archive-validate.h"

#define ENTRY_READER_CHUNK (1024U * 1024U)
#define ENTRY_READER_SLOTS 4U
#define ENTRY_READER_LANES_MAX 4U
#define ENTRY_READER_ALIGN 4096U        /* of every piece's data: O_DIRECT's */
#define ENTRY_READER_DIRECT_MIN (1024U * 1024U)
#define ENTRY_READER_TICK_USEC 100000L  /* entry_reader_next() waits no longer */

typedef struct EntryReader EntryReader;

typedef struct EntryPiece {
        unsigned lane;          /* < ENTRY_READER_LANES_MAX: an entry's pieces all come from one lane, and
                                 * a lane gives out one entry's pieces before the next entry's */
        const ArchiveItem *item;
        const uint8_t *data;    /* aligned to ENTRY_READER_ALIGN */
        size_t size;            /* ENTRY_READER_CHUNK but in an entry's last piece */
        bool first;             /* the entry's first piece */
        bool last;              /* its last: the entry's size and CRC are checked */
        bool open;              /* (first, no data) the writer is to create the file and entry_reader_attach()
                                 * it: the lane writes it itself (entries of ENTRY_READER_DIRECT_MIN bytes
                                 * or more) */
        int fd;                 /* (last, no data) that file, written, the writer's again; else -1 */
} EntryPiece;

/* Starts reading the data of items[0..n) (files; pointers into a plan that outlives the reader). zip is
 * the plan's, opened on zip_fd; it is used only by the reader's threads until entry_reader_free(). */
int entry_reader_start(zip_t *zip, int zip_fd, const ArchiveItem *const *items, size_t n, EntryReader **ret);

/* Waits for the next piece of any entry; the previous one is given back. Returns 1 with *ret filled
 * (valid until the next call), 0 once every entry's last piece was given out, 2 if none came within
 * ENTRY_READER_TICK_USEC (a lane may be writing a large file: time to report progress), or a negative errno with
 * *ret_error saying which entry is damaged and how (-EBADMSG; -EIO if the archive cannot be read), or
 * with *ret_error NULL if writing ret->item failed. */
int entry_reader_next(EntryReader *r, EntryPiece *ret, char **ret_error);

/* Gives the lane that asked (piece->open) the file it is to write: fd, opened for writing (O_DIRECT if
 * direct), is the lane's until the entry's last piece hands it back. */
void entry_reader_attach(EntryReader *r, const EntryPiece *piece, int fd, bool direct);

/* The bytes the lanes have written to their files so far (the writer counts the others). */
uint64_t entry_reader_written(EntryReader *r);

/* Stops the threads (wherever they are) and frees everything. Accepts NULL. */
void entry_reader_free(EntryReader *r);
