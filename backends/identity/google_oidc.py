"""Verifies the Google-signed OIDC ID tokens Cloud Tasks puts on the requests it delivers.

Cloud Tasks mints, for the task's `oidcToken.serviceAccountEmail`, an RS256 token with `iss`
https://accounts.google.com, `aud` the task's audience, `email` the service account and
`email_verified` true, signed with the keys Google publishes at https://www.googleapis.com/oauth2/v3/certs
(fetched and cached by `google_keys.SigningKeys`, the same cache the Firebase verifier uses).

A token that is missing, malformed, unsigned, badly signed, expired, for another audience or from
another issuer is StudioError(UNAUTHENTICATED); a well-signed token for another account (or with an
unverified email) is StudioError(FORBIDDEN); unavailable signing keys are UPSTREAM_UNAVAILABLE.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import jwt

from backends.identity._jwt_errors import reason
from backends.identity.google_keys import SigningKeys, _unauthenticated
from domain.errors import ErrorCode, StudioError

GOOGLE_OIDC_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
ISSUERS = ("https://accounts.google.com", "accounts.google.com")
ALGORITHM = "RS256"
MAX_TOKEN_LENGTH = 8192


class GoogleOidcVerifier:
    """Accepts only tokens for `audience` naming `service_account`, signed with Google's keys."""

    def __init__(
        self,
        *,
        audience: str,
        service_account: str,
        certs_url: str = GOOGLE_OIDC_CERTS_URL,
        clock_skew_seconds: int = 30,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        if not audience or not service_account or "@" not in service_account:
            raise ValueError("an audience and a service account email are required")
        self.audience = audience
        self.service_account = service_account.lower()
        self.clock_skew_seconds = clock_skew_seconds
        self._keys = SigningKeys(certs_url, label="Google OIDC", http=http)

    async def verify(self, token: str) -> Mapping[str, Any]:
        """The verified claims of `token`, or StudioError (see the module's docstring)."""
        if not token or len(token) > MAX_TOKEN_LENGTH:
            raise _unauthenticated("malformed token")
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise _unauthenticated("malformed token") from None
        if header.get("alg") != ALGORITHM:  # rules out `none` and HS256-with-the-public-key
            raise _unauthenticated("unsupported token algorithm")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise _unauthenticated("token signed by an unknown key")
        key = await self._keys.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                audience=self.audience,
                issuer=ISSUERS,
                leeway=self.clock_skew_seconds,
                options={"require": ["exp", "iat", "iss", "aud", "sub"], "strict_aud": True},
            )
        except jwt.InvalidTokenError as exc:
            raise _unauthenticated(reason(exc)) from None
        email = claims.get("email")
        if not isinstance(email, str) or email.lower() != self.service_account:
            raise StudioError(ErrorCode.FORBIDDEN, "the token is not the task queue's service account")
        if claims.get("email_verified") is not True:
            raise StudioError(ErrorCode.FORBIDDEN, "the token's email is not verified")
        return claims
