/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Drives remote_transfer() (service/remote/remote-client.h) for the tests against real servers, the way the
 * daemon does: reads remotes.d and the credentials file (owned by the user running it), passes the file as a
 * descriptor, starts opbackup-fetch ($OPBACKUP_FETCH) on a socketpair. Prints one JSON object.
 *
 *   remote-tool CONFIG_DIR REMOTE put|get|list|delete INSTANCE [NAME [FILE]]
 * $REMOTE_TOOL_MAX_SIZE: a GET's limit, as the daemon's (the free space of the backup folder). */

#include <fcntl.h>
#include <json-c/json.h>
#include <stdio.h>
#include <unistd.h>

#include "remote/remote-client.h"
#include "remote/remote-config.h"
#include "util.h"

typedef struct Remotes {
        RemoteConfig **l;
        size_t n;
} Remotes;

static void remotes_done(Remotes *r) {
        remote_config_free_many(r->l, r->n);
}

static int progress(uint64_t done, uint64_t total, void *userdata) {
        uint64_t *max = userdata;

        if (done > *max)
                *max = done;
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(remote_credentials_done) RemoteCredentials cred = {};
        _cleanup_free_ char *why = NULL, *ca = NULL;
        _cleanup_close_ int fd = -1;
        _cleanup_(remotes_done) Remotes remotes = {};
        const RemoteConfig *rc;
        RemoteResult res = {};
        RemoteRequest req = { .fd = -1 };
        uint64_t max_progress = 0;
        size_t ca_size;
        json_object *o;
        int r;

        if (argc < 5) {
                fprintf(stderr, "usage: remote-tool CONFIG_DIR REMOTE put|get|list|delete INSTANCE [NAME [FILE]]\n");
                return 2;
        }
        if (remote_config_load_dir(argv[1], &remotes.l, &remotes.n) < 0)
                return 1;
        rc = remote_config_find(remotes.l, remotes.n, argv[2]);
        if (!rc) {
                fprintf(stderr, "no remote %s\n", argv[2]);
                return 1;
        }
        req.op = remote_op_from_string(argv[3]);
        req.remote = rc;
        req.instance = argv[4];
        req.name = argc > 5 ? argv[5] : NULL;
        /* What the daemon sets from the room in the backup folder. */
        if (getenv("REMOTE_TOOL_MAX_SIZE"))
                req.max_size = strtoull(getenv("REMOTE_TOOL_MAX_SIZE"), NULL, 10);
        req.progress = progress;
        req.userdata = &max_progress;
        if (!rc->error) {
                r = remote_credentials_read(rc, getuid(), &cred, &why);
                if (r < 0) {
                        json_object *e = json_object_new_object();

                        json_object_object_add(e, "rc", json_object_new_int(r));
                        json_object_object_add(e, "kind", json_object_new_string("local"));
                        json_object_object_add(e, "error", json_object_new_string(strempty(why)));
                        printf("%s\n", json_object_to_json_string_ext(e, JSON_C_TO_STRING_PLAIN));
                        json_object_put(e);
                        fflush(stdout);
                        return 1;
                }
        }
        req.credentials = &cred;
        if (rc->ca_file) {
                _cleanup_close_ int cfd = open(rc->ca_file, O_RDONLY | O_CLOEXEC);
                if (cfd < 0 || read_full_fd(cfd, 1024 * 1024, &ca, &ca_size) < 0)
                        return 1;
                req.ca_pem = ca;
        }
        if (argc > 6) {
                fd = req.op == REMOTE_OP_PUT ? open(argv[6], O_RDONLY | O_CLOEXEC) :
                        open(argv[6], O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
                if (fd < 0) {
                        perror(argv[6]);
                        return 1;
                }
                req.fd = fd;
        }
        r = remote_transfer(-1, &req, &res);
        o = json_object_new_object();
        json_object_object_add(o, "rc", json_object_new_int(r));
        if (res.error)
                json_object_object_add(o, "error", json_object_new_string(res.error));
        if (res.kind)
                json_object_object_add(o, "kind", json_object_new_string(res.kind));
        if (res.url)
                json_object_object_add(o, "url", json_object_new_string(res.url));
        json_object_object_add(o, "size", json_object_new_uint64(res.size));
        json_object_object_add(o, "progress", json_object_new_uint64(max_progress));
        if (req.op == REMOTE_OP_LIST) {
                json_object *a = json_object_new_array();

                for (size_t i = 0; i < res.n_entries; i++) {
                        json_object *e = json_object_new_object();
                        json_object_object_add(e, "name", json_object_new_string(res.entries[i].name));
                        json_object_object_add(e, "size", json_object_new_uint64(res.entries[i].size));
                        json_object_object_add(e, "mtime", json_object_new_int64(res.entries[i].mtime_usec));
                        json_object_array_add(a, e);
                }
                json_object_object_add(o, "entries", a);
        }
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
        /* Before any exit handler (LeakSanitizer's, in the sanitizer build) can end the process. */
        fflush(stdout);
        json_object_put(o);
        remote_result_done(&res);
        return r < 0 ? 1 : 0;
}
