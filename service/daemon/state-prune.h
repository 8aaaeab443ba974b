/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include "daemon/daemon-state.h"

/* What the state directory keeps for each instance only makes its backups and listings faster: its files
 * cache (files-cache/NAME) and its saved listing (list-NAME.cache). Once an instance is no longer
 * configured, that is dead weight (a files cache can take hundreds of MiB): at start, the daemon drops
 * what belongs to no configured instance. Not when the instances were looked for under /home rather
 * than configured: a home not mounted yet would look like an instance removed. */
void state_prune(Daemon *d, bool instances_configured);
