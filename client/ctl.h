/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>
#include <systemd/sd-bus.h>

/* Exit codes (SPEC §8). */
enum {
        EXIT_OK = 0,
        EXIT_FAIL = 1,
        EXIT_USAGE = 2,
        EXIT_NOT_AUTHORIZED = 3,
        EXIT_NOT_FOUND = 4,
        EXIT_BUSY = 5,
};

#define BUS_NAME_OPBACKUP "org.opbackup.backup1"
#define PATH_MANAGER "/org/opbackup/backup1"
#define IFACE_MANAGER "org.opbackup.backup1.Manager"
#define IFACE_INSTANCE "org.opbackup.backup1.Instance"
#define IFACE_JOB "org.opbackup.backup1.Job"

typedef struct Ctl {
        const char *instance;           /* -i */
        const char *host;               /* -H */
        bool json;
        bool ask_password;
        bool quiet;
        sd_bus *bus;
} Ctl;

/* Connects (system bus, or a remote host's over ssh) and starts the polkit agent when on a terminal. */
int ctl_connect(Ctl *ctl);

/* Prints a failed call's error the way a person can act on and returns the exit code for it. */
int ctl_report_error(const char *what, const sd_bus_error *error, int r);

/* Calls a method on the opbackup service; on failure reports and returns the exit code (>0),
 * on success 0. */
int ctl_call(Ctl *ctl, const char *path, const char *interface, const char *member,
             sd_bus_message **ret_reply, const char *types, ...);

/* The object path of -i INSTANCE (or the only instance). */
int ctl_instance_path(Ctl *ctl, char **ret_path);

/* pkttyagent for interactive polkit authentication (agent.c). */
void polkit_agent_open_if_tty(void);
void polkit_agent_close(void);

int cmd_status(Ctl *ctl, int argc, char *argv[]);
