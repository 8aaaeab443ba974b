/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl list: the backups of the instance. (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_list(Ctl *ctl, int argc, char *argv[]);
