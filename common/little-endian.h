/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Reading the little-endian integers of zip headers and of the service's own cache files, from bytes
 * at any alignment. */

#include <stdint.h>

static inline uint16_t le16(const uint8_t *p) {
        return (uint16_t) (p[0] | p[1] << 8);
}

static inline uint32_t le32(const uint8_t *p) {
        return (uint32_t) le16(p) | (uint32_t) le16(p + 2) << 16;
}

static inline uint64_t le64(const uint8_t *p) {
        return (uint64_t) le32(p) | (uint64_t) le32(p + 4) << 32;
}
