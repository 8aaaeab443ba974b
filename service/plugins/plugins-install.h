/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <stdint.h>

#include "backup/backup-log.h"

/* pip, run as the instance user by a restore's worker. */

/* Runs <venv>/bin/python -m pip install --no-cache-dir --disable-pip-version-check --no-input FILE, in
 * its own process group, with TMPDIR=work_dir, killed when it exceeds timeout_usec or progress() asks
 * to stop (-ECANCELED). Returns 0 when pip ran: *ret_status is its wait status, *ret_output the tail of
 * its merged stdout/stderr (at most a few KiB, whole lines). */
int plugin_pip_install(const char *venv, const char *file, const char *work_dir, uint64_t timeout_usec,
                       const BackupCallbacks *cb, int *ret_status, bool *ret_timed_out, char **ret_output);

/* Whether pip's output (the tail plugin_pip_install() returns) says it could not get something from a
 * package index: nothing satisfying a requirement found, or no connection. */
bool pip_output_says_unreachable(const char *output);

/* Adds what pip needs of the venv to an environment: the venv's bin first in PATH (pip may run build
 * backends that call "python"), VIRTUAL_ENV, TMPDIR in the private work folder (pip unpacks and builds
 * there) and no user site-packages. The same whether pip runs in the worker or in a transient unit. */
int pip_environment_add_venv(char ***env, const char *venv, const char *work_dir);
