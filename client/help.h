/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* Laying out --help on the terminal's width (help.c): long synopses wrap between their [options],
 * continuation lines indented, as in systemd's tools. */

#include <stddef.h>

/* The width to lay text out for: $COLUMNS, else standard output's terminal, else 80; within 60..120. */
size_t help_columns(void);

/* "  SYNOPSIS        SUMMARY" for the list of commands: the summary in a column of its own, on the
 * synopsis's line if that is short enough, else on the next one. */
void help_print_command(const char *synopsis, const char *summary);

/* "  OPTION          DESCRIPTION", the description wrapped in its column. */
void help_print_option(const char *option, const char *description);

/* "opbackupctl [OPTIONS...] SYNOPSIS", wrapped, continuation lines aligned after the command's name. */
void help_print_usage(const char *synopsis);

/* A paragraph, wrapped at the width. */
void help_print_text(const char *text);
