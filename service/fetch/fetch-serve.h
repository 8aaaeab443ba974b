/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "fetch/fetch-client.h"

/* Does the request in this process, with libcurl (linked into opbackup-fetch and the tests
 * only, not into opbackupd). The body goes to out_fd (>= 0) or into ret->body.
 * Returns 0 when there is an answer (any status) and fills *ret; on failure a negative errno (-EFBIG
 * too large, -ETIMEDOUT, -ECANCELED, -EIO, errors writing to out_fd) and ret->error. */
int fetch_perform(const FetchRequest *req, int out_fd, FetchResponse *ret);

/* The helper's side: answers requests on fd until the other side closes it. 0 at a clean end. */
int fetch_serve(int fd);
