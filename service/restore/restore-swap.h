/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

#include <stdbool.h>

/* The crash-safe swap of a restore (opbackupd(8), RESTORE, steps 2, 6 and 8). A small journal next to basedir
 * records how far the swap got; after a crash, swap_recover() finishes or rolls back, so that basedir is
 * either the old tree or the restored one (with what it carries over), never a mix.
 *
 *   prepared   staging is complete; nothing has moved        → recovery: remove staging (roll back)
 *   swapping   basedir → old, staging → basedir               → recovery: back if staging is still there,
 *                                                                else forward
 *   carrying   moving the carried folders from old into basedir → recovery: finish the moves
 *   done       old can go                                      → recovery: remove old unless kept
 *
 * All operations are renames inside one filesystem, done with directory fds and without following
 * symlinks at any path component, so they are safe as root in folders the instance user can write. */

typedef struct SwapPlan {
        char *basedir;          /* absolute, no trailing slash */
        char *staging;          /* <parent>/.<base>.opbackup-staging */
        char *old;              /* <parent>/<base>.opbackup-old */
        char *journal;          /* <parent>/.<base>.opbackup-journal */
        char **carry;           /* paths relative to basedir moved from old to the restored tree */
        bool keep_previous;
        bool in_place;          /* basedir is a mount point: its contents move, not basedir itself */
} SwapPlan;

/* Fills in staging/old/journal from basedir. */
int swap_plan_init(SwapPlan *p, const char *basedir);

/* For a basedir that cannot be renamed (a mount point, OctoPrint's Docker issue #2992): staging and old
 * live inside basedir (basedir/.opbackup-staging, basedir/.opbackup-old, same filesystem) and the swap
 * moves basedir's entries instead of basedir:
 *   moving-out   basedir's entries → old (the safety copy)   → recovery: move them back, drop staging
 *   moving-in    staging's entries → basedir                 → recovery: finish, then carry
 * then carrying and done as above. The journal stays next to basedir. */
int swap_plan_init_in_place(SwapPlan *p, const char *basedir);
void swap_plan_done(SwapPlan *p);

/* Writes the journal in state "prepared" (before anything is moved). */
int swap_journal_prepare(const SwapPlan *p);

/* Swaps and carries over, updating the journal as it goes; leaves it in state "done". On failure before
 * the point of no return (the second rename) everything is put back (*ret_swapped false); after it, the
 * restored tree is in place whatever the error (*ret_swapped true) and recovery finishes the rest. */
int swap_execute(const SwapPlan *p, bool *ret_swapped, char **ret_error);

/* Removes old (unless keep_previous) and the journal. */
int swap_finish(const SwapPlan *p, char **ret_error);

/* Removes staging and the journal of a restore that never swapped. */
int swap_abort(const SwapPlan *p);

/* At start-up: if a journal exists next to basedir, finish or roll back. Returns 0 if there was none,
 * 1 if something was done (*ret_message says what), negative on failure. */
int swap_recover(const char *basedir, char **ret_message);

/* Tests stop the daemon at named points of a restore to prove crash safety: with
 * OPBACKUP_TEST_PAUSE=<point>, the daemon (or worker) sleeps there for a minute. Never set in production. */
void test_pause_point(const char *point);
