/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* Versions as OctoPrint and pip write them ("1.11.8", "1.10.0rc3", "1.9.3.post1", "2.0.0.dev12+gabc").
 * Comparison follows PEP 440 for the parts that matter here: release numbers compared numerically
 * (missing parts are 0), then dev < a < b < rc < final < post. */

/* <0, 0, >0 like strcmp. Unparsable versions sort before parsable ones and compare by strcmp among
 * themselves. */
int version_compare(const char *a, const char *b);

/* The first two release numbers. -EINVAL if the version does not start with N.N. */
int version_major_minor(const char *v, unsigned *ret_major, unsigned *ret_minor);

/* Version specifiers as in plugin repository "compatibility.octoprint": a comma-separated list of
 * clauses, each ">=X", "<=X", ">X", "<X", "==X", "!=X", "~=X" or a bare "X" (which OctoPrint reads
 * as ">=X"). An empty or NULL spec matches everything. Returns 1 match, 0 no match, -EINVAL bad spec. */
int version_spec_matches(const char *spec, const char *version);
