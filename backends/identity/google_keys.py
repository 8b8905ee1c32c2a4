"""Google's published token-signing keys, fetched and cached: shared by every verifier of Google-signed
RS256 tokens (Firebase ID tokens, the OIDC tokens Cloud Tasks sends).

Google publishes its public keys at a certs URL, either as a JSON object of key id → PEM X.509
certificate (Firebase's securetoken URL, `oauth2/v1/certs`) or as a JSON Web Key Set
(`oauth2/v3/certs`); both are read. The keys are fetched with httpx (async, so the event loop never
waits on the network), cached for the response's `Cache-Control: max-age` (less its `Age`), and
refetched when they expire or when a token names a key id the cache lacks — but never more than
once per `min_refetch_seconds`, so a flood of tokens with made-up key ids cannot become a flood of
fetches. Concurrent verifications that need the keys share one fetch.

A key id not published is StudioError(UNAUTHENTICATED); failing to obtain the keys is
StudioError(UPSTREAM_UNAVAILABLE, retryable): the token may well be fine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import ssl
import time
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from domain.errors import ErrorCode, StudioError

log = logging.getLogger("genmedia.identity")

MIN_RSA_KEY_BITS = 2048
# Google publishes a few certificates in about 2 KiB; anything much larger is not that document.
MAX_CERTS_BYTES = 256 * 1024
MAX_CERTS = 32
# A cache lifetime the certificates' server cannot stretch beyond (Google sends about 6 hours).
MAX_CACHE_SECONDS = 24 * 3600

_MAX_AGE = re.compile(r'max-age\s*=\s*"?(\d+)"?', re.IGNORECASE)

# Monotonic clock for the certificate cache (tests replace it to move time forward).
_monotonic = time.monotonic


class _FetchFailed(Exception):
    """The certificates could not be obtained; the message is for logs only."""


def _unauthenticated(message: str) -> StudioError:
    return StudioError(ErrorCode.UNAUTHENTICATED, message)


class SigningKeys:
    """The RSA public keys published at `url`, by key id; `label` names them in logs and errors.

    `http` is an optional httpx.AsyncClient used for the fetches (its owner closes it); without
    one, each fetch opens and closes its own client.
    """

    def __init__(
        self,
        url: str,
        *,
        label: str,
        http: httpx.AsyncClient | None = None,
        min_refetch_seconds: float = 5.0,
        fetch_timeout_seconds: float = 10.0,
    ) -> None:
        if not url.startswith(("https://", "http://")):
            raise ValueError("certs_url must be an http(s) URL")
        if min_refetch_seconds < 0 or fetch_timeout_seconds <= 0:
            raise ValueError("min_refetch_seconds must be >= 0 and fetch_timeout_seconds > 0")
        self.url = url
        self.label = label
        self._http = http
        self._min_refetch = float(min_refetch_seconds)
        self._timeout = float(fetch_timeout_seconds)
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._fresh_until = -math.inf  # monotonic time until which `_keys` may be used
        self._last_attempt = -math.inf  # monotonic time the latest fetch started
        self._pending: asyncio.Task[None] | None = None
        self._tls: ssl.SSLContext | None = None  # built off the event loop on first https fetch

    async def key(self, kid: str) -> rsa.RSAPublicKey:
        """The public key for `kid`, fetching the certificates when needed and allowed."""
        now = _monotonic()
        if now < self._fresh_until:
            key = self._keys.get(kid)
            if key is not None:
                return key
            # An unknown key id while the cache is fresh: Google may have rotated a key in, so look
            # again — unless we looked moments ago (then the kid is simply not Google's).
            if self._pending is None and now - self._last_attempt < self._min_refetch:
                raise _unauthenticated("token signed by an unknown key")
        elif self._pending is None and now - self._last_attempt < self._min_refetch:
            # Expired or never obtained, and the latest attempt just failed: fail fast, don't hammer.
            raise self._unavailable()
        await self._refresh()
        key = self._keys.get(kid)
        if key is None:
            raise _unauthenticated("token signed by an unknown key")
        return key

    async def _refresh(self) -> None:
        """Fetch the certificates, or join the fetch already under way."""
        loop = asyncio.get_running_loop()
        task = self._pending
        if task is None or task.done() or task.get_loop() is not loop:
            task = loop.create_task(self._fetch(), name=f"{self.label}-certs-fetch")
            self._pending = task
            task.add_done_callback(self._fetch_done)
        try:
            # Shielded: a caller that gives up (client gone) does not cancel the others' fetch.
            await asyncio.shield(task)
        except _FetchFailed:
            raise self._unavailable() from None

    def _fetch_done(self, task: asyncio.Task[None]) -> None:
        if self._pending is task:
            self._pending = None
        if not task.cancelled():
            task.exception()  # retrieved here, so an unawaited failure is not reported as lost

    def _unavailable(self) -> StudioError:
        return StudioError(
            ErrorCode.UPSTREAM_UNAVAILABLE,
            f"The {self.label} signing keys are unavailable; try again shortly.",
            retryable=True,
            retry_after=max(self._min_refetch, 1.0),
        )

    async def _fetch(self) -> None:
        started = self._last_attempt = _monotonic()
        try:
            async with asyncio.timeout(self._timeout):
                status, headers, body = await self._download()
            if status != 200:
                raise _FetchFailed(f"HTTP {status}")
            keys = _parse_certificates(body)
        except _FetchFailed as exc:
            log.warning("fetching %s signing certificates from %s failed: %s", self.label, self.url, exc)
            raise
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError) as exc:
            log.warning(
                "fetching %s signing certificates from %s failed: %s",
                self.label,
                self.url,
                type(exc).__name__,
            )
            raise _FetchFailed(type(exc).__name__) from None
        except Exception as exc:  # the token may be fine: never let a fetch bug read as a bad token
            log.exception("fetching %s signing certificates from %s failed", self.label, self.url)
            raise _FetchFailed(type(exc).__name__) from None
        self._keys = keys
        self._fresh_until = started + max(_freshness(headers), self._min_refetch)

    async def _download(self) -> tuple[int, httpx.Headers, bytes]:
        if self._http is not None:
            return await _get(self._http, self.url)
        if self._tls is None:
            # Loading the CA bundle takes milliseconds of blocking file I/O: do it once, off the loop.
            self._tls = await asyncio.to_thread(httpx.create_ssl_context)
        async with httpx.AsyncClient(verify=self._tls, follow_redirects=False) as client:
            return await _get(client, self.url)


async def _get(client: httpx.AsyncClient, url: str) -> tuple[int, httpx.Headers, bytes]:
    """GET `url`, reading at most MAX_CERTS_BYTES of body."""
    async with client.stream("GET", url, headers={"Accept": "application/json"}) as response:
        if response.status_code != 200:
            return response.status_code, response.headers, b""
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_CERTS_BYTES:
                raise _FetchFailed("response too large")
        return response.status_code, response.headers, bytes(body)


def _parse_certificates(body: bytes) -> dict[str, rsa.RSAPublicKey]:
    """kid → RSA public key from Google's `{kid: PEM certificate}` document or a JSON Web Key Set;
    all entries must be good."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _FetchFailed("response is not JSON") from None
    if isinstance(document, dict) and isinstance(document.get("keys"), list):
        return _parse_jwks(document["keys"])
    if not isinstance(document, dict) or not document:
        raise _FetchFailed("response is not a non-empty JSON object")
    if len(document) > MAX_CERTS:
        raise _FetchFailed("response holds too many certificates")
    keys: dict[str, rsa.RSAPublicKey] = {}
    for kid, pem in document.items():
        if not kid or not isinstance(pem, str):
            raise _FetchFailed("response entry is not kid → PEM")
        try:
            public = x509.load_pem_x509_certificate(pem.encode("utf-8")).public_key()
        except (ValueError, UnicodeEncodeError):
            raise _FetchFailed(f"certificate {kid!r} is not a PEM X.509 certificate") from None
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size < MIN_RSA_KEY_BITS:
            raise _FetchFailed(f"certificate {kid!r} does not hold an RSA key of at least 2048 bits")
        keys[kid] = public
    return keys


def _freshness(headers: httpx.Headers) -> float:
    """Seconds the response stays fresh: Cache-Control max-age less Age (0 for no-cache / no-store)."""
    directives = [part.strip().lower() for part in ",".join(headers.get_list("cache-control")).split(",")]
    if any(d in ("no-cache", "no-store") for d in directives):
        return 0.0
    ages = [int(m.group(1)) for d in directives if (m := _MAX_AGE.fullmatch(d))]
    if not ages:
        return 0.0
    try:
        age = max(0, int(headers.get("age", "0").strip()))
    except ValueError:
        age = 0
    return float(min(max(min(ages) - age, 0), MAX_CACHE_SECONDS))


def _parse_jwks(entries: list[Any]) -> dict[str, rsa.RSAPublicKey]:
    """kid → RSA public key from a JWKS `keys` list (what https://www.googleapis.com/oauth2/v3/certs serves)."""
    if not entries:
        raise _FetchFailed("the key set is empty")
    if len(entries) > MAX_CERTS:
        raise _FetchFailed("response holds too many keys")
    keys: dict[str, rsa.RSAPublicKey] = {}
    for entry in entries:
        kid = entry.get("kid") if isinstance(entry, dict) else None
        if not isinstance(kid, str) or not kid or entry.get("kty") != "RSA":
            raise _FetchFailed("a key set entry is not an RSA key with a kid")
        if entry.get("alg", "RS256") != "RS256" or entry.get("use", "sig") != "sig":
            continue  # not a signing key for RS256: never used to verify
        try:
            public = RSAAlgorithm.from_jwk(entry)
        except (ValueError, KeyError, TypeError):
            raise _FetchFailed(f"key {kid!r} is not a valid RSA JWK") from None
        if not isinstance(public, rsa.RSAPublicKey) or public.key_size < MIN_RSA_KEY_BITS:
            raise _FetchFailed(f"key {kid!r} is not an RSA public key of at least 2048 bits")
        keys[kid] = public
    return keys
