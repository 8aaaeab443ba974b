/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl delete NAME... (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_delete(Ctl *ctl, int argc, char *argv[]);
