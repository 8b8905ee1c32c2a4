"""A local stand-in for Google's securetoken signing-certificate endpoint, on 127.0.0.1.

`GET <url>` answers what https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com
answers: a JSON object of key id → PEM X.509 certificate (self-signed here, made with
`cryptography` from locally generated RSA keys), with `Cache-Control: public, max-age=N,
must-revalidate, no-transform`. Tests can rotate keys, change max-age, add an `Age` header, make
the server slow, or make it fail (an HTTP error status, or a 200 whose body is not the document).
Every request is counted; `sign` mints RS256 tokens with any key it knows.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from jwt.algorithms import RSAAlgorithm

CERTS_PATH = "/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
JWKS_PATH = "/oauth2/v3/certs"  # the same keys as a JSON Web Key Set, as Google's OIDC certs URL serves them

Mode = Literal["ok", "error", "garbage"]


@dataclass(frozen=True)
class CertKey:
    """An RSA key pair with a self-signed certificate, published under `kid`."""

    kid: str
    private_key: rsa.RSAPrivateKey
    certificate_pem: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def public_pem(self) -> bytes:
        return self.public_key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


def make_key(kid: str, *, key_size: int = 2048) -> CertKey:
    """A fresh RSA key and a self-signed certificate for it, valid from yesterday for two weeks."""
    private = rsa.generate_private_key(public_exponent=65537, key_size=key_size)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "securetoken.system.gserviceaccount.com")])
    now = dt.datetime.now(dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(private.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=14))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(private, hashes.SHA256())
    )
    pem = certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")
    return CertKey(kid, private, pem)


@dataclass
class CertsServer:
    """The running server. Change its attributes from the test; they apply to the next request."""

    base_url: str
    keys: dict[str, CertKey] = field(default_factory=dict)  # what is published, in order
    max_age: int | None = 19_000  # None: no Cache-Control header at all
    age: int | None = None  # an `Age` header, as a cache in front would add
    delay: float = 0.0  # seconds to wait before answering (a slow server)
    mode: Mode = "ok"
    status: int = 500  # the status answered in "error" mode
    garbage: bytes = b"<html>Service Unavailable</html>"  # the 200 body answered in "garbage" mode
    known: dict[str, CertKey] = field(default_factory=dict)  # every key ever published, for signing
    _requests: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _stopping: threading.Event = field(default_factory=threading.Event)

    @property
    def url(self) -> str:
        """The certificates URL (what FirebaseIdentity's `certs_url` takes)."""
        return self.base_url + CERTS_PATH

    @property
    def jwks_url(self) -> str:
        """The keys as a JWKS (what https://www.googleapis.com/oauth2/v3/certs answers)."""
        return self.base_url + JWKS_PATH

    @property
    def requests(self) -> int:
        """How many GETs of the certificates URL arrived (answered or not)."""
        with self._lock:
            return self._requests

    def publish(self, *keys: CertKey) -> None:
        """Serve exactly these keys from now on."""
        with self._lock:
            self.keys = {key.kid: key for key in keys}
            self.known.update(self.keys)

    def rotate(self, new: CertKey, *, retire: str | None = None) -> None:
        """Add `new` (as Google does, a while before signing with it) and optionally drop `retire`."""
        with self._lock:
            keys = {kid: key for kid, key in self.keys.items() if kid != retire}
            keys[new.kid] = new
            self.keys = keys
            self.known[new.kid] = new

    def reset(self, *keys: CertKey, max_age: int | None = 19_000) -> None:
        """Back to a healthy server publishing `keys`, with the request counter at zero."""
        with self._lock:
            self.keys = {key.kid: key for key in keys}
            self.known = dict(self.keys)
            self._requests = 0
        self.max_age, self.age, self.delay = max_age, None, 0.0
        self.mode, self.status, self.garbage = "ok", 500, b"<html>Service Unavailable</html>"

    def fail(self, mode: Mode = "error", *, status: int = 500) -> None:
        self.mode, self.status = mode, status

    def recover(self) -> None:
        self.mode, self.delay = "ok", 0.0

    def sign(
        self,
        claims: dict[str, Any],
        *,
        kid: str | None = None,
        key: CertKey | None = None,
        headers: dict[str, Any] | None = None,
    ) -> str:
        """An RS256 token over `claims`, signed by `key` (default: the first published key) with
        header kid `kid` (default: the signing key's); `headers` adds to or overrides the header."""
        signer = key or next(iter(self.keys.values()))
        header: dict[str, Any] = {"kid": kid if kid is not None else signer.kid, "typ": "JWT"}
        header.update(headers or {})
        return jwt.encode(claims, signer.private_key, algorithm="RS256", headers=header)

    def document(self) -> dict[str, str]:
        with self._lock:
            return {kid: key.certificate_pem for kid, key in self.keys.items()}

    def key_set(self) -> dict[str, Any]:
        with self._lock:
            keys = list(self.keys.values())
        entries = []
        for key in keys:
            jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key))
            entries.append({**jwk, "kid": key.kid, "alg": "RS256", "use": "sig"})
        return {"keys": entries}

    def _count(self) -> None:
        with self._lock:
            self._requests += 1


def _handler(ref: list[CertsServer]) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:  # quiet
            pass

        def do_GET(self) -> None:
            server = ref[0]
            path = self.path.split("?", 1)[0]
            if path not in (CERTS_PATH, JWKS_PATH):
                self._answer(404, b'{"error": "not found"}', {})
                return
            server._count()
            if server.delay > 0 and server._stopping.wait(server.delay):
                return  # shutting down: drop the request
            if server.mode == "error":
                self._answer(server.status, b'{"error": "injected failure"}', {})
                return
            headers: dict[str, str] = {}
            if server.max_age is not None:
                headers["Cache-Control"] = f"public, max-age={server.max_age}, must-revalidate, no-transform"
            if server.age is not None:
                headers["Age"] = str(server.age)
            if server.mode == "garbage":
                self._answer(200, server.garbage, headers)
                return
            document = server.key_set() if path == JWKS_PATH else server.document()
            self._answer(200, json.dumps(document, indent=2).encode(), headers)

        def _answer(self, status: int, body: bytes, headers: dict[str, str]) -> None:
            self.send_response(status)
            self.send_header("Content-Type", "application/json; charset=UTF-8")
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            with contextlib.suppress(OSError):  # the client may have given up (timeouts)
                self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def certs_server(*keys: CertKey, max_age: int | None = 19_000) -> Iterator[CertsServer]:
    """Publish `keys` on a free 127.0.0.1 port until the block ends."""
    ref: list[CertsServer] = []
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(ref))
    httpd.daemon_threads = True
    server = CertsServer(f"http://127.0.0.1:{httpd.server_port}", max_age=max_age)
    server.publish(*keys)
    ref.append(server)
    thread = threading.Thread(
        target=httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="certs-server", daemon=True
    )
    thread.start()
    try:
        yield server
    finally:
        server._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
