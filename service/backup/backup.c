/* SPDX-License-Identifier: GPL-2.0-or-later */
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <sys/param.h>
#include <sys/statvfs.h>
#include <time.h>

#include "backup/archive-write.h"
#include "backup/backup-plan.h"
#include "backup/backup.h"
#include "backup/excludes.h"
#include "backup/files-cache.h"
#include "instance/distinfo.h"
#include "log.h"
#include "names.h"
#include "pyjson.h"

#define MIB (1024ULL * 1024ULL)

int backup_metadata_excludes(char *const *excludes, char ***ret) {
        _cleanup_strv_free_ char **l = strv_copy(excludes);

        if (!l)
                return -ENOMEM;
        if (strv_contains(l, "timelapse") && !strv_contains(l, "timelapse_tmp") && strv_extend(&l, "timelapse_tmp") < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(l);
        return 0;
}

static int fail(char **ret_error, int error, const char *format, ...) _printf_(3, 4);
static int fail(char **ret_error, int error, const char *format, ...) {
        va_list ap;

        if (ret_error && !*ret_error) {
                errno = abs(error);
                va_start(ap, format);
                if (vasprintf(ret_error, format, ap) < 0)
                        *ret_error = NULL;
                va_end(ap);
        }
        return -abs(error);
}

static char *strip_slashes(const char *p) {
        char *s = strdup(p);
        size_t n;

        if (!s)
                return NULL;
        n = strlen(s);
        while (n > 1 && s[n - 1] == '/')
                s[--n] = 0;
        return s;
}

/* Opens the backup folder, creating it (0755) with its missing parents if it lies inside basedir.
 * Each step is relative to the previous folder's fd and never follows a symlink. */
static int open_backup_folder(const char *basedir, const char *folder, int *ret_fd, char **ret_error) {
        _cleanup_free_ char *b = strip_slashes(basedir), *f = strip_slashes(folder), *rel = NULL;
        _cleanup_close_ int fd = -1;
        const char *rest;

        if (!b || !f)
                return -ENOMEM;
        fd = open(f, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0) {
                *ret_fd = TAKE_FD(fd);
                return 0;
        }
        if (errno == ELOOP)
                return fail(ret_error, errno, "The backup folder %s is a symlink: configure the folder it points "
                            "to as the backup folder instead", folder);
        if (errno != ENOENT)
                return fail(ret_error, errno, "Cannot open the backup folder %s: %m", folder);
        rest = startswith(f, b);
        if (!rest || rest[0] != '/')
                return fail(ret_error, ENOENT, "The backup folder %s does not exist: create it, or choose "
                            "another one", folder);

        rel = strdup(rest + 1);
        if (!rel)
                return -ENOMEM;
        fd = open(b, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0)
                return fail(ret_error, errno, "Cannot open the basedir %s: %m", basedir);
        for (char *save = NULL, *c = strtok_r(rel, "/", &save); c; c = strtok_r(NULL, "/", &save)) {
                int nfd;

                if (streq(c, ".") || streq(c, ".."))
                        return fail(ret_error, EINVAL, "The backup folder %s must not contain \".\" or \"..\"", folder);
                if (mkdirat(fd, c, 0755) < 0 && errno != EEXIST)
                        return fail(ret_error, errno, "Cannot create the backup folder %s: %m", folder);
                nfd = openat(fd, c, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
                if (nfd < 0)
                        return fail(ret_error, errno, "Cannot create the backup folder %s: %m", folder);
                close(fd);
                fd = nfd;
        }
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static uint64_t folder_free_bytes(const BackupCallbacks *cb, int dirfd) {
        struct statvfs sv;
        uint64_t b;

        if (cb && cb->free_space)
                return cb->free_space(dirfd, &b, cb->userdata) < 0 ? UINT64_MAX : b;
        if (fstatvfs(dirfd, &sv) < 0)
                return UINT64_MAX;    /* cannot tell: let writing find out */
        return (uint64_t) sv.f_bavail * sv.f_frsize;
}

/* plugin_list.json, or NULL when there is nothing to list (or no venv to look at). */
static int plugin_list(const BackupRequest *req, const BackupCallbacks *cb, char **ret) {
        _cleanup_free_ char *sp = NULL;
        PluginInfo *p = NULL;
        size_t n = 0;
        int fd, k;

        *ret = NULL;
        if (!req->venv)
                return 0;
        k = venv_open_site_packages(req->venv, &sp, &fd);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                backup_log(cb, LOG_WARNING, "Cannot find the site-packages of the Python environment %s (%s): the "
                           "backup lists no plugins to reinstall", req->venv, strerror(-k));
                return 0;
        }
        k = distinfo_plugin_list(fd, req->bundled_plugins, &p, &n);
        close(fd);
        if (k == -ENOMEM)
                return k;
        if (k < 0) {
                backup_log(cb, LOG_WARNING, "Cannot list the plugins installed in %s (%s): the backup lists no "
                           "plugins to reinstall", sp, strerror(-k));
                return 0;
        }
        if (n > 0) {
                *ret = plugin_list_to_json(p, n);
                if (!*ret)
                        k = -ENOMEM;
        }
        plugin_info_array_free(p, n);
        return k < 0 ? k : 0;
}

static void log_excludes(const BackupCallbacks *cb, char *const *meta) {
        char buf[1024] = "";

        STRV_FOREACH(e, meta)
                snprintf(buf + strlen(buf), sizeof(buf) - strlen(buf), "%s%s", buf[0] ? ", " : "", *e);
        if (buf[0])
                backup_log(cb, LOG_INFO, "Excluding %s, as asked", buf);
}

typedef struct BackupRun {
        const BackupRequest *req;
        const BackupCallbacks *cb;
        char **meta_excludes;
        char **additional;
        char *locations[_FOLDER_MAX];
        bool excluded[_FOLDER_MAX];
        int dirfd;
        Plan plan;
        char *metadata, *plugins;
        ArchiveWriter *writer;
        FilesCache *cache;
        int64_t start_ns;                  /* wall clock before the scan */
} BackupRun;

static void run_done(BackupRun *j) {
        archive_writer_free(j->writer);
        files_cache_free(j->cache);
        plan_done(&j->plan);
        strv_free(j->meta_excludes);
        strv_free(j->additional);
        for (int i = 0; i < _FOLDER_MAX; i++)
                free(j->locations[i]);
        free(j->metadata);
        free(j->plugins);
        closep(&j->dirfd);
}

static int prepare(BackupRun *j, char **ret_error) {
        const BackupRequest *req = j->req;
        ExcludeRequest er;
        PlanRequest pr;
        int k;

        k = backup_metadata_excludes(req->excludes, &j->meta_excludes);
        if (k < 0)
                return k;
        k = plan_folder_locations(req->basedir, req->octo, j->locations);
        if (k < 0)
                return k;
        for (int i = 0; i < _FOLDER_MAX; i++)
                j->excluded[i] = folder_always_excluded(i) || strv_contains(j->meta_excludes, folder_id_to_string(i));

        k = backup_progress(j->cb, "preparing", 0, 0);
        if (k < 0)
                return fail(ret_error, k, "Canceled");
        k = open_backup_folder(req->basedir, req->backup_folder, &j->dirfd, ret_error);
        if (k < 0)
                return k;

        er = (ExcludeRequest) {
                .instance = req->instance,
                .basedir = req->basedir,
                .data_dir = j->locations[FOLDER_DATA],
                .config_dir = req->config_dir,
                .folder_excludes = j->meta_excludes,
                .hook_timeout_usec = req->hook_timeout_usec,
        };
        k = additional_excludes_compute(&er, j->cb, &j->additional);
        if (k < 0)
                return fail(ret_error, k, k == -ECANCELED ? "Canceled" : "Computing the plugins' excludes failed: %m");
        log_excludes(j->cb, j->meta_excludes);

        pr = (PlanRequest) {
                .basedir = req->basedir,
                .config_file = req->config_file,
                .backup_folder = req->backup_folder,
                .locations = j->locations,
                .excluded = j->excluded,
                .additional_excludes = j->additional,
        };
        k = plan_build(&pr, j->cb, &j->plan, ret_error);
        if (k < 0)
                return k;

        k = plugin_list(req, j->cb, &j->plugins);
        if (k < 0)
                return fail(ret_error, k, "Out of memory while listing plugins");
        j->metadata = pyjson_metadata(req->octoprint_version, j->meta_excludes);
        if (!j->metadata)
                return fail(ret_error, EINVAL, "Cannot write metadata.json for OctoPrint version \"%s\"",
                            strempty(req->octoprint_version));
        return 0;
}

static int check_space(BackupRun *j, char **ret_error) {
        uint64_t need, avail;

        /* Like OctoPrint, assume nothing compresses; add what the zip structure takes. */
        need = j->plan.total_size + j->plan.n_entries * 100ULL + 2ULL * j->plan.names_size +
                strlen(j->metadata) + (j->plugins ? strlen(j->plugins) : 0) + 64 * 1024;
        avail = folder_free_bytes(j->cb, j->dirfd);
        if (avail >= need)
                return 0;
        return fail(ret_error, ENOSPC, "Not enough free space in %s: the backup needs up to %llu MiB, only %llu MiB "
                    "are free", j->req->backup_folder, (unsigned long long) ((need + MIB - 1) / MIB),
                    (unsigned long long) (avail / MIB));
}

static void load_files_cache(BackupRun *j) {
        _cleanup_free_ char *why = NULL;
        const BackupRequest *req = j->req;
        int k;

        if (!req->files_cache_fds || req->files_cache_fds[0] < 0)
                return;
        k = files_cache_load(req->files_cache_fds[0], j->dirfd, req->compression_level, &j->cache, &why);
        if (k < 0)
                log_debug("Cannot load the files cache: %s", strerror(-k));
        else if (why)
                backup_log(j->cb, LOG_INFO, "Not using the files cache: %s; every file is read", why);
}

/* Files whose ctime is this close to the backup's start may change again without their stamp changing
 * (timestamps are taken from a clock that ticks every few ms): they are read again next time. */
#define CACHE_SETTLE_NS (2LL * 1000000000LL)

/* The next files cache, from what went into the archive just made. */
static void write_files_cache(BackupRun *j) {
        const BackupRequest *req = j->req;
        _cleanup_free_ FilesCacheRecord *recs = NULL;
        const ArchiveFileResult *res;
        const PoolFile *files;
        size_t n, m = 0;
        int k;

        if (!req->files_cache_fds || req->files_cache_fds[1] < 0)
                return;
        n = archive_writer_results(j->writer, &files, &res);
        recs = calloc(MAX(n, (size_t) 1), sizeof(FilesCacheRecord));
        if (!recs) {
                log_oom();
                return;
        }
        for (size_t i = 0; i < n; i++) {
                if (!res[i].done || !res[i].unchanged || res[i].size != files[i].stamp.size ||
                    files[i].stamp.ctime_ns > j->start_ns - CACHE_SETTLE_NS)
                        continue;
                recs[m++] = (FilesCacheRecord) {
                        .name = files[i].name,
                        .e = {
                                .stamp = files[i].stamp,
                                .comp_size = res[i].comp_size,
                                .crc = res[i].crc,
                                .raw_crc = res[i].raw_crc,
                                .method = res[i].deflated ? 8 : 0,
                        },
                };
        }
        k = files_cache_write(req->files_cache_fds[1], j->dirfd, req->name, req->compression_level, recs, m);
        if (k < 0) {
                backup_log(j->cb, LOG_WARNING, "Cannot write the files cache (%s): the next backup reads every file",
                           strerror(-k));
                return;
        }
        log_debug("Files cache: %d of %zu files", k, n);
        if (req->files_cache_written)
                *req->files_cache_written = true;
}

static int write_archive_once(BackupRun *j, uint64_t *ret_size, char **ret_error) {
        const BackupRequest *req = j->req;
        int k;

        k = archive_writer_new(j->dirfd, req->backup_folder, req->name, req->compression_level, j->plan.total_size,
                               j->cb, &j->writer, ret_error);
        if (k < 0)
                return fail(ret_error, k, "Cannot start the backup archive: %m");
        if (j->cache)
                archive_writer_set_files_cache(j->writer, j->cache);
        k = archive_writer_add_buffer(j->writer, "metadata.json", j->metadata, strlen(j->metadata), time(NULL), 0600);
        for (size_t i = 0; k >= 0 && i < j->plan.n_entries; i++)
                k = archive_writer_add_entry(j->writer, &j->plan.entries[i]);
        if (k >= 0 && j->plugins)
                k = archive_writer_add_buffer(j->writer, "plugin_list.json", j->plugins, strlen(j->plugins),
                                              time(NULL), 0600);
        if (k < 0)
                return fail(ret_error, k, "Out of memory while preparing the archive");
        return archive_writer_finish(j->writer, ret_size, ret_error);
}

static int write_archive(BackupRun *j, uint64_t *ret_size, char **ret_error) {
        int k;

        load_files_cache(j);
        k = write_archive_once(j, ret_size, ret_error);
        if (k == -ESTALE && j->cache) {
                /* A copied entry was not what the cache said: the backup it refers to was changed behind
                 * its stamp. Nothing is trusted from it: the backup is made again, reading every file. */
                backup_log(j->cb, LOG_WARNING, "%s changed while its data was copied: making the backup again "
                           "without the files cache", files_cache_backup_name(j->cache));
                j->writer = archive_writer_free(j->writer);
                j->cache = files_cache_free(j->cache);
                free(*ret_error);
                *ret_error = NULL;
                k = write_archive_once(j, ret_size, ret_error);
        }
        if (k >= 0)
                write_files_cache(j);
        return k;
}

int backup_execute(const BackupRequest *req, const BackupCallbacks *cb, char **ret_path, uint64_t *ret_size,
                   char ***ret_metadata_excludes, char **ret_error) {
        _cleanup_free_ char *error = NULL, *path = NULL;
        BackupRun j = { .req = req, .cb = cb, .dirfd = -1 };
        char sbuf[16];
        uint64_t size = 0;
        int k;

        if (!req || !req->basedir || !req->config_file || !req->backup_folder || !req->name ||
            !backup_name_is_valid(req->name) || req->compression_level < 0 || req->compression_level > 9) {
                if (ret_error)
                        *ret_error = strdup("Invalid backup request");
                return -EINVAL;
        }
        if (asprintf(&path, "%s/%s", req->backup_folder, req->name) < 0)
                return -ENOMEM;
        {
                struct timespec ts;

                clock_gettime(CLOCK_REALTIME, &ts);
                j.start_ns = (int64_t) ts.tv_sec * 1000000000LL + ts.tv_nsec;
        }
        if (req->files_cache_written)
                *req->files_cache_written = false;
        backup_log(cb, LOG_INFO, "Creating backup %s of %s", req->name, strempty(req->instance));

        k = prepare(&j, &error);
        if (k >= 0) {
                backup_log(cb, LOG_INFO, "Backing up %zu files, %s", j.plan.n_entries,
                           format_bytes(sbuf, sizeof(sbuf), j.plan.total_size));
                k = check_space(&j, &error);
        }
        if (k >= 0)
                k = write_archive(&j, &size, &error);
        if (k < 0) {
                if (!error)
                        (void) fail(&error, k, "Creating the backup failed: %m");
                backup_log(cb, k == -ECANCELED ? LOG_NOTICE : LOG_ERR, "%s", error);
                run_done(&j);
                if (ret_error)
                        *ret_error = TAKE_PTR(error);
                return k;
        }
        backup_log(cb, LOG_INFO, "Backup %s created: %zu files, %s", req->name, j.plan.n_entries,
                   format_bytes(sbuf, sizeof(sbuf), size));
        if (ret_metadata_excludes)
                *ret_metadata_excludes = TAKE_PTR(j.meta_excludes);
        run_done(&j);
        if (ret_path)
                *ret_path = TAKE_PTR(path);
        if (ret_size)
                *ret_size = size;
        return 0;
}
