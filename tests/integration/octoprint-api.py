#!/usr/bin/python3
# A stand-in for OctoPrint's REST API, for the print-aware backup tests: answers GET /api/job the way
# OctoPrint does ({"job": ..., "progress": ..., "state": "Printing"}), checking the X-Api-Key header.
# Standard library only.
#
#   octoprint-api.py --port-file F --log F --key KEY [--states Printing,Printing,Operational]
#                    [--status 401] [--watch DIR] [--align]
#
# --states: the state of each answer in turn; the last one repeats. --status: answer every request with
# this HTTP status instead (401: OctoPrint's answer to a wrong key). Each request is logged as one JSON line:
# {"seq", "path", "key_ok", "status", "state", "client_uid", "backups"} where client_uid is the uid of the
# process that connected (read from /proc/net/tcp: who asked, the fetch helper or a worker) and backups
# the *.zip files, hidden ones too, in --watch DIR at the moment of the answer (so a test can tell whether
# a backup had started before the printer became idle), plus "received" and "answered": time.monotonic()
# (CLOCK_MONOTONIC, the clock the daemon's workers measure with) when the request came and when the answer
# went out. --align holds each answer until just after the next whole second of that clock: a waiter that
# counts whole seconds then sees a second pass while only a fraction of one did (test-print-aware.py).

import argparse
import http.server
import json
import math
import os
import sys
import time

from tcpclient import client_uid


def backups_in(folder):
        if not folder or not os.path.isdir(folder):
                return []
        return sorted(n for n in os.listdir(folder) if n.endswith(".zip"))


def make_handler(args, log):
        states = args.states.split(",") if args.states else ["Operational"]
        counter = {"n": 0}

        class Handler(http.server.BaseHTTPRequestHandler):
                def log_message(self, format, *a):
                        pass

                def do_GET(self):
                        received = time.monotonic()
                        key_ok = self.headers.get("X-Api-Key") == args.key
                        seq = counter["n"]
                        state = None
                        if args.status:
                                status, body = args.status, {"error": "Invalid API key"}
                        elif not key_ok:
                                # What OctoPrint says to a request with a wrong key.
                                status, body = 403, {"error": "You don't have the permission to access the "
                                                              "requested resource."}
                        elif self.path != "/api/job":
                                status, body = 404, {"error": "Not found"}
                        else:
                                state = states[min(seq, len(states) - 1)]
                                counter["n"] += 1
                                printing = state != "Operational"
                                status, body = 200, {
                                        "job": {"file": {"name": "benchy.gcode" if printing else None,
                                                         "origin": "local", "size": 123456},
                                                "estimatedPrintTime": 3600, "user": "pi"},
                                        "progress": {"completion": 42.0 if printing else None,
                                                     "printTime": 1500 if printing else None,
                                                     "printTimeLeft": 2100 if printing else None},
                                        "state": state,
                                }
                        if args.align:
                                time.sleep(max(0.0, math.floor(received) + 1.02 - time.monotonic()))
                        record = {"seq": seq, "path": self.path, "key_ok": key_ok, "status": status,
                                  "state": state, "client_uid": client_uid(self.client_address, self.server.server_address),
                                  "backups": backups_in(args.watch), "received": received,
                                  "answered": time.monotonic()}
                        log.write(json.dumps(record) + "\n")
                        log.flush()
                        data = json.dumps(body).encode()
                        self.send_response(status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(data)))
                        self.end_headers()
                        self.wfile.write(data)

        return Handler


def main():
        p = argparse.ArgumentParser()
        p.add_argument("--port-file", required=True)
        p.add_argument("--log", required=True)
        p.add_argument("--key", required=True)
        p.add_argument("--states", default="")
        p.add_argument("--status", type=int, default=0)
        p.add_argument("--watch", default="")
        p.add_argument("--align", action="store_true")
        args = p.parse_args()

        with open(args.log, "a") as log:
                server = http.server.HTTPServer(("127.0.0.1", 0), make_handler(args, log))
                tmp = args.port_file + ".tmp"
                with open(tmp, "w") as f:
                        f.write(str(server.server_address[1]))
                os.rename(tmp, args.port_file)
                server.serve_forever()


if __name__ == "__main__":
        sys.exit(main())
