/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl restore NAME|FILE (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_restore(Ctl *ctl, int argc, char *argv[]);
