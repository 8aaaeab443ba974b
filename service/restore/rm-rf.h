/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Removes name (a directory tree or anything else) relative to dir_fd without following symlinks and
 * without leaving dir_fd's tree, whatever happens to the tree meanwhile. Directories the caller owns but
 * cannot write or search are made so first. Uses a bounded number of file descriptors at any depth, and
 * a few short-lived threads to unlink a folder's files side by side (all gone when it returns).
 * Returns 0 if name does not exist. */
int rm_rf_at(int dir_fd, const char *name);
