/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Reading OctoPrint's GET /api/job answers for print-aware backups (printer-state.c). The JSON shapes are
 * OctoPrint's own (api/job.py: {"job": ..., "progress": ..., "state": get_state_string()}). */

#include "printer/printer-state.h"
#include "test-util.h"

static void check(long status, const char *body, PrinterActivity want, const char *want_what) {
        _cleanup_free_ char *what = NULL;
        int a = printer_activity_from_answer(status, body, body ? strlen(body) : 0, &what);

        if (a != (int) want)
                fprintf(stderr, "status %ld body %s: got %d (%s), want %d\n", status, strempty(body), a,
                        strempty(what), (int) want);
        ASSERT_EQ(a, want);
        ASSERT_CONTAINS(what, want_what);
}

static void test_states(void) {
        static const char *const busy[] = {
                "Printing", "Printing from SD", "Pausing", "Paused", "Resuming", "Cancelling", "Finishing",
                "Starting", "Starting print from SD", "Sending file to SD", "Transferring file to SD",
        };
        static const char *const idle[] = {
                "Operational", "Offline", "Offline after error", "Error: Printer halted", "Connecting",
                "Opening serial connection", "Detecting baudrate", "Closed", "Unknown", "",
                "Printingfoo", "printing",
        };

        for (size_t k = 0; k < ELEMENTSOF(busy); k++)
                ASSERT_TRUE(printer_state_is_busy(busy[k]));
        for (size_t k = 0; k < ELEMENTSOF(idle); k++)
                ASSERT_FALSE(printer_state_is_busy(idle[k]));
        ASSERT_FALSE(printer_state_is_busy(NULL));
}

static void test_answers(void) {
        check(200, "{\"job\": {\"file\": {\"name\": \"benchy.gcode\"}}, \"progress\": {\"completion\": 42.1}, "
              "\"state\": \"Printing\"}", PRINTER_BUSY, "Printing");
        check(200, "{\"job\": {\"file\": {\"name\": null}}, \"progress\": {\"completion\": null}, "
              "\"state\": \"Operational\"}", PRINTER_IDLE, "Operational");
        check(200, "{\"state\": \"Offline after error\", \"error\": \"Too many consecutive timeouts\"}",
              PRINTER_IDLE, "Offline after error");
        check(200, "{\"state\": \"Paused\"}", PRINTER_BUSY, "Paused");
        /* What the other side says is made safe to log. */
        check(200, "{\"state\": \"Printing from \\u001b[31mSD\\nfake log line\"}", PRINTER_BUSY,
              "Printing from ?[31mSD?fake");

        check(401, "{\"error\": \"Invalid API key\"}", PRINTER_UNKNOWN, "refused the API key (HTTP 401)");
        check(403, "Forbidden", PRINTER_UNKNOWN, "refused the API key (HTTP 403)");
        check(500, "oops", PRINTER_UNKNOWN, "answered HTTP 500");
        check(302, "", PRINTER_UNKNOWN, "answered HTTP 302");
        check(200, "<html>OctoPrint login</html>", PRINTER_UNKNOWN, "has no job state");
        check(200, "{\"state\": 5}", PRINTER_UNKNOWN, "has no job state");
        check(200, "[\"Printing\"]", PRINTER_UNKNOWN, "has no job state");
        check(200, NULL, PRINTER_UNKNOWN, "has no job state");
}

static void test_embedded_nul(void) {
        _cleanup_free_ char *what = NULL;
        static const char body[] = "{\"state\": \"Operational\"}\0{\"state\": \"Printing\"}";

        /* A body with a NUL is not JSON we trust, whatever comes before it. */
        ASSERT_EQ(printer_activity_from_answer(200, body, sizeof(body) - 1, &what), PRINTER_UNKNOWN);
}

int main(void) {
        RUN(test_states);
        RUN(test_answers);
        RUN(test_embedded_nul);
        return 0;
}
