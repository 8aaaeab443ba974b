/* SPDX-License-Identifier: GPL-2.0-or-later */

/* Interactive polkit authentication from a terminal: like systemctl, run pkttyagent for our own process
 * while we wait for the daemon, so polkit can ask for a password on this terminal. bus-client.c starts it
 * only when the daemon answered that polkit wants someone to authenticate. */

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>

#include "agent.h"
#include "util.h"

#define PKTTYAGENT "/usr/bin/pkttyagent"

static pid_t agent_pid;

void polkit_agent_open_if_tty(void) {
        char notify[16], process[16];
        int fds[2];
        pid_t pid;

        if (agent_pid > 0 || geteuid() == 0 || !isatty(STDIN_FILENO) || access(PKTTYAGENT, X_OK) < 0)
                return;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return;
        snprintf(process, sizeof(process), "%d", (int) getpid());
        pid = fork();
        if (pid < 0) {
                close(fds[0]);
                close(fds[1]);
                return;
        }
        if (pid == 0) {
                /* The agent tells us it is ready by closing the notify fd. */
                int fd = fcntl(fds[1], F_DUPFD, 3);
                if (fd < 0)
                        _exit(EXIT_FAILURE);
                snprintf(notify, sizeof(notify), "%d", fd);
                execl(PKTTYAGENT, PKTTYAGENT, "--notify-fd", notify, "--fallback", "--process", process,
                      (char *) NULL);
                _exit(EXIT_FAILURE);
        }
        close(fds[1]);
        agent_pid = pid;
        {
                struct pollfd p = { .fd = fds[0], .events = POLLIN };
                char c;
                /* Wait (bounded) until the agent has registered, else the first call could race it. */
                if (poll(&p, 1, 5000) > 0)
                        (void) read(fds[0], &c, 1);
        }
        close(fds[0]);
}

void polkit_agent_close(void) {
        if (agent_pid <= 0)
                return;
        kill(agent_pid, SIGTERM);
        (void) waitpid(agent_pid, NULL, 0);
        agent_pid = 0;
}
