#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Fixtures for test-plugins-reinstall: minimal OctoPrint plugin wheels, and a plugin repository server.

  plugin-fixture.py wheel OUTDIR DIST VERSION KEY [REQUIREMENT...]
      Writes OUTDIR/<DIST>-<VERSION>-py3-none-any.whl: a package octoprint_<KEY> and an entry point
      "<KEY> = octoprint_<KEY>" in [octoprint.plugin]; without REQUIREMENTs (Requires-Dist) no
      dependencies, so pip installs it offline. Prints the file name.

  plugin-fixture.py serve ROOT [LOG]
      Serves ROOT over HTTP on 127.0.0.1 (a free port, printed on the first line of stdout) until stdin
      is closed, so the server never outlives the test that started it. With LOG, each request is
      appended to it as a JSON line {"path", "client_uid"}: client_uid is the uid of the process that
      connected (from /proc/net/tcp), so a test can tell who downloaded. Besides plain files:
        /redirect/PATH   302 to /PATH
        /redirect-file   302 to file:///etc/hostname (a client must refuse to follow)
        /redirect-to?PATH  302 to /PATH (a URL that names no file, like a "latest release" link)
        /chunked/PATH    PATH's content without Content-Length (the body ends when the connection does)
"""

import base64
import hashlib
import http.server
import json
import os
import sys
import threading
import zipfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "integration"))
from tcpclient import client_uid  # noqa: E402


def make_wheel(outdir, dist, version, key, *requires):
    pkg = "octoprint_" + key
    info = f"{dist}-{version}.dist-info"
    files = {
        f"{pkg}/__init__.py": f'__plugin_name__ = "{key}"\n__plugin_pythoncompat__ = ">=3,<4"\n',
        f"{info}/METADATA": (
            f"Metadata-Version: 2.1\nName: {dist.replace('_', '-')}\nVersion: {version}\n"
            f"Home-page: https://example.org/{key}\n"
            + "".join(f"Requires-Dist: {r}\n" for r in requires)
        ),
        f"{info}/WHEEL": "Wheel-Version: 1.0\nGenerator: opbackup-test\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        f"{info}/entry_points.txt": f"[octoprint.plugin]\n{key} = {pkg}\n",
    }
    record = []
    for name, text in files.items():
        data = text.encode()
        digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        record.append(f"{name},sha256={digest},{len(data)}")
    record.append(f"{info}/RECORD,,")
    files[f"{info}/RECORD"] = "\n".join(record) + "\n"

    name = f"{dist}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(os.path.join(outdir, name), "w", zipfile.ZIP_DEFLATED) as z:
        for path, text in files.items():
            z.writestr(path, text)
    print(name)


class Handler(http.server.SimpleHTTPRequestHandler):
    request_log = None

    def log_message(self, format, *args):
        pass

    def do_GET(self):
        if self.request_log:
            record = {"path": self.path, "client_uid": client_uid(self.client_address, self.server.server_address)}
            with open(self.request_log, "a") as f:
                f.write(json.dumps(record) + "\n")
        if self.path.startswith("/redirect/"):
            self.send_response(302)
            self.send_header("Location", self.path[len("/redirect"):])
            self.end_headers()
        elif self.path.startswith("/redirect-to?"):
            self.send_response(302)
            self.send_header("Location", "/" + self.path[len("/redirect-to?"):])
            self.end_headers()
        elif self.path == "/redirect-file":
            self.send_response(302)
            self.send_header("Location", "file:///etc/hostname")
            self.end_headers()
        elif self.path.startswith("/chunked/"):
            path = self.translate_path(self.path[len("/chunked"):])
            with open(path, "rb") as f:
                data = f.read()
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            # HTTP/1.0 without Content-Length: the client learns the size only by reading.
            for i in range(0, len(data), 65536):
                self.wfile.write(data[i:i + 65536])
        else:
            super().do_GET()


class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address):
        # Clients that stop reading (a download over the size limit) are part of the tests.
        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            super().handle_error(request, client_address)


def serve(root, log=None):
    Handler.request_log = log
    handler = lambda *args, **kwargs: Handler(*args, directory=root, **kwargs)
    server = Server(("127.0.0.1", 0), handler)
    print(server.server_address[1], flush=True)

    def watch_stdin():
        sys.stdin.buffer.read()
        server.shutdown()

    threading.Thread(target=watch_stdin, daemon=True).start()
    server.serve_forever()


def main():
    if len(sys.argv) >= 6 and sys.argv[1] == "wheel":
        make_wheel(*sys.argv[2:])
    elif len(sys.argv) in (3, 4) and sys.argv[1] == "serve":
        serve(*sys.argv[2:])
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
