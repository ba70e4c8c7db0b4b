"""Local stand-ins for the Tinker service's address, for tests of the tinker
engine's first contact: a port nothing listens on, and a tiny HTTP server on
127.0.0.1 that answers every request with one status (401 for a bogus key,
200 for a service that lets the SDK go on)."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager


def closed_port_url() -> str:
    """http://127.0.0.1:PORT where PORT was free a moment ago (nothing listens)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@contextmanager
def answering(status: int, body: dict | str | None = None) -> Iterator[tuple[str, list[tuple[str, str, str | None]]]]:
    """(base URL, requests seen as (method, path, X-API-Key)) of a server that
    answers every request with `status` and `body` (a dict as JSON, a str as text)."""
    seen: list[tuple[str, str, str | None]] = []
    text = isinstance(body, str)
    payload = (body if text else json.dumps(body if body is not None else {})).encode()

    class Handler(http.server.BaseHTTPRequestHandler):
        def _answer(self) -> None:
            self.rfile.read(int(self.headers.get("content-length") or 0))
            seen.append((self.command, self.path, self.headers.get("X-API-Key")))
            self.send_response(status)
            self.send_header("content-type", "text/plain" if text else "application/json")
            self.send_header("content-length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = do_PUT = _answer

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
