/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* pkttyagent, for interactive polkit authentication on a terminal (agent.c). */

/* Starts the agent for this process, unless it runs already, stdin is not a terminal, pkttyagent is not
 * installed, or we are root (whom polkit never asks). */
void polkit_agent_open_if_tty(void);
void polkit_agent_close(void);
