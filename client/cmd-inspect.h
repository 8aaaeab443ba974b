/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl inspect NAME|FILE (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_inspect(Ctl *ctl, int argc, char *argv[]);
