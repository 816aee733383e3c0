#!/usr/bin/env python3
# Copyright: l3ha.routers contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A metadata-proxy-style master-only service: answers HTTP on 169.254.169.254:80 inside
a router namespace, as the seed article's notify script does with neutron-ns-metadata-proxy.

It runs only on the router's master (notify.sh starts it on MASTER and stops it on any
other state), so the address answers from wherever the router is master. The address
is local to the namespace through a route in the local table (on every replica that
ever ran it: harmless, backups get no traffic). Standard library only.

    l3ha_master_services:
      - name: metadata
        command: [python3, /usr/local/lib/l3ha-examples/metadata_responder.py]
"""

import json
import os
import socket
import subprocess
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

ADDRESS = "169.254.169.254"
PORT = 80


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's name)
        body = json.dumps({"router": os.environ.get("L3HA_ROUTER"), "node": socket.gethostname(),
                           "client": self.client_address[0], "path": self.path}).encode() + b"\n"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):  # quiet: notify.sh's log is not an access log
        pass


def main():
    subprocess.run(["ip", "route", "replace", "local", ADDRESS, "dev", "lo", "table", "local"], check=True)
    server = HTTPServer((ADDRESS, PORT), Handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
