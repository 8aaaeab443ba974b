/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl export NAME [-o FILE|-] [--force] (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_export(Ctl *ctl, int argc, char *argv[]);
