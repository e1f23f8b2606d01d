"""A real HTTP server on loopback serving a directory, for the tests that need one (HTTP sources, the docs site)."""

from __future__ import annotations

import functools
import http.server
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        "Keep request lines out of the test output."


@contextmanager
def serve_directory(root: str | Path) -> Iterator[str]:
    "Serve `root` on 127.0.0.1 (port 0: the kernel picks a free one, no race) in a thread; yields the base URL."
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_QuietHandler, directory=str(root)))
    thread = threading.Thread(target=server.serve_forever, name="test-http-server", daemon=True)
    thread.start()
    try:
        host, port = server.server_address[:2]
        yield f"http://{host}:{port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
