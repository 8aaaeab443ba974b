/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl monitor (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_monitor(Ctl *ctl, int argc, char *argv[]);
