/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl unknown-plugins [--clear] (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_unknown_plugins(Ctl *ctl, int argc, char *argv[]);
