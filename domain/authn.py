"""Turning a bearer credential into an Actor, with a short cache so hot paths skip repeated work."""

from __future__ import annotations

import time
from collections import OrderedDict
from datetime import datetime

from domain.access import Actor
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
    ) -> None:
        self._identity = identity
        self._directory = directory
        self._ttl = cache_seconds
        self._size = cache_size
        self._cache: OrderedDict[str, tuple[float, Actor, datetime]] = OrderedDict()

    async def from_authorization(self, header: str | None) -> Actor | None:
        """None for no credentials; UNAUTHENTICATED for bad ones."""
        return (await self.session_from_authorization(header))[0]

    async def from_token(self, token: str) -> Actor:
        return (await self.session(token))[0]

    async def session_from_authorization(self, header: str | None) -> tuple[Actor | None, datetime | None]:
        """Like `from_authorization`, with the moment the credential expires (None without one)."""
        if not header:
            return None, None
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise StudioError(ErrorCode.UNAUTHENTICATED, "Authorization must be 'Bearer <token>'.")
        return await self.session(token.strip())

    async def session(self, token: str) -> tuple[Actor, datetime]:
        """The token's Actor and its expiry; long-lived sessions (WebSocket) end then."""
        now = time.monotonic()
        cached = self._cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1], cached[2]
        identity = await self._identity.verify(token)
        user = await self._directory.sign_in(identity.email)
        actor = Actor(user=user, via="token")
        left = (identity.expires_at - utcnow()).total_seconds()
        if self._ttl > 0 and left > 0:
            self._cache[token] = (now + min(self._ttl, left), actor, identity.expires_at)
            self._cache.move_to_end(token)
            while len(self._cache) > self._size:
                self._cache.popitem(last=False)
        return actor, identity.expires_at

    def forget(self) -> None:
        """Drop every cached actor (after role or status changes made in this process)."""
        self._cache.clear()
