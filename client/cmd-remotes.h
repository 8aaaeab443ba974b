/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "ctl.h"

int cmd_remotes(Ctl *ctl, int argc, char *argv[]);
/* One --remote at most (list, delete, restore, fetch): the name, or NULL; EXIT_USAGE (said) for more. */
int ctl_one_remote(const Ctl *ctl, const char **ret);
