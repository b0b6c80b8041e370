#!/usr/bin/env python3
"""A tiny HTTP server over a dir store that adds a fixed delay to every request.

    flist_delay_proxy.py --root STORE [--delay 0.02] [--port 0]

Serves GET/HEAD /<ab>/<hex id> from STORE/<ab>/<hex id> (the http:// store layout), one
thread per connection, sleeping DELAY seconds before answering each request. Prints the
port on the first line of stdout, then serves until killed. Used by benches/flist_mount.sh
to stand for a remote store 20 ms away.
"""
import argparse
import os
import re
import socket
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PATH = re.compile(r"^/([0-9a-f]{2})/([0-9a-f]{64})$")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--root", required=True)
    ap.add_argument("--delay", type=float, default=0.02)
    ap.add_argument("--port", type=int, default=0)
    a = ap.parse_args()

    class H(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):
            pass

        def setup(self):
            super().setup()
            # Headers and body go out in separate writes: without this, delayed ACKs add
            # ~40 ms to every request on a kept-alive connection.
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def answer(self, body):
            time.sleep(a.delay)
            m = PATH.match(self.path)
            data = None
            if m and m.group(2).startswith(m.group(1)):
                try:
                    with open(os.path.join(a.root, m.group(1), m.group(2)), "rb") as f:
                        data = f.read()
                except OSError:
                    data = None
            if data is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

        def do_GET(self):
            self.answer(True)

        def do_HEAD(self):
            self.answer(False)

    ThreadingHTTPServer.daemon_threads = True
    ThreadingHTTPServer.request_queue_size = 256
    srv = ThreadingHTTPServer(("127.0.0.1", a.port), H)
    print(srv.server_address[1], flush=True)
    try:
        srv.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
