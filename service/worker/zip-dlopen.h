/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupd does not link libzip: its workers load it with dlopen() when they first read or write a zip,
 * as systemd does with its optional libraries. Linked, libzip brings libcrypto (for zip encryption, which
 * opbackup does not use) into the idle daemon: 1.4 MB of its 5.4 MB RSS.
 *
 * zip-dlopen.c defines the libzip functions the project calls, with libzip's names and signatures, each
 * forwarding to the loaded library, so code keeps calling libzip through <zip.h>. Code that starts using
 * another libzip function adds it there (opbackupd's link fails until it does). Without the library, the
 * functions fail the way libzip reports failures (NULL or -1, ZIP_ER_INTERNAL) and zip_error_strerror()
 * says what to install. Binaries that link libzip itself (opbackupctl) do not link this. */

/* Loads libzip, once (thread-safe). Returns 0, or -ELIBACC with *ret_error (if not NULL) saying what is
 * missing and what to install. Workers call it first: a missing library fails the job with that message. */
int zip_dlopen(char **ret_error);
