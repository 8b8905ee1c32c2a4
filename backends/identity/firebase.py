"""IdentityProvider for Firebase Authentication: verifies Firebase ID tokens (RS256) without firebase-admin.

Google signs ID tokens with keys whose X.509 certificates it publishes at `certs_url` as a JSON
object of key id → PEM. The certificates are fetched with httpx (async, so the event loop never
waits on the network), cached for the response's `Cache-Control: max-age` (less its `Age`), and
refetched when they expire or when a token names a key id the cache lacks — but never more than
once per `min_refetch_seconds`, so a flood of tokens with made-up key ids cannot become a flood of
fetches. Concurrent verifications that need the certificates share one fetch.

Checks, as Firebase documents them for third-party verifiers: header `alg` exactly RS256 and a
`kid` naming a published key; signature; `aud` == project; `iss` ==
https://securetoken.google.com/<project>; non-empty `sub` (at most 128 characters); `exp` in the
future, `iat` and `auth_time` not in the future (each with `clock_skew_seconds` of tolerance);
plus the studio's own requirement of an `email` claim (`email_verified` is reported as is).

Claims are checked on the unverified payload first so a token that would be refused anyway never
causes a certificate fetch; the signature is then verified with PyJWT and the claims checked again
on the verified payload. RSA-2048 verification takes tens of microseconds, so it runs inline.

A bad token is StudioError(UNAUTHENTICATED) with a short, safe reason. Failing to obtain the
certificates is StudioError(UPSTREAM_UNAVAILABLE, retryable): the token may well be fine.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import re
import ssl
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa

from backends.identity._jwt_errors import reason
from domain.errors import ErrorCode, StudioError
from domain.ports import VerifiedIdentity

log = logging.getLogger("genmedia.identity")

GOOGLE_CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
ISSUER_PREFIX = "https://securetoken.google.com/"
ALGORITHM = "RS256"
# Real ID tokens are around 1 KiB (Firebase caps custom claims at 1000 bytes).
MAX_TOKEN_LENGTH = 8192
MAX_SUBJECT_LENGTH = 128  # Firebase uids are at most 128 characters
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


class FirebaseIdentity:
    """Verifies Firebase ID tokens issued for `project`, with signing certificates from `certs_url`.

    `http` is an optional httpx.AsyncClient used for the certificate fetches (its owner closes it);
    without one, each fetch opens and closes its own client.
    """

    def __init__(
        self,
        project: str,
        *,
        certs_url: str,
        clock_skew_seconds: int = 30,
        http: httpx.AsyncClient | None = None,
        min_refetch_seconds: float = 5.0,
        fetch_timeout_seconds: float = 10.0,
    ) -> None:
        if not isinstance(project, str) or not project.strip() or project != project.strip():
            raise ValueError("project must be a Firebase / Google Cloud project id")
        if not certs_url.startswith(("https://", "http://")):
            raise ValueError("certs_url must be an http(s) URL")
        if not 0 <= clock_skew_seconds <= 300:
            raise ValueError("clock_skew_seconds must be between 0 and 300")
        if min_refetch_seconds < 0 or fetch_timeout_seconds <= 0:
            raise ValueError("min_refetch_seconds must be >= 0 and fetch_timeout_seconds > 0")
        self.project = project
        self.issuer = ISSUER_PREFIX + project
        self.certs_url = certs_url
        self.clock_skew_seconds = clock_skew_seconds
        self._http = http
        self._min_refetch = float(min_refetch_seconds)
        self._timeout = float(fetch_timeout_seconds)
        self._keys: dict[str, rsa.RSAPublicKey] = {}
        self._fresh_until = -math.inf  # monotonic time until which `_keys` may be used
        self._last_attempt = -math.inf  # monotonic time the latest fetch started
        self._pending: asyncio.Task[None] | None = None
        self._tls: ssl.SSLContext | None = None  # built off the event loop on first https fetch

    # ------------------------------------------------------------ verification

    async def verify(self, token: str) -> VerifiedIdentity:
        """Check algorithm, key id, signature, audience, issuer, time window and claims."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise _unauthenticated("malformed token")
        try:
            unverified = jwt.decode_complete(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise _unauthenticated("malformed token") from None
        header, claims = unverified["header"], unverified["payload"]
        if not isinstance(header, dict) or not isinstance(claims, dict):
            raise _unauthenticated("malformed token")
        # Pinning the algorithm before anything else rules out `none` and HS256-with-the-certificate.
        if header.get("alg") != ALGORITHM:
            raise _unauthenticated("unsupported token algorithm")
        if "crit" in header or "b64" in header:  # extensions Firebase never uses
            raise _unauthenticated("malformed token")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthenticated("token signed by an unknown key")
        self._check_claims(claims)  # before any fetch: a token refused anyway costs no request

        key = await self._key(kid)
        try:
            verified = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.project,
                issuer=self.issuer,
                leeway=self.clock_skew_seconds,
                options={
                    "require": ["exp", "iat", "iss", "aud", "sub", "auth_time"],
                    "strict_aud": True,
                },
            )
        except jwt.InvalidTokenError as exc:
            raise _unauthenticated(reason(exc)) from None
        return self._check_claims(verified)

    def _check_claims(self, claims: Mapping[str, Any]) -> VerifiedIdentity:
        """The claim checks Firebase prescribes, plus the studio's email; the identity they describe."""
        now = time.time()
        skew = self.clock_skew_seconds
        if "aud" not in claims:
            raise _unauthenticated("token lacks the aud claim")
        if claims["aud"] != self.project:
            raise _unauthenticated("token has the wrong audience")
        if "iss" not in claims:
            raise _unauthenticated("token lacks the iss claim")
        if claims["iss"] != self.issuer:
            raise _unauthenticated("token has the wrong issuer")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject:
            raise _unauthenticated("token lacks the sub claim")
        if len(subject) > MAX_SUBJECT_LENGTH:
            raise _unauthenticated("token has an invalid sub claim")
        expires = _timestamp(claims, "exp")
        issued = _timestamp(claims, "iat")
        authenticated = _timestamp(claims, "auth_time")
        if expires <= now - skew:
            raise _unauthenticated("token expired")
        if issued > now + skew:
            raise _unauthenticated("token not yet valid")
        if "nbf" in claims and _timestamp(claims, "nbf") > now + skew:
            raise _unauthenticated("token not yet valid")
        if authenticated > now + skew:
            raise _unauthenticated("token has an auth_time in the future")
        email = claims.get("email")
        if not isinstance(email, str) or "@" not in email:
            raise _unauthenticated("token lacks the email claim")
        try:
            issued_at = datetime.fromtimestamp(issued, UTC)
            expires_at = datetime.fromtimestamp(expires, UTC)
            authenticated_at = datetime.fromtimestamp(authenticated, UTC)
        except (ValueError, OverflowError, OSError):
            raise _unauthenticated("invalid token") from None
        return VerifiedIdentity(
            subject=subject,
            email=email,
            issued_at=issued_at,
            expires_at=expires_at,
            email_verified=claims.get("email_verified") is True,
            authenticated_at=authenticated_at,
        )

    # ------------------------------------------------------------ certificates

    async def _key(self, kid: str) -> rsa.RSAPublicKey:
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
            task = loop.create_task(self._fetch(), name="firebase-certs-fetch")
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
            "The sign-in service's signing keys are unavailable; try again shortly.",
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
            log.warning("fetching Firebase signing certificates from %s failed: %s", self.certs_url, exc)
            raise
        except (TimeoutError, httpx.HTTPError, httpx.InvalidURL, httpx.StreamError, OSError) as exc:
            log.warning(
                "fetching Firebase signing certificates from %s failed: %s",
                self.certs_url,
                type(exc).__name__,
            )
            raise _FetchFailed(type(exc).__name__) from None
        except Exception as exc:  # the token may be fine: never let a fetch bug read as a bad token
            log.exception("fetching Firebase signing certificates from %s failed", self.certs_url)
            raise _FetchFailed(type(exc).__name__) from None
        self._keys = keys
        self._fresh_until = started + max(_freshness(headers), self._min_refetch)

    async def _download(self) -> tuple[int, httpx.Headers, bytes]:
        if self._http is not None:
            return await _get(self._http, self.certs_url)
        if self._tls is None:
            # Loading the CA bundle takes milliseconds of blocking file I/O: do it once, off the loop.
            self._tls = await asyncio.to_thread(httpx.create_ssl_context)
        async with httpx.AsyncClient(verify=self._tls, follow_redirects=False) as client:
            return await _get(client, self.certs_url)


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
    """kid → RSA public key from Google's `{kid: PEM certificate}` document; all entries must be good."""
    try:
        document = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _FetchFailed("response is not JSON") from None
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


def _timestamp(claims: Mapping[str, Any], name: str) -> float:
    """A NumericDate claim as a finite number (JSON booleans are not numbers here)."""
    if name not in claims:
        raise _unauthenticated(f"token lacks the {name} claim")
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _unauthenticated(f"token has an invalid {name} claim")
    return float(value)
