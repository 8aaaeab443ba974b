/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl scheduled-backup (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_scheduled_backup(Ctl *ctl, int argc, char *argv[]);
