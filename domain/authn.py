"""Turning a bearer credential into an Actor, with a short cache so hot paths skip repeated work."""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime

from domain.access import Actor
from domain.admin import AuditLog, RequestInfo, session_revoked
from domain.apikey_signin import ApiKeySignIn
from domain.clock import utcnow
from domain.errors import ErrorCode, StudioError
from domain.ports import IdentityProvider
from domain.users import Directory


class Authenticator:
    """Verifies a token and finds (or creates) its user.

    A verified token maps to its Actor for at most `cache_seconds` (never past the token's expiry),
    so a role or status change is seen within that time.
    """

    def __init__(
        self,
        identity: IdentityProvider,
        directory: Directory,
        *,
        cache_seconds: float = 5.0,
        cache_size: int = 10_000,
        audit: AuditLog | None = None,
        api_keys: ApiKeySignIn | None = None,
        team_roles: Callable[[str], Awaitable[Mapping[str, str]]] | None = None,
    ) -> None:
        self._audit = audit
        self._keys = api_keys
        self._team_roles = team_roles
        self._identity = identity
        self._directory = directory
        self._ttl = cache_seconds
        self._size = cache_size
        self._cache: OrderedDict[str, tuple[float, Actor, datetime]] = OrderedDict()

    async def from_authorization(
        self, header: str | None, request: RequestInfo | None = None
    ) -> Actor | None:
        """None for no credentials; UNAUTHENTICATED for bad ones."""
        return (await self.session_from_authorization(header, request))[0]

    async def from_token(self, token: str) -> Actor:
        return (await self.session(token))[0]

    async def session_from_authorization(
        self, header: str | None, request: RequestInfo | None = None
    ) -> tuple[Actor | None, datetime | None]:
        """Like `from_authorization`, with the moment the credential expires (None without one)."""
        if not header:
            return None, None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            error = StudioError(ErrorCode.UNAUTHENTICATED, "Authorization must be 'Bearer <token>'.")
            await self._refused(None, error, request)
            raise error
        return await self.session(token.strip(), request)

    async def session_from_headers(
        self, authorization: str | None, api_key: str | None, request: RequestInfo | None = None
    ) -> tuple[Actor | None, datetime | None]:
        """The caller of a request carrying `Authorization: Bearer <token>` or `X-API-Key: <secret>`."""
        if api_key is None:
            return await self.session_from_authorization(authorization, request)
        if authorization or self._keys is None:
            error = StudioError(
                ErrorCode.UNAUTHENTICATED,
                "Send one credential: an Authorization bearer token or an X-API-Key, not both."
                if authorization
                else "API keys are not accepted here.",
            )
            await self._refused(None, error, request)
            raise error
        return await self._keys.session(api_key, request)

    async def session(self, token: str, request: RequestInfo | None = None) -> tuple[Actor, datetime]:
        """The token's Actor and its expiry; long-lived sessions (WebSocket) end then.

        A token signed in before the user's `sessions_valid_after` (revokeSessions, blocking) is
        refused; other processes see such a change once their cache entry expires."""
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        user_id: str | None = None
        try:
            identity = await self._identity.verify(token)
            user = await self._directory.sign_in(identity.email)
            user_id = user.id
            if session_revoked(user, identity.authenticated_at or identity.issued_at):
                raise StudioError(ErrorCode.UNAUTHENTICATED, "session revoked: sign in again")
        except StudioError as error:
            if error.code is ErrorCode.UNAUTHENTICATED:
                await self._refused(user_id, error, request)
            raise
        teams = await self._team_roles(user.id) if self._team_roles is not None else {}
        actor = Actor(user=user, via="token", teams=teams)
        left = (identity.expires_at - utcnow()).total_seconds()
        if self._ttl > 0 and left > 0:
            self._cache[token] = (now + min(self._ttl, left), actor, identity.expires_at)
            self._cache.move_to_end(token)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return actor, identity.expires_at

    def forget(self, user_id: str | None = None) -> None:
        """Drop the cached actors (tokens and API keys) of one user, or of everyone (after changes made
        in this process: role, status, revocation, team membership)."""
        if self._keys is not None:
            self._keys.forget(user_id)
        if user_id is None:
            self._cache.clear()
            return
        for token in [token for token, entry in self._cache.items() if entry[1].id == user_id]:
            del self._cache[token]

    async def _refused(self, user_id: str | None, error: StudioError, request: RequestInfo | None) -> None:
        if self._audit is not None:
            await self._audit.refused_sign_in(user_id, error.message, request)
