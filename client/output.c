/* SPDX-License-Identifier: GPL-2.0-or-later */

/* What several commands print the same way: JSON documents and streams, timestamps. */

#include <json-c/json.h>
#include <time.h>

#include "output.h"
#include "util.h"

void ctl_json_print(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED |
                                                              JSON_C_TO_STRING_NOSLASHESCAPE));
}

void ctl_json_print_line(json_object *o) {
        printf("%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
        fflush(stdout);
}

json_object *strv_to_json(char *const *l) {
        json_object *a = json_object_new_array();

        STRV_FOREACH(s, l)
                json_object_array_add(a, json_object_new_string(*s));
        return a;
}

json_object *json_string_or_null(const char *s) {
        return isempty(s) ? NULL : json_object_new_string(s);
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
