"""A forwarding HTTP proxy for tests (plain http targets only), with optional Basic auth.

    http_proxy.py DIR [USER:PASSWORD]

Writes DIR/port once listening on 127.0.0.1 and appends one line per request to DIR/requests.log:
the method and URL it forwarded, or `407 URL` when the credentials were missing or wrong.
"""

from __future__ import annotations

import base64
import http.client
import os
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

DIR = Path(sys.argv[1])
EXPECTED = "Basic " + base64.b64encode(sys.argv[2].encode()).decode() if len(sys.argv) > 2 else None


class Proxy(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if EXPECTED and self.headers.get("Proxy-Authorization") != EXPECTED:
            self.record(f"407 {self.path}")
            self.send_response(407)
            self.send_header("Proxy-Authenticate", 'Basic realm="test"')
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        url = urlsplit(self.path)
        upstream = http.client.HTTPConnection(url.hostname, url.port or 80, timeout=30)
        headers = {
            k: v for k, v in self.headers.items() if k.lower() not in ("proxy-authorization", "connection")
        }
        upstream.request(self.command, url.path + (f"?{url.query}" if url.query else ""), body, headers)
        answer = upstream.getresponse()
        data = answer.read()
        self.record(f"{self.command} {self.path}")
        self.send_response(answer.status)
        for k, v in answer.getheaders():
            if k.lower() not in ("content-length", "connection", "transfer-encoding"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_POST

    def record(self, line: str) -> None:
        with open(DIR / "requests.log", "a") as f:
            f.write(line + "\n")


server = ThreadingHTTPServer(("127.0.0.1", 0), Proxy)
server.daemon_threads = True
(DIR / "port.tmp").write_text(str(server.server_address[1]))
os.replace(DIR / "port.tmp", DIR / "port")
server.serve_forever()
