"""A Cloud Storage emulator for tests, and the V4 signed-URL check the emulator does not make.

`gcs_emulator()` serves `gcp-storage-emulator` (in memory) from a thread of this process on a free
127.0.0.1 port, creates a bucket, points STORAGE_EMULATOR_HOST at it while in use, and stops it
cleanly. Without the package (or google-cloud-storage) the test is skipped, or fails in CI.

The emulator ignores signatures, so `verify_v4_signed_url` recomputes the V4 canonical request and
string-to-sign from a URL, independently of google-cloud-storage, and checks the RSA-SHA256
signature with a public key, the way GCS would.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import HTTPServer
from typing import Any
from urllib.parse import quote, unquote, urlsplit

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
EMULATOR_ENV = "STORAGE_EMULATOR_HOST"
DEFAULT_BUCKET = "genmedia-test"


def require_gcs_packages(*, emulator: bool = True) -> None:
    """Skip the calling test if google-cloud-storage (or, with `emulator`, gcp-storage-emulator)
    is missing; in CI, fail instead."""
    wanted = [("google.cloud.storage", "google-cloud-storage")]
    if emulator:
        wanted.append(("gcp_storage_emulator.server", "gcp-storage-emulator"))
    missing = []
    for module, package in wanted:
        try:
            __import__(module)
        except ImportError:
            missing.append(package)
    if missing:
        message = f"not installed: {', '.join(missing)} (pip install -e '.[dev]' -c constraints.txt)"
        if IN_CI:
            pytest.fail(message)
        pytest.skip(message)


@dataclass
class GcsEmulator:
    """A running emulator: its base URL and the bucket made for the test."""

    base_url: str
    bucket: str
    _server: HTTPServer
    _thread: threading.Thread

    def object_url(self, bucket: str, key: str, query: str = "") -> str:
        """The emulator's public-style download URL of an object (what a signed URL maps to)."""
        url = f"{self.base_url}/{bucket}/{quote(key, safe='/~')}"
        return f"{url}?{query}" if query else url

    def translate(self, signed_url: str) -> str:
        """Send a signed URL for any GCS endpoint to the emulator: same bucket/key path and query."""
        parts = urlsplit(signed_url)
        url = f"{self.base_url}{parts.path}"
        return f"{url}?{parts.query}" if parts.query else url

    def object_resource(self, key: str) -> dict[str, Any]:
        """The emulator's JSON resource for an object (metadata, ACL, content type)."""
        import urllib.request

        url = f"{self.base_url}/storage/v1/b/{self.bucket}/o/{quote(key, safe='')}"
        with urllib.request.urlopen(url, timeout=5) as response:
            resource: dict[str, Any] = json.load(response)
        return resource

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextlib.contextmanager
def gcs_emulator(bucket: str = DEFAULT_BUCKET) -> Iterator[GcsEmulator]:
    """Run an in-memory emulator with `bucket` created; STORAGE_EMULATOR_HOST points at it meanwhile."""
    require_gcs_packages()
    from gcp_storage_emulator.handlers.buckets import create_bucket
    from gcp_storage_emulator.server import RequestHandler
    from gcp_storage_emulator.storage import Storage

    storage = Storage(use_memory_fs=True)
    create_bucket(bucket, storage)
    # The emulator's own Server binds inside its thread and waits forever if that fails; binding
    # here on port 0 cannot collide. One request at a time, as upstream: its storage has no locks.
    server = HTTPServer(("127.0.0.1", 0), functools.partial(RequestHandler, storage))
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name="gcs-emulator", daemon=True
    )
    thread.start()
    emulator = GcsEmulator(f"http://127.0.0.1:{server.server_port}", bucket, server, thread)
    previous = os.environ.get(EMULATOR_ENV)
    os.environ[EMULATOR_ENV] = emulator.base_url
    try:
        yield emulator
    finally:
        if previous is None:
            os.environ.pop(EMULATOR_ENV, None)
        else:
            os.environ[EMULATOR_ENV] = previous
        emulator.stop()


# ---------------------------------------------------------------- test keys


@dataclass(frozen=True)
class SigningKey:
    """A locally generated RSA key standing in for a service account's."""

    email: str
    private_key: rsa.RSAPrivateKey
    key_id: str

    @property
    def public_key(self) -> rsa.RSAPublicKey:
        return self.private_key.public_key()

    def private_pem(self) -> str:
        return self.private_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode("ascii")

    def key_file_info(self) -> dict[str, str]:
        """The JSON of a service-account key file for this key (no real account behind it)."""
        return {
            "type": "service_account",
            "project_id": "genmedia-test",
            "private_key_id": self.key_id,
            "private_key": self.private_pem(),
            "client_email": self.email,
            "client_id": "1",
            "token_uri": "http://127.0.0.1:9/token",  # never called: signing is local
        }

    def signing_credentials(self) -> Any:
        """google-auth service-account credentials signing with this key, offline."""
        from google.oauth2 import service_account

        return service_account.Credentials.from_service_account_info(self.key_file_info())


@functools.cache
def signing_key(email: str = "signer@genmedia-test.iam.gserviceaccount.com") -> SigningKey:
    """One RSA key per email per session (generating one takes tens of milliseconds)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(email, private_key, hashlib.sha1(email.encode()).hexdigest())


# ---------------------------------------------------------------- V4 signed URL verification


class SignedUrlRejected(AssertionError):
    """What GCS would answer 403 to: a bad signature or a malformed or expired V4 URL."""


@dataclass(frozen=True)
class V4Url:
    """What a verified V4 signed URL says."""

    method: str
    bucket: str
    key: str
    signer_email: str
    issued_at: datetime
    expires_in: int
    signed_headers: tuple[str, ...]
    params: Mapping[str, str]

    @property
    def expires_at(self) -> datetime:
        return self.issued_at + timedelta(seconds=self.expires_in)


def verify_v4_signed_url(
    url: str,
    public_key: rsa.RSAPublicKey,
    *,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> V4Url:
    """Check a path-style V4 signed URL as GCS would; raise SignedUrlRejected if it would refuse it.

    `headers` are the request headers the client sends besides Host; every signed header must be
    among them, with the signed value.
    """
    parts = urlsplit(url)
    params: dict[str, str] = {}
    for pair in parts.query.split("&") if parts.query else []:
        name, sep, value = pair.partition("=")
        if not sep:
            raise SignedUrlRejected(f"malformed query parameter {pair!r}")
        name, value = unquote(name), unquote(value)
        if name in params:
            raise SignedUrlRejected(f"repeated query parameter {name!r}")
        params[name] = value
    for required in ("X-Goog-Algorithm", "X-Goog-Credential", "X-Goog-Date", "X-Goog-Expires"):
        if required not in params:
            raise SignedUrlRejected(f"missing {required}")
    for required in ("X-Goog-SignedHeaders", "X-Goog-Signature"):
        if required not in params:
            raise SignedUrlRejected(f"missing {required}")
    signature_hex = params.pop("X-Goog-Signature")
    if params["X-Goog-Algorithm"] != "GOOG4-RSA-SHA256":
        raise SignedUrlRejected(f"unexpected algorithm {params['X-Goog-Algorithm']!r}")

    timestamp = params["X-Goog-Date"]
    try:
        issued_at = datetime.strptime(timestamp, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
        expires_in = int(params["X-Goog-Expires"])
        signature = bytes.fromhex(signature_hex)
    except ValueError as exc:
        raise SignedUrlRejected(f"malformed signed URL: {exc}") from None
    if not 1 <= expires_in <= 7 * 24 * 3600:
        raise SignedUrlRejected("X-Goog-Expires must be between 1 second and 7 days")
    email, _, scope = params["X-Goog-Credential"].partition("/")
    if scope != f"{timestamp[:8]}/auto/storage/goog4_request":
        raise SignedUrlRejected(f"unexpected credential scope {scope!r}")

    signed_headers = params["X-Goog-SignedHeaders"].split(";")
    if signed_headers != sorted(signed_headers) or "host" not in signed_headers:
        raise SignedUrlRejected("signed headers must be sorted, lower-case and include host")
    sent = {"host": parts.netloc, **{name.lower(): value for name, value in (headers or {}).items()}}
    for name in signed_headers:
        if name not in sent:
            raise SignedUrlRejected(f"signed header {name!r} is not sent")
    for name in sent:
        if name.startswith("x-goog-") and name not in signed_headers:
            raise SignedUrlRejected(f"sent header {name!r} is not signed")

    canonical_query = "&".join(
        f"{quote(name, safe='-_.~')}={quote(value, safe='-_.~')}" for name, value in sorted(params.items())
    )
    canonical_headers = "".join(f"{name}:{' '.join(sent[name].split())}\n" for name in signed_headers)
    payload_hash = sent.get("x-goog-content-sha256", "UNSIGNED-PAYLOAD")
    canonical_request = "\n".join(
        [method, parts.path, canonical_query, canonical_headers, ";".join(signed_headers), payload_hash]
    )
    string_to_sign = "\n".join(
        [
            "GOOG4-RSA-SHA256",
            timestamp,
            scope,
            hashlib.sha256(canonical_request.encode("utf-8")).hexdigest(),
        ]
    )
    try:
        public_key.verify(signature, string_to_sign.encode("utf-8"), padding.PKCS1v15(), hashes.SHA256())
    except InvalidSignature:
        raise SignedUrlRejected("the signature does not match") from None

    now = now or datetime.now(UTC)
    if now < issued_at - timedelta(minutes=15):
        raise SignedUrlRejected("the URL is dated in the future")
    if now >= issued_at + timedelta(seconds=expires_in):
        raise SignedUrlRejected("the URL has expired")

    bucket, _, quoted_key = parts.path.lstrip("/").partition("/")
    return V4Url(
        method=method,
        bucket=bucket,
        key=unquote(quoted_key),
        signer_email=email,
        issued_at=issued_at,
        expires_in=expires_in,
        signed_headers=tuple(signed_headers),
        params=params,
    )
