"""A local stand-in for the IAM Credentials API `signBlob` method, on 127.0.0.1.

`POST /v1/projects/-/serviceAccounts/{email}:signBlob` with `{"payload": base64}` and a bearer
token answers `{"keyId", "signedBlob"}`, signing RSA-SHA256 (PKCS#1 v1.5) with the locally
generated key of that account, as IAM does. No bearer token → 401; an unknown account → 404;
`fail_next(n, status)` makes the next n calls fail (to exercise retries). Every call is recorded.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from tests.support.gcs_emulator import SigningKey

_PATH = re.compile(r"/v1/projects/-/serviceAccounts/(?P<account>[^/:]+):signBlob")


@dataclass(frozen=True)
class SignBlobCall:
    account: str
    authorization: str | None
    status: int
    payload: bytes | None


@dataclass
class IamStandIn:
    """The running stand-in: its base URL (what the signer's `base_url` takes) and its calls."""

    base_url: str
    keys: dict[str, SigningKey]
    calls: list[SignBlobCall] = field(default_factory=list)
    _failures: list[int] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` well-formed calls with `status`."""
        with self._lock:
            self._failures.extend([status] * count)

    def _next_failure(self) -> int | None:
        with self._lock:
            return self._failures.pop(0) if self._failures else None

    def _record(self, call: SignBlobCall) -> None:
        with self._lock:
            self.calls.append(call)


def _handler(standin_ref: list[IamStandIn]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_POST(self) -> None:
            standin = standin_ref[0]
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            match = _PATH.fullmatch(self.path.split("?", 1)[0])
            if match is None:
                self._answer(404, {"error": {"code": 404, "message": "no such method"}})
                return
            account = unquote(match["account"])
            authorization = self.headers.get("Authorization")

            def refuse(status: int, message: str, payload: bytes | None = None) -> None:
                standin._record(SignBlobCall(account, authorization, status, payload))
                self._answer(status, {"error": {"code": status, "message": message}})

            token = (authorization or "").removeprefix("Bearer ").strip()
            if not authorization or not authorization.startswith("Bearer ") or not token:
                refuse(401, "Request is missing required authentication credential.")
                return
            key = standin.keys.get(account)
            if key is None:
                refuse(404, f"Service account {account} not found.")
                return
            try:
                payload = base64.b64decode(json.loads(body)["payload"], validate=True)
            except (ValueError, KeyError, TypeError, binascii.Error):
                refuse(400, "Invalid payload.")
                return
            failure = standin._next_failure()
            if failure is not None:
                refuse(failure, "Injected failure.", payload)
                return
            signature = key.private_key.sign(payload, padding.PKCS1v15(), hashes.SHA256())
            standin._record(SignBlobCall(account, authorization, 200, payload))
            self._answer(200, {"keyId": key.key_id, "signedBlob": base64.b64encode(signature).decode()})

        def _answer(self, status: int, document: object) -> None:
            data = json.dumps(document).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


@contextlib.contextmanager
def iam_standin(*keys: SigningKey) -> Iterator[IamStandIn]:
    """Serve signBlob for the given accounts on a free 127.0.0.1 port until the block ends."""
    ref: list[IamStandIn] = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    server.daemon_threads = True
    ref.append(IamStandIn(f"http://127.0.0.1:{server.server_port}", {key.email: key for key in keys}))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="iam-standin", daemon=True
    )
    thread.start()
    try:
        yield ref[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
