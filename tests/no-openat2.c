/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * no-openat2 COMMAND [ARG...]: runs COMMAND with openat2() answering ENOSYS, as it does for opbackupd
 * under its unit (systemd's RestrictSUIDSGID=yes filters openat2 that way, because it cannot inspect the
 * flags in struct open_how). There, every symlink-safe open takes the O_NOFOLLOW + /proc/self/fd fallback
 * of open_no_symlinks(); tests run through this wrapper exercise that path on a machine whose kernel has
 * openat2. A seccomp filter rather than a switch in the product: the code under test is the shipped code,
 * and the filter is inherited by everything COMMAND starts (the daemon, its workers).
 *
 * As root the filter is installed as is (CAP_SYS_ADMIN); otherwise with no_new_privs, which the kernel
 * requires then and which opbackupd's unit sets anyway (NoNewPrivileges=yes).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/openat2.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#elif defined(__i386__)
#define NATIVE_ARCH AUDIT_ARCH_I386
#elif defined(__arm__) && defined(__ARMEL__)
#define NATIVE_ARCH AUDIT_ARCH_ARM
#elif defined(__riscv) && __riscv_xlen == 64
#define NATIVE_ARCH AUDIT_ARCH_RISCV64
#endif

static int install_filter(void) {
        struct sock_filter filter[] = {
#ifdef NATIVE_ARCH
                /* Syscall numbers belong to an architecture: only the native one's 437 is openat2. */
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, NATIVE_ARCH, 1, 0),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
#endif
                BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
                BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, SYS_openat2, 0, 1),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | (ENOSYS & SECCOMP_RET_DATA)),
                BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        };
        struct sock_fprog prog = {
                .len = sizeof(filter) / sizeof(filter[0]),
                .filter = filter,
        };

        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) == 0)
                return 0;
        if (errno != EACCES)
                return -errno;
        if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0)
                return -errno;
        if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog, 0, 0) < 0)
                return -errno;
        return 0;
}

int main(int argc, char *argv[]) {
        struct open_how how = { .flags = O_RDONLY | O_CLOEXEC };
        long fd;
        int r;

        if (argc < 2) {
                fprintf(stderr, "usage: %s COMMAND [ARG...]\n", argv[0]);
                return 2;
        }
        r = install_filter();
        if (r < 0) {
                fprintf(stderr, "no-openat2: cannot install the seccomp filter: %s\n", strerror(-r));
                return 1;
        }
        /* A test that believes it runs the fallback but does not is worse than no test. */
        fd = syscall(SYS_openat2, AT_FDCWD, "/", &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS) {
                fprintf(stderr, "no-openat2: openat2() still answers %s after the filter\n",
                        fd >= 0 ? "with a file descriptor" : strerror(errno));
                return 1;
        }
        fprintf(stderr, "no-openat2: openat2() answers ENOSYS (as under opbackupd.service) for %s\n", argv[1]);
        execvp(argv[1], argv + 1);
        fprintf(stderr, "no-openat2: cannot run %s: %s\n", argv[1], strerror(errno));
        return 127;
}
