/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* opbackupctl prune --keep N [--match GLOB] (verbs.c has its arguments, options and help). */

#include "ctl.h"

int cmd_prune(Ctl *ctl, int argc, char *argv[]);
