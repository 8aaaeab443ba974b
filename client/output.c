/* SPDX-License-Identifier: GPL-2.0-or-later */

/* What several commands print the same way: JSON documents, timestamps, numbers from the command line. */

#include <getopt.h>
#include <json-c/json.h>
#include <time.h>

#include "ctl.h"
#include "util.h"

void ctl_json_print(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
}

void ctl_json_print_line(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
}

static bool usec_to_local(int64_t usec, struct tm *ret) {
        time_t t = (time_t) (usec / 1000000);

        return localtime_r(&t, ret) != NULL;
}

const char *format_timestamp(char *buf, size_t size, int64_t usec) {
        struct tm tm;

        if (!usec_to_local(usec, &tm) || strftime(buf, size, "%Y-%m-%d %H:%M:%S", &tm) == 0)
                snprintf(buf, size, "-");
        return buf;
}

const char *format_timestamp_iso(char *buf, size_t size, int64_t usec) {
        char zone[8];
        struct tm tm;
        size_t n;

        /* ISO 8601 with the offset as "+01:00" (strftime's %z gives "+0100"). */
        if (!usec_to_local(usec, &tm) || (n = strftime(buf, size, "%Y-%m-%dT%H:%M:%S", &tm)) == 0 ||
            strftime(zone, sizeof(zone), "%z", &tm) != 5) {
                snprintf(buf, size, "%s", "");
                return buf;
        }
        snprintf(buf + n, size - n, "%.3s:%.2s", zone, zone + 3);
        return buf;
}

int parse_uint32(const char *s, uint32_t *ret) {
        unsigned long long v;
        char *end;

        if (isempty(s) || *s < '0' || *s > '9')
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno == ERANGE || v > UINT32_MAX)
                return -ERANGE;
        if (errno || *end)
                return -EINVAL;
        *ret = (uint32_t) v;
        return 0;
}

bool ctl_show_progress(const Ctl *ctl) {
        return !ctl->quiet && isatty(STDERR_FILENO);
}

int ctl_parse_json_only(Ctl *ctl, int argc, char *argv[], void (*help)(void), int n_args, const char *wrong_count) {
        enum { ARG_JSON = 0x100 };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "json", no_argument, NULL, ARG_JSON },
                {}
        };
        int c;

        optind = 0;     /* a full re-initialization: main() used getopt already */
        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0)
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case ARG_JSON:
                        ctl->json = true;
                        break;
                default:
                        return -EXIT_USAGE;
                }
        if (argc - optind == n_args)
                return 1;
        if (wrong_count)
                fprintf(stderr, "%s\n", wrong_count);
        else
                fprintf(stderr, "%s takes no arguments (unexpected '%s').\n", argv[0], argv[optind]);
        return -EXIT_USAGE;
}
