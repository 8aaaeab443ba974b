/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The crash-safe swap of a restore: the normal path, and recovery from each journal state, as a crash
 * would leave them. Runs as any user on a temp folder. */

#include <fcntl.h>
#include <sys/stat.h>

#include "restore/restore-swap.h"
#include "archive-validate.h"
#include "restore/rm-rf.h"
#include "test-util.h"

static char root[] = "/tmp/test-restore-swap-XXXXXX";

static void put_file(const char *path, const char *content) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        ASSERT_TRUE(fd >= 0);
        ASSERT_EQ(write_all(fd, content, strlen(content)), 0);
        close(fd);
}

static char *get_file(const char *path) {
        char *s = NULL;
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return NULL;
        ASSERT_EQ(read_full_fd(fd, 1 << 20, &s, NULL), 0);
        close(fd);
        return s;
}

static char *p(const char *rel) {
        char *s;
        ASSERT_TRUE(asprintf(&s, "%s/%s", root, rel) > 0);
        return s;
}

static bool exists(const char *rel) {
        _cleanup_free_ char *path = p(rel);
        struct stat st;
        return lstat(path, &st) == 0;
}

static void mk(const char *rel) {
        _cleanup_free_ char *path = p(rel);
        ASSERT_EQ(mkdir(path, 0755), 0);
}

static void put(const char *rel, const char *content) {
        _cleanup_free_ char *path = p(rel);
        put_file(path, content);
}

static void expect_content(const char *rel, const char *content) {
        _cleanup_free_ char *path = p(rel), *s = get_file(path);
        ASSERT_STREQ(s, content);
}

/* basedir: the instance before the restore; staging: what the backup holds. */
static void setup(SwapPlan *plan) {
        _cleanup_free_ char *basedir = p("octo");
        int dfd;

        dfd = open(root, O_RDONLY | O_DIRECTORY);
        (void) rm_rf_at(dfd, "octo");
        (void) rm_rf_at(dfd, ".octo.opbackup-staging");
        (void) rm_rf_at(dfd, "octo.opbackup-old");
        (void) unlinkat(dfd, ".octo.opbackup-journal", 0);
        close(dfd);

        mk("octo");
        put("octo/config.yaml", "old config");
        mk("octo/logs");
        put("octo/logs/octoprint.log", "old log");
        mk("octo/data");
        mk("octo/data/backup");
        put("octo/data/backup/b.zip", "a backup");
        mk("octo/uploads");
        put("octo/uploads/old.gcode", "old upload");

        mk(".octo.opbackup-staging");
        put(".octo.opbackup-staging/config.yaml", "new config");
        mk(".octo.opbackup-staging/data");
        mk(".octo.opbackup-staging/data/plugin");
        put(".octo.opbackup-staging/data/plugin/x.json", "new plugin data");

        ASSERT_EQ(swap_plan_init(plan, basedir), 0);
        ASSERT_EQ(strv_extend(&plan->carry, "data/backup"), 0);
        ASSERT_EQ(strv_extend(&plan->carry, "logs"), 0);
        ASSERT_EQ(strv_extend(&plan->carry, "uploads"), 0);      /* as if the backup excluded uploads */
        ASSERT_EQ(strv_extend(&plan->carry, "watched"), 0);      /* absent: nothing to carry */
}

static void expect_restored(void) {
        expect_content("octo/config.yaml", "new config");
        expect_content("octo/data/plugin/x.json", "new plugin data");
        expect_content("octo/data/backup/b.zip", "a backup");
        expect_content("octo/logs/octoprint.log", "old log");
        expect_content("octo/uploads/old.gcode", "old upload");
        ASSERT_FALSE(exists("octo/watched"));
        ASSERT_FALSE(exists(".octo.opbackup-staging"));
        ASSERT_FALSE(exists(".octo.opbackup-journal"));
}

static void expect_old(void) {
        expect_content("octo/config.yaml", "old config");
        expect_content("octo/logs/octoprint.log", "old log");
        expect_content("octo/data/backup/b.zip", "a backup");
        expect_content("octo/uploads/old.gcode", "old upload");
        ASSERT_FALSE(exists("octo/data/plugin"));
        ASSERT_FALSE(exists(".octo.opbackup-staging"));
        ASSERT_FALSE(exists("octo.opbackup-old"));
        ASSERT_FALSE(exists(".octo.opbackup-journal"));
}

static void test_normal(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *err = NULL;
        bool swapped;

        setup(&plan);
        ASSERT_EQ(swap_journal_prepare(&plan), 0);
        ASSERT_EQ(swap_execute(&plan, &swapped, &err), 0);
        ASSERT_TRUE(swapped);
        ASSERT_TRUE(exists("octo.opbackup-old/config.yaml"));
        ASSERT_EQ(swap_finish(&plan, &err), 0);
        ASSERT_FALSE(exists("octo.opbackup-old"));
        expect_restored();
}

static void test_keep_previous(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *err = NULL;
        bool swapped;

        setup(&plan);
        plan.keep_previous = true;
        ASSERT_EQ(swap_journal_prepare(&plan), 0);
        ASSERT_EQ(swap_execute(&plan, &swapped, &err), 0);
        ASSERT_EQ(swap_finish(&plan, &err), 0);
        expect_restored();
        expect_content("octo.opbackup-old/config.yaml", "old config");
        /* A second restore refuses to overwrite the kept one. */
        free(err);
        err = NULL;
        mk(".octo.opbackup-staging");
        ASSERT_TRUE(swap_execute(&plan, &swapped, &err) < 0);
        ASSERT_FALSE(swapped);
        ASSERT_CONTAINS(err, "octo.opbackup-old exists");
        expect_content("octo/config.yaml", "new config");
}

/* A crash after staging was filled: roll back. */
static void test_recover_prepared(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *msg = NULL;

        setup(&plan);
        ASSERT_EQ(swap_journal_prepare(&plan), 0);
        ASSERT_EQ(swap_recover(plan.basedir, &msg), 1);
        ASSERT_CONTAINS(msg, "rolled back");
        expect_old();
}

/* A crash between the two renames: basedir is gone, old and staging exist. */
static void test_recover_between_renames(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *msg = NULL, *a = p("octo"), *b = p("octo.opbackup-old"), *j = NULL;
        char *text;

        setup(&plan);
        ASSERT_EQ(swap_journal_prepare(&plan), 0);
        /* What swap_execute writes before its first rename. */
        j = get_file(plan.journal);
        text = strstr(j, "\"prepared\"");
        ASSERT_NOT_NULL(text);
        memcpy(text, "\"swapping\"", 10);
        put_file(plan.journal, j);
        ASSERT_EQ(rename(a, b), 0);

        ASSERT_EQ(swap_recover(plan.basedir, &msg), 1);
        ASSERT_CONTAINS(msg, "rolled back");
        expect_old();
}

/* A crash after both renames, before the carry: roll forward. */
static void test_recover_after_renames(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *msg = NULL, *a = p("octo"), *b = p("octo.opbackup-old"), *s = p(".octo.opbackup-staging");
        _cleanup_free_ char *j = NULL;
        char *text;

        setup(&plan);
        ASSERT_EQ(swap_journal_prepare(&plan), 0);
        j = get_file(plan.journal);
        text = strstr(j, "\"prepared\"");
        memcpy(text, "\"swapping\"", 10);
        put_file(plan.journal, j);
        ASSERT_EQ(rename(a, b), 0);
        ASSERT_EQ(rename(s, a), 0);

        ASSERT_EQ(swap_recover(plan.basedir, &msg), 1);
        ASSERT_CONTAINS(msg, "completed");
        expect_restored();
        ASSERT_FALSE(exists("octo.opbackup-old"));
}

/* A crash in the middle of carrying: some folders moved, some not. */
static void test_recover_carrying(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *msg = NULL, *a = p("octo"), *b = p("octo.opbackup-old"), *s = p(".octo.opbackup-staging");
        _cleanup_free_ char *l1 = p("octo.opbackup-old/logs"), *l2 = p("octo/logs"), *j = NULL;
        char *text;

        setup(&plan);
        ASSERT_EQ(swap_journal_prepare(&plan), 0);
        j = get_file(plan.journal);
        text = strstr(j, "\"prepared\"");
        memcpy(text, "\"carrying\"", 10);
        put_file(plan.journal, j);
        ASSERT_EQ(rename(a, b), 0);
        ASSERT_EQ(rename(s, a), 0);
        ASSERT_EQ(rename(l1, l2), 0);

        ASSERT_EQ(swap_recover(plan.basedir, &msg), 1);
        expect_restored();
}

/* A journal whose paths do not belong next to this basedir is not acted on. */
static void test_foreign_journal(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *msg = NULL;

        setup(&plan);
        put_file(plan.journal, "{\"state\": \"done\", \"basedir\": \"/etc\", \"staging\": \"/x\", \"old\": \"/etc.old\"}");
        ASSERT_EQ(swap_recover(plan.basedir, &msg), -EBADMSG);
        expect_content("octo/config.yaml", "old config");
        ASSERT_EQ(unlink(plan.journal), 0);
}

/* No journal: nothing happens. */
static void test_no_journal(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *msg = NULL;

        setup(&plan);
        ASSERT_EQ(swap_recover(plan.basedir, &msg), 0);
        ASSERT_TRUE(exists(".octo.opbackup-staging"));
}

/* rm_tree_at does not follow a symlink out of the tree. */
static void test_rm_tree_symlink(void) {
        _cleanup_free_ char *victim = p("victim"), *link = p("tree/link");
        int dfd;

        mk("victim");
        put("victim/keep", "keep me");
        mk("tree");
        ASSERT_EQ(symlink(victim, link), 0);
        dfd = open(root, O_RDONLY | O_DIRECTORY);
        ASSERT_EQ(rm_rf_at(dfd, "tree"), 0);
        close(dfd);
        ASSERT_FALSE(exists("tree"));
        expect_content("victim/keep", "keep me");
}

/* basedir as a mount point: staging inside it, its contents move. */
static void setup_in_place(SwapPlan *plan) {
        _cleanup_(swap_plan_done) SwapPlan ordinary = {};
        _cleanup_free_ char *basedir = p("octo"), *from = p(".octo.opbackup-staging"), *to = p("octo/.opbackup-staging");

        setup(&ordinary);
        ASSERT_EQ(rename(from, to), 0);
        ASSERT_EQ(swap_plan_init_in_place(plan, basedir), 0);
        STRV_FOREACH(c, ordinary.carry)
                ASSERT_EQ(strv_extend(&plan->carry, *c), 0);
}

static void expect_restored_in_place(void) {
        expect_content("octo/config.yaml", "new config");
        expect_content("octo/data/plugin/x.json", "new plugin data");
        expect_content("octo/data/backup/b.zip", "a backup");
        expect_content("octo/logs/octoprint.log", "old log");
        expect_content("octo/uploads/old.gcode", "old upload");
        ASSERT_FALSE(exists("octo/.opbackup-staging"));
        ASSERT_FALSE(exists("octo/.opbackup-old"));
        ASSERT_FALSE(exists(".octo.opbackup-journal"));
}

static void test_in_place(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *err = NULL;
        bool swapped;

        setup_in_place(&plan);
        ASSERT_EQ(swap_journal_prepare(&plan), 0);
        ASSERT_EQ(swap_execute(&plan, &swapped, &err), 0);
        ASSERT_TRUE(swapped);
        expect_content("octo/.opbackup-old/config.yaml", "old config");
        ASSERT_EQ(swap_finish(&plan, &err), 0);
        expect_restored_in_place();
}

static void set_journal_state(const SwapPlan *plan, const char *state) {
        _cleanup_free_ char *j = get_file(plan->journal);
        char *text = strstr(j, "\"prepared\"");
        _cleanup_free_ char *out = NULL;

        ASSERT_NOT_NULL(text);
        *text = 0;
        ASSERT_TRUE(asprintf(&out, "%s\"%s\"%s", j, state, text + strlen("\"prepared\"")) > 0);
        put_file(plan->journal, out);
}

/* A crash while basedir's contents were moving aside: everything goes back. */
static void test_in_place_recover_moving_out(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *msg = NULL, *a = p("octo/config.yaml"), *b = p("octo/.opbackup-old/config.yaml");
        _cleanup_free_ char *old = p("octo/.opbackup-old");

        setup_in_place(&plan);
        ASSERT_EQ(swap_journal_prepare(&plan), 0);
        set_journal_state(&plan, "moving-out");
        ASSERT_EQ(mkdir(old, 0700), 0);
        ASSERT_EQ(rename(a, b), 0);           /* one entry moved, the others not yet */

        ASSERT_EQ(swap_recover(plan.basedir, &msg), 1);
        ASSERT_CONTAINS(msg, "rolled back");
        expect_content("octo/config.yaml", "old config");
        expect_content("octo/logs/octoprint.log", "old log");
        ASSERT_FALSE(exists("octo/data/plugin"));
        ASSERT_FALSE(exists("octo/.opbackup-staging"));
        ASSERT_FALSE(exists("octo/.opbackup-old"));
        ASSERT_FALSE(exists(".octo.opbackup-journal"));
}

/* A crash while the backup's entries were moving in: finish, carry, clean up. */
static void test_in_place_recover_moving_in(void) {
        _cleanup_(swap_plan_done) SwapPlan plan = {};
        _cleanup_free_ char *msg = NULL, *old = p("octo/.opbackup-old");
        const char *names[] = { "config.yaml", "logs", "data", "uploads" };

        setup_in_place(&plan);
        ASSERT_EQ(swap_journal_prepare(&plan), 0);
        set_journal_state(&plan, "moving-in");
        ASSERT_EQ(mkdir(old, 0700), 0);
        for (size_t k = 0; k < ELEMENTSOF(names); k++) {
                _cleanup_free_ char *from = NULL, *to = NULL;
                ASSERT_TRUE(asprintf(&from, "%s/octo/%s", root, names[k]) > 0);
                ASSERT_TRUE(asprintf(&to, "%s/octo/.opbackup-old/%s", root, names[k]) > 0);
                ASSERT_EQ(rename(from, to), 0);
        }
        {
                _cleanup_free_ char *from = p("octo/.opbackup-staging/config.yaml"), *to = p("octo/config.yaml");
                ASSERT_EQ(rename(from, to), 0);   /* one entry of the backup moved in already */
        }

        ASSERT_EQ(swap_recover(plan.basedir, &msg), 1);
        ASSERT_CONTAINS(msg, "completed");
        expect_restored_in_place();
}

int main(void) {
        int dfd;

        ASSERT_NOT_NULL(mkdtemp(root));
        test_normal();
        test_keep_previous();
        test_recover_prepared();
        test_recover_between_renames();
        test_recover_after_renames();
        test_recover_carrying();
        test_foreign_journal();
        test_no_journal();
        test_rm_tree_symlink();
        test_in_place();
        test_in_place_recover_moving_out();
        test_in_place_recover_moving_in();

        dfd = open("/tmp", O_RDONLY | O_DIRECTORY);
        ASSERT_EQ(rm_rf_at(dfd, root + 5), 0);
        close(dfd);
        return 0;
}
