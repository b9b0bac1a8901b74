"""A loopback HTTP proxy that records every request body on its way to a real server.

Tests put it in front of the embedded llama.cpp server to see exactly what the server
received (and how many requests), without touching the server or the client: the
proxy forwards method, path, headers and body, and returns the server's answer as is.
"""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "host", "accept-encoding"}


class RecordingProxy:
    def __init__(self, upstream: str) -> None:
        """`upstream`: the server's origin, e.g. http://127.0.0.1:8080 (no /v1)."""
        self.upstream = upstream.rstrip("/")
        self._lock = threading.Lock()
        self._bodies: list[dict[str, Any]] = []
        self._httpd: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        assert self._httpd is not None
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    @property
    def chat_requests(self) -> list[dict[str, Any]]:
        """The JSON bodies of every POST /v1/chat/completions, in arrival order."""
        with self._lock:
            return list(self._bodies)

    def start(self) -> RecordingProxy:
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the OpenAI SDK expects

            def log_message(self, format: str, *args: Any) -> None:
                return

            def do_GET(self) -> None:
                self._forward(None)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.path.rstrip("/").endswith("/chat/completions"):
                    with proxy._lock:
                        proxy._bodies.append(json.loads(body))
                self._forward(body)

            def _forward(self, body: bytes | None) -> None:
                headers = {k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP}
                request = urllib.request.Request(
                    proxy.upstream + self.path, data=body, headers=headers, method=self.command
                )
                try:
                    with urllib.request.urlopen(request, timeout=3600) as response:
                        status, data, content_type = response.status, response.read(), response.headers
                except urllib.error.HTTPError as error:
                    status, data, content_type = error.code, error.read(), error.headers
                self.send_response(status)
                self.send_header("Content-Type", content_type.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._httpd.daemon_threads = True
        threading.Thread(target=self._httpd.serve_forever, daemon=True, name="recording-proxy").start()
        return self

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
