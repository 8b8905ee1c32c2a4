"""IdentityProvider for the embedded default: RS256 tokens signed with a key kept in the data dir.

`genmedia token` calls `LocalIssuer.issue`; the API verifies with `LocalIssuer.verify`.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from backends.create_once import create_once
from backends.identity._jwt_errors import reason
from domain.errors import ErrorCode, StudioError
from domain.ports import VerifiedIdentity

ALGORITHM = "RS256"
LEEWAY_SECONDS = 30
# Real tokens are well under 2 KiB; the cap keeps hostile input from costing parse time.
MAX_TOKEN_LENGTH = 8192


@dataclass(frozen=True)
class _SigningKey:
    private: rsa.RSAPrivateKey
    public: rsa.RSAPublicKey
    kid: str
    jwk: dict[str, str]


def _b64url_uint(value: int) -> str:
    raw = value.to_bytes((value.bit_length() + 7) // 8, "big")
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _generate_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _signing_key(private: rsa.RSAPrivateKey) -> _SigningKey:
    public = private.public_key()
    numbers = public.public_numbers()
    members = {"e": _b64url_uint(numbers.e), "kty": "RSA", "n": _b64url_uint(numbers.n)}
    # RFC 7638 thumbprint: SHA-256 over the required members, sorted, without whitespace.
    canonical = json.dumps(members, sort_keys=True, separators=(",", ":")).encode("ascii")
    thumbprint = base64.urlsafe_b64encode(hashlib.sha256(canonical).digest()).rstrip(b"=").decode("ascii")
    kid = thumbprint[:16]
    return _SigningKey(private, public, kid, {**members, "kid": kid, "alg": ALGORITHM, "use": "sig"})


def _unauthenticated(message: str) -> StudioError:
    return StudioError(ErrorCode.UNAUTHENTICATED, message)


class LocalIssuer:
    """Issues and verifies RS256 ID tokens with a private key created on first use at `key_path`."""

    def __init__(self, key_path: Path, *, issuer: str = "genmedia-local", audience: str = "genmedia") -> None:
        self.key_path = Path(key_path)
        self.issuer = issuer
        self.audience = audience
        self._key: _SigningKey | None = None
        self._lock = threading.Lock()

    # ------------------------------------------------------------ key

    @property
    def kid(self) -> str:
        """The key id put in every token header (a prefix of the key's RFC 7638 thumbprint)."""
        return self._load().kid

    def jwks(self) -> dict[str, Any]:
        """The public JWK set: what a third party needs to verify these tokens."""
        return {"keys": [dict(self._load().jwk)]}

    def _load(self) -> _SigningKey:
        """The signing key, read or created once; later calls do no file I/O."""
        if self._key is None:
            with self._lock:
                if self._key is None:
                    self._key = _signing_key(self._read_or_create())
        return self._key

    def _read_or_create(self) -> rsa.RSAPrivateKey:
        try:
            return self._read()
        except FileNotFoundError:
            pass
        private = _generate_private_key()
        pem = private.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        # Two processes starting together end up with one key: the loser reads the winner's.
        return private if create_once(self.key_path, pem) else self._read()

    def _read(self) -> rsa.RSAPrivateKey:
        # A winner using a file system without hard links cannot make its write atomic; a
        # half-written file becomes whole within moments, so retry briefly before giving up.
        for attempt in range(20):
            pem = self.key_path.read_bytes()
            try:
                key = serialization.load_pem_private_key(pem, password=None)
            except ValueError:
                if attempt == 19:
                    raise
                time.sleep(0.05)
                continue
            if not isinstance(key, rsa.RSAPrivateKey):
                raise ValueError(f"{self.key_path} does not hold an RSA private key")
            return key
        raise AssertionError("unreachable")

    # ------------------------------------------------------------ tokens

    def issue(self, subject: str, email: str, ttl: timedelta = timedelta(hours=12)) -> str:
        """A signed RS256 ID token for `subject` / `email`, valid for `ttl`."""
        if not subject or not email:
            raise ValueError("subject and email are required")
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        key = self._load()
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.audience,
            "sub": subject,
            "email": email,
            "email_verified": True,
            "iat": now,
            "nbf": now,
            "exp": now + int(ttl.total_seconds()),
        }
        return jwt.encode(claims, key.private, algorithm=ALGORITHM, headers={"kid": key.kid, "typ": "JWT"})

    async def verify(self, token: str) -> VerifiedIdentity:
        """Check algorithm, key id, signature, time window, issuer, audience and claims.

        Raises StudioError(UNAUTHENTICATED) with a short, safe reason on any failure.
        """
        key = self._key
        if key is None:
            key = await asyncio.to_thread(self._load)  # first call only: reads or creates the key file
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_LENGTH:
            raise _unauthenticated("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _unauthenticated("malformed token") from None
        # Pinning the algorithm before anything else rules out `none` and HS256-with-public-key.
        if header.get("alg") != ALGORITHM:
            raise _unauthenticated("unsupported token algorithm")
        if header.get("kid") != key.kid:
            raise _unauthenticated("token signed by an unknown key")
        try:
            claims = jwt.decode(
                token,
                key.public,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=self.issuer,
                leeway=LEEWAY_SECONDS,
                options={"require": ["exp", "iat", "nbf", "iss", "aud", "sub"]},
            )
        except jwt.InvalidTokenError as exc:
            raise _unauthenticated(reason(exc)) from None
        return _identity(claims)


def _identity(claims: dict[str, Any]) -> VerifiedIdentity:
    subject, email = claims.get("sub"), claims.get("email")
    if not isinstance(subject, str) or not subject:
        raise _unauthenticated("token lacks the sub claim")
    if not isinstance(email, str) or "@" not in email:
        raise _unauthenticated("token lacks the email claim")
    try:
        issued_at = datetime.fromtimestamp(claims["iat"], UTC)
        expires_at = datetime.fromtimestamp(claims["exp"], UTC)
    except (TypeError, ValueError, OverflowError, OSError):
        raise _unauthenticated("invalid token") from None
    return VerifiedIdentity(
        subject=subject,
        email=email,
        issued_at=issued_at,
        expires_at=expires_at,
        email_verified=claims.get("email_verified") is True,
    )
