/* SPDX-License-Identifier: GPL-2.0-or-later */

/* The pager: a child that reads our standard output through a pipe. $SYSTEMD_PAGER and $PAGER hold a
 * command line for /bin/sh; $SYSTEMD_LESS replaces the LESS options. When we run with privileges
 * another user gave us (setuid, sudo), the pager gets them too: then only less, in its secure mode (no
 * shell, no editor, no log files), unless $SYSTEMD_PAGERSECURE says otherwise. */

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>

#include "pager.h"
#include "util.h"

#define LESS_DEFAULT "FRXMK"

static pid_t pager_pid;
static int saved_stdout = -1;

static bool secure_mode(void) {
        const char *e = getenv("SYSTEMD_PAGERSECURE");
        int b = e ? parse_boolean(e) : -1;

        if (b >= 0)
                return b;
        return geteuid() != getuid() || (geteuid() == 0 && getenv("SUDO_UID"));
}

/* Without any pager to run, the child passes the text through itself. */
_Noreturn static void copy_through(void) {
        char buf[4096];
        ssize_t n;

        while ((n = read(STDIN_FILENO, buf, sizeof(buf))) > 0 || (n < 0 && errno == EINTR))
                if (n > 0 && write_all(STDOUT_FILENO, buf, (size_t) n) < 0)
                        break;
        _exit(EXIT_SUCCESS);
}

_Noreturn static void run_pager(const char *pager, bool secure) {
        (void) setenv("LESS", getenv("SYSTEMD_LESS") ?: LESS_DEFAULT, 1);
        if (secure)
                (void) setenv("LESSSECURE", "1", 1);
        /* The pager ends with us, even if we are killed. */
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (pager && !secure)
                execl("/bin/sh", "sh", "-c", pager, (char *) NULL);
        execlp("less", "less", (char *) NULL);
        if (!secure)
                execlp("more", "more", (char *) NULL);
        copy_through();
}

void pager_open(bool enabled) {
        const char *pager = getenv("SYSTEMD_PAGER") ?: getenv("PAGER");
        bool secure = secure_mode();
        int fds[2];
        pid_t pid;

        if (!enabled || pager_pid > 0 || !isatty(STDOUT_FILENO))
                return;
        if (pager && (isempty(pager) || streq(pager, "cat")))
                return;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return;
        fflush(stdout);
        pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return;
        }
        if (pid == 0) {
                if (dup2(fds[0], STDIN_FILENO) < 0)
                        _exit(EXIT_FAILURE);
                run_pager(pager, secure);
        }
        saved_stdout = fcntl(STDOUT_FILENO, F_DUPFD_CLOEXEC, 3);
        if (saved_stdout < 0 || dup2(fds[1], STDOUT_FILENO) < 0) {
                /* Without our own stdout back we cannot go on; the pager gets EOF and quits. */
                if (saved_stdout >= 0)
                        close(TAKE_FD(saved_stdout));
                close(fds[0]);
                close(fds[1]);
                (void) waitpid(pid, NULL, 0);
                return;
        }
        close(fds[0]);
        close(fds[1]);
        pager_pid = pid;
        /* Quitting the pager early closes the pipe: what is left to print is not an error. */
        signal(SIGPIPE, SIG_IGN);
}

void pager_close(void) {
        if (pager_pid <= 0)
                return;
        fflush(stdout);
        /* Our end of the pipe closes: the pager sees the end of the text. */
        (void) dup2(saved_stdout, STDOUT_FILENO);
        close(saved_stdout);
        saved_stdout = -1;
        while (waitpid(pager_pid, NULL, 0) < 0 && errno == EINTR)
                ;
        pager_pid = 0;
}
