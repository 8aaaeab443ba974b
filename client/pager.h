/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Long output on a terminal through a pager, as systemd's tools do (pager.c). */

#include <stdbool.h>

/* From here on, standard output goes to $SYSTEMD_PAGER, $PAGER, or less (then more), with
 * LESS=FRXMK: less quits at once when everything fits on the screen, keeps colors, quits on Ctrl-C.
 * Nothing happens when standard output is not a terminal, when enabled is false (--no-pager), or when
 * the pager variable is empty or "cat". */
void pager_open(bool enabled);

/* Ends the output and waits for the pager to quit. */
void pager_close(void);
