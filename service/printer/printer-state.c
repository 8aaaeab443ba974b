/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading OctoPrint's answer to GET /api/job: {"job": {...}, "progress": {...}, "state": "Printing"}. */

#include <json-c/json.h>

#include "printer/printer-state.h"
#include "util.h"

#define STATE_LOG_MAX 64U

bool printer_state_is_busy(const char *state) {
        /* The first word of what OctoPrint's printer.get_state_string() says while a print runs, is being
         * set up, paused or wound down ("Printing from SD", "Sending file to SD", "Starting print from
         * SD", ...). Everything else (Operational, Offline, Error, Connecting, Detecting baudrate, ...)
         * means no print is going on. */
        static const char *const busy[] = {
                "Printing", "Pausing", "Paused", "Resuming", "Cancelling", "Finishing", "Starting",
                "Sending", "Transferring",
        };

        if (!state)
                return false;
        for (size_t i = 0; i < ELEMENTSOF(busy); i++) {
                const char *rest = startswith(state, busy[i]);
                if (rest && (*rest == 0 || *rest == ' ' || *rest == ':'))
                        return true;
        }
        return false;
}

/* A copy fit for a log line: the other side controls it. */
static char *state_for_log(const char *s) {
        size_t n = strnlen(s, STATE_LOG_MAX);
        char *c = strndup(s, n);

        if (!c)
                return NULL;
        for (char *p = c; *p; p++)
                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                        *p = '?';
        return c;
}

int printer_activity_from_answer(long status, const char *body, size_t size, char **ret_what) {
        json_object *o = NULL, *state;
        int activity;

        *ret_what = NULL;
        if (status == 401 || status == 403) {
                if (asprintf(ret_what, "OctoPrint refused the API key (HTTP %ld): check ApiKeyFile=", status) < 0)
                        return -ENOMEM;
                return PRINTER_UNKNOWN;
        }
        if (status < 200 || status > 299) {
                if (asprintf(ret_what, "OctoPrint answered HTTP %ld", status) < 0)
                        return -ENOMEM;
                return PRINTER_UNKNOWN;
        }
        if (body && strlen(body) == size)
                o = json_tokener_parse(body);
        if (!o || !json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, "state", &state) ||
            !json_object_is_type(state, json_type_string)) {
                json_object_put(o);
                *ret_what = strdup("OctoPrint's answer has no job state (is ApiUrl= the address of OctoPrint?)");
                return *ret_what ? PRINTER_UNKNOWN : -ENOMEM;
        }
        activity = printer_state_is_busy(json_object_get_string(state)) ? PRINTER_BUSY : PRINTER_IDLE;
        *ret_what = state_for_log(json_object_get_string(state));
        json_object_put(o);
        return *ret_what ? activity : -ENOMEM;
}
