/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "ctl.h"

int cmd_upload(Ctl *ctl, int argc, char *argv[]);
