"""Turning an `X-API-Key` secret into an Actor: verified against the stored hash, cached for 5 seconds.

Like bearer tokens, a verified key maps to its Actor for at most `cache_seconds` (never past the
key's expiry), so a revocation or a blocked owner is seen by other processes within that time; the
process that made the change forgets at once. `lastUsedAt` is written at most once per
`touch_seconds` per key and process, never on every request.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime

from domain.access import Actor
from domain.admin import AuditLog, RequestInfo, session_revoked
from domain.apikeys import API_KEYS, ApiKey, hash_secret, key_id_of
from domain.clock import from_iso, now_iso, utcnow
from domain.errors import ErrorCode, StudioError
from domain.ports import DocStore
from domain.users import Directory, UserStatus

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class _Verified:
    until: float  # monotonic moment the entry stops being trusted
    actor: Actor
    expires_at: datetime
    last_used_at: str | None  # as stored when the key was read


def _refusal(reason: str) -> StudioError:
    return StudioError(ErrorCode.UNAUTHENTICATED, f"API key refused: {reason}.")


class ApiKeySignIn:
    """Verifies API key secrets (constant-time hash comparison) and finds the key's owner."""

    def __init__(
        self,
        docs: DocStore,
        directory: Directory,
        *,
        audit: AuditLog | None = None,
        cache_seconds: float = 5.0,
        cache_size: int = 10_000,
        touch_seconds: float = 60.0,
    ) -> None:
        self._docs = docs
        self._directory = directory
        self._audit = audit
        self._ttl = cache_seconds
        self._size = cache_size
        self._touch_every = touch_seconds
        self._cache: OrderedDict[str, _Verified] = OrderedDict()  # by the secret's hash
        self._touched: OrderedDict[str, float] = OrderedDict()  # key id -> monotonic moment written

    async def session(self, secret: str, request: RequestInfo | None = None) -> tuple[Actor, datetime]:
        """The key's Actor (`via="api_key"`, its scopes) and the moment the key expires."""
        digest = hash_secret(secret)
        now = time.monotonic()
        cached = self._cache.get(digest)
        if cached is None or cached.until <= now:
            cached = await self._verify(secret, digest, request)
            self._keep(digest, cached, now)
        assert cached.actor.api_key_id is not None
        await self._touch(cached.actor.api_key_id, cached.last_used_at, now)
        return cached.actor, cached.expires_at

    async def _verify(self, secret: str, digest: str, request: RequestInfo | None) -> _Verified:
        key_id = key_id_of(secret.strip())
        user_id: str | None = None
        try:
            if key_id is None:
                raise _refusal("malformed: expected the whole secret, starting with gms_")
            doc = await self._docs.get(API_KEYS, key_id)
            stored = str(doc.data.get("secret_sha256", "")) if doc is not None else ""
            # Compare even when the key is missing, so an unknown id costs the same as a wrong secret.
            if not secrets.compare_digest(digest, stored or "0" * 64) or doc is None:
                raise _refusal("unknown key")
            key = ApiKey.from_doc(doc.id, doc.data)
            user_id = key.owner_id
            if key.revoked_at is not None:
                raise _refusal("the key was revoked")
            expires_at = from_iso(key.expires_at)
            if expires_at <= utcnow():
                raise _refusal("the key expired")
            user = await self._directory.get(key.owner_id)
            if user is None:
                raise _refusal("unknown key")
            if user.status is UserStatus.BLOCKED:
                raise _refusal("its owner is blocked")
            if session_revoked(user, from_iso(key.created_at)):
                raise _refusal("its owner's sessions were revoked after it was made")
        except StudioError as error:
            await self._refused(user_id, key_id, error, request)
            raise
        actor = Actor(user=user, via="api_key", scopes=frozenset(key.scopes), api_key_id=key.id)
        return _Verified(0.0, actor, expires_at, key.last_used_at)

    def _keep(self, digest: str, verified: _Verified, now: float) -> None:
        left = (verified.expires_at - utcnow()).total_seconds()
        if self._ttl <= 0 or left <= 0:
            self._cache.pop(digest, None)
            return
        self._cache[digest] = _Verified(
            now + min(self._ttl, left), verified.actor, verified.expires_at, verified.last_used_at
        )
        self._cache.move_to_end(digest)
        while len(self._cache) > self._size:
            self._cache.popitem(last=False)

    async def _touch(self, key_id: str, stored: str | None, now: float) -> None:
        """Record use at most once per `touch_seconds`: one write per key and minute, not per request."""
        written = self._touched.get(key_id)
        if written is not None and now - written < self._touch_every:
            return
        self._touched[key_id] = now
        self._touched.move_to_end(key_id)
        while len(self._touched) > self._size:
            self._touched.popitem(last=False)
        if written is None and stored and (utcnow() - from_iso(stored)).total_seconds() < self._touch_every:
            return  # another process recorded it moments ago
        try:
            await self._docs.update(API_KEYS, key_id, {"last_used_at": now_iso()})
        except Exception:  # the request goes on; the next minute's use records it
            logger.warning("could not record the use of API key %s", key_id, exc_info=True)

    def forget(self, user_id: str | None = None) -> None:
        """Drop the cached keys of one user (blocked, sessions revoked), or of everyone."""
        if user_id is None:
            self._cache.clear()
            return
        for digest in [d for d, entry in self._cache.items() if entry.actor.id == user_id]:
            del self._cache[digest]

    def forget_key(self, key_id: str) -> None:
        """Drop one key (revoked in this process): refused from the next request on."""
        for digest in [d for d, entry in self._cache.items() if entry.actor.api_key_id == key_id]:
            del self._cache[digest]

    async def _refused(
        self, user_id: str | None, key_id: str | None, error: StudioError, request: RequestInfo | None
    ) -> None:
        if self._audit is not None:
            await self._audit.refused_sign_in(user_id, error.message, request, via="api_key", key=key_id)
