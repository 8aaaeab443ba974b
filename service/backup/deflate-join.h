/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Joining independently compressed pieces of one file into one deflate stream (RFC 1951), as a zip entry
 * needs it.
 *
 * libdeflate compresses a whole buffer into a complete stream whose last block is marked final (BFINAL).
 * A large file is compressed in chunks, in parallel; for the chunks to follow each other in one stream,
 * every chunk but the last must end without a final block and on a byte boundary. libdeflate does not
 * say where its final block starts, so deflate_join_prepare() finds it by walking the blocks (decoding
 * the Huffman codes without producing output), clears its BFINAL bit, and appends an empty stored block
 * (00 00 ff ff): exactly what zlib's Z_SYNC_FLUSH emits, which every inflater accepts. */

/* Room deflate_join_prepare() may append after the stream. */
#define DEFLATE_JOIN_SLACK 5U

/* buf holds a complete raw deflate stream of len bytes (libdeflate_deflate_compress() output) with room
 * for DEFLATE_JOIN_SLACK more bytes. Rewrites it in place to continue into whatever follows. Returns the
 * new length, or -EBADMSG if the data is not one well-formed deflate stream filling exactly len bytes. */
int64_t deflate_join_prepare(uint8_t *buf, size_t len);
