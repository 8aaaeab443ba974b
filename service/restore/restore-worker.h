/* SPDX-License-Identifier: GPL-2.0-or-later */
#pragma once

/* In the worker: validates, extracts into staging, reinstalls plugins; userdata is the Job. */
int restore_worker_main(int fd, void *userdata);
