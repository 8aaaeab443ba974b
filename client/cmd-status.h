/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl status: each instance and the running jobs. (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_status(Ctl *ctl, int argc, char *argv[]);
