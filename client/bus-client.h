/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Talking to opbackupd: connecting, calling its methods, and saying why a call failed in the words of
 * the command (ctl->doing) rather than those of the D-Bus API. Functions that return "an exit code"
 * return 0 on success and have printed the reason otherwise. */

#include <stdint.h>
#include <systemd/sd-bus.h>

#include "ctl.h"

/* Connects to the system bus (or a remote host's, over ssh), unless connected already. ctl_call() and
 * ctl_instance_path() connect by themselves. Returns an exit code. */
int ctl_connect(Ctl *ctl);

/* Sets ctl->doing to a formatted text ("delete NAME"), kept until the next call or ctl_free_doing().
 * On failure (out of memory) ctl->doing stays as it was. */
void ctl_set_doing(Ctl *ctl, const char *format, ...) __attribute__((format(printf, 2, 3)));
void ctl_free_doing(Ctl *ctl);

/* Prints "Cannot <ctl->doing>: <reason>." and, on a second line, what to do about it; returns the exit
 * code for the error. member is the method that failed: it tells which polkit action was refused. e may
 * be NULL for a local failure r (negative errno). */
int ctl_report_error(const Ctl *ctl, const char *member, const sd_bus_error *e, int r);
/* The same, for something else than ctl->doing ("cancel job 3"). */
int ctl_report_error_as(const Ctl *ctl, const char *what, const char *member, const sd_bus_error *e, int r);

/* Sends m and waits for the reply. If polkit wants someone to authenticate (and --no-ask-password was not
 * given), starts the polkit agent and sends it again allowing interactive authorization. timeout_usec 0:
 * the default. Returns negative errno with *ret_error set; prints nothing. */
int ctl_call_message_full(Ctl *ctl, sd_bus_message *m, uint64_t timeout_usec, sd_bus_error *ret_error,
                          sd_bus_message **ret_reply);

/* Like ctl_call_message_full(), but reports a failure and returns an exit code. */
int ctl_call_message(Ctl *ctl, sd_bus_message *m, uint64_t timeout_usec, sd_bus_message **ret_reply);

/* Calls a method of the opbackup service with arguments of types, connecting first if need be; returns
 * an exit code. */
int ctl_call(Ctl *ctl, const char *path, const char *interface, const char *member,
             sd_bus_message **ret_reply, const char *types, ...);

/* The object path of -i INSTANCE, or of the only instance. With several and no -i, lists their names and
 * returns EXIT_USAGE. Returns an exit code. */
int ctl_instance_path(Ctl *ctl, char **ret_path);

/* Walks the a{sv} at m's read position: fn gets each key and its variant's signature and either reads
 * the variant (returns 1) or leaves it to be skipped (returns 0); negative stops the walk. */
typedef int (*ctl_dict_entry_fn)(sd_bus_message *m, const char *key, const char *contents, void *userdata);
int ctl_read_dict(sd_bus_message *m, ctl_dict_entry_fn fn, void *userdata);
