"""IdentityProvider for Firebase Authentication: verifies Firebase ID tokens (RS256) without firebase-admin.

Google signs ID tokens with keys whose X.509 certificates it publishes at `certs_url` as a JSON
object of key id → PEM; `google_keys.SigningKeys` fetches and caches them (see there).

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

import math
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import httpx
import jwt

from backends.identity._jwt_errors import reason
from backends.identity.google_keys import (  # noqa: F401  (the limits are part of this module's story)
    MAX_CACHE_SECONDS,
    MAX_CERTS,
    MAX_CERTS_BYTES,
    SigningKeys,
    _unauthenticated,
)
from domain.ports import VerifiedIdentity

GOOGLE_CERTS_URL = "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
ISSUER_PREFIX = "https://securetoken.google.com/"
ALGORITHM = "RS256"
# Real ID tokens are around 1 KiB (Firebase caps custom claims at 1000 bytes).
MAX_TOKEN_LENGTH = 8192
MAX_SUBJECT_LENGTH = 128  # Firebase uids are at most 128 characters


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
        if not 0 <= clock_skew_seconds <= 300:
            raise ValueError("clock_skew_seconds must be between 0 and 300")
        self.project = project
        self.issuer = ISSUER_PREFIX + project
        self.certs_url = certs_url
        self.clock_skew_seconds = clock_skew_seconds
        self._signing_keys = SigningKeys(
            certs_url,
            label="sign-in service",
            http=http,
            min_refetch_seconds=min_refetch_seconds,
            fetch_timeout_seconds=fetch_timeout_seconds,
        )

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

        key = await self._signing_keys.key(kid)
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


def _timestamp(claims: Mapping[str, Any], name: str) -> float:
    """A NumericDate claim as a finite number (JSON booleans are not numbers here)."""
    if name not in claims:
        raise _unauthenticated(f"token lacks the {name} claim")
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _unauthenticated(f"token has an invalid {name} claim")
    return float(value)
