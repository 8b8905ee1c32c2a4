"""A webhook receiver in the test process: POSTs land in a list; each path answers from its script."""

from __future__ import annotations

import base64
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# The secret the test servers sign with (GENMEDIA_WEBHOOK_SECRET), to verify what they send.
SECRET = "whsec_" + base64.b64encode(b"api-test-webhook-secret-32-bytes").decode()
# The servers' webhook timeout: a "hang" reply holds the connection longer than that.
TIMEOUT_SECONDS = 0.5


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    """POSTs land here; each path answers from its script (then 200): a status, "hang" or "redirect"."""

    port: int = 0
    scripts: dict[str, list[int | str]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    release: threading.Event = field(default_factory=threading.Event)

    def path(self, label: str, *replies: int | str) -> str:
        path = f"/{label}-{uuid.uuid4().hex[:8]}"
        self.scripts[path] = list(replies)
        return path

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def next_reply(self, path: str) -> int | str:
        with self.lock:
            script = self.scripts.get(path) or []
            return script.pop(0) if script else 200


def handler_for(receiver: Receiver) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            with receiver.lock:
                headers = {name.lower(): value for name, value in self.headers.items()}
                receiver.received.append(Received(self.path, headers, body, time.monotonic()))
            reply = receiver.next_reply(self.path)
            try:
                if reply == "hang":
                    receiver.release.wait(5 * TIMEOUT_SECONDS)
                    reply = 200
                if reply == "redirect":
                    self.send_response(302)
                    self.send_header("location", receiver.url(self.path + "-moved"))
                else:
                    self.send_response(int(reply))
                self.send_header("content-length", "0")
                self.end_headers()
            except OSError:  # the studio gave up waiting and closed the connection
                pass

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


@contextmanager
def receiving() -> Iterator[Receiver]:
    """A receiver on a free port of 127.0.0.1 for the length of a block."""
    receiver = Receiver()
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler_for(receiver))
    server.daemon_threads = True
    receiver.port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver.release.set()
        server.shutdown()
        server.server_close()
