"""API keys: long-lived credentials for scripts, with scopes, an expiry, and revocation.

A key's secret is `gms_<key id>_<random>`; it is shown once, when the key is made. The store keeps
only its SHA-256 (the secret is 256 random bits, so a fast hash is enough: there is nothing to
guess) and the `gms_<key id>` prefix that lets people recognise a key in their list.

Scopes (see domain.access): `read` (queries, subscriptions), `write` (mutations other than
generations), `generate` (generate*/upscale*). Without `scopes` a key gets `read` and `generate`
(viewers: `read`, the only scope they may have). API keys cannot create or revoke keys: a leaked
key must not be able to mint a longer-lived or wider one, nor revoke its owner's other keys.
"""

from __future__ import annotations

import hashlib
import secrets
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from domain.access import GENERATE_SCOPE, READ_SCOPE, WRITE_SCOPE, Actor, require_active
from domain.admin import AuditLog, RequestInfo
from domain.clock import from_iso, new_id, now_iso, to_iso, utcnow
from domain.errors import ErrorCode, StudioError, bad_input, forbidden, not_found
from domain.ports import DocStore, Filter, Query
from domain.users import Role

API_KEYS = "api_keys"
SECRET_PREFIX = "gms_"
SCOPES = (READ_SCOPE, WRITE_SCOPE, GENERATE_SCOPE)
DEFAULT_SCOPES = (READ_SCOPE, GENERATE_SCOPE)
VIEWER_SCOPES = (READ_SCOPE,)
MAX_NAME_CHARS = 100
_KEY_ID_CHARS = frozenset("0123456789abcdef")


@dataclass(frozen=True)
class ApiKeyPolicy:
    """Limits on keys: how many a user may hold at once, and how far ahead one may expire."""

    max_active: int = 10
    max_lifetime: timedelta = timedelta(days=365)


@dataclass(frozen=True)
class ApiKey:
    """One key as stored: never its secret, only the hash of it."""

    id: str
    owner_id: str
    name: str
    prefix: str
    scopes: tuple[str, ...]
    created_at: str
    expires_at: str
    last_used_at: str | None = None
    revoked_at: str | None = None

    @classmethod
    def from_doc(cls, doc_id: str, data: dict[str, Any]) -> ApiKey:
        return cls(
            id=doc_id,
            owner_id=data["owner_id"],
            name=data["name"],
            prefix=data["prefix"],
            scopes=tuple(data.get("scopes") or ()),
            created_at=data["created_at"],
            expires_at=data["expires_at"],
            last_used_at=data.get("last_used_at"),
            revoked_at=data.get("revoked_at"),
        )

    def is_active(self, now: datetime) -> bool:
        return self.revoked_at is None and from_iso(self.expires_at) > now


def prefix_for(key_id: str) -> str:
    return f"{SECRET_PREFIX}{key_id}"


def new_secret(key_id: str) -> str:
    """`gms_<key id>_<43 url-safe characters>`: 256 random bits behind a recognisable prefix."""
    return f"{prefix_for(key_id)}_{secrets.token_urlsafe(32)}"


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def key_id_of(secret: str) -> str | None:
    """The key id a secret names, None when it is not shaped like one of ours."""
    if not secret.startswith(SECRET_PREFIX) or len(secret) > 200:
        return None
    key_id, sep, random_part = secret[len(SECRET_PREFIX) :].partition("_")
    if not sep or len(random_part) < 32 or not key_id or not set(key_id) <= _KEY_ID_CHARS:
        return None
    return key_id


def check_name(name: str) -> str:
    value = name.strip()
    if not value:
        raise bad_input("name", "name must not be empty")
    if len(value) > MAX_NAME_CHARS:
        raise bad_input("name", f"name must be at most {MAX_NAME_CHARS} characters")
    if any(unicodedata.category(char).startswith("C") for char in value):
        raise bad_input("name", "name must not contain control characters")
    return value


def check_scopes(scopes: Sequence[str] | None, role: Role) -> tuple[str, ...]:
    """The key's scopes in a fixed order; unknown ones, none at all, or more than a viewer may: bad input."""
    if scopes is None:
        return VIEWER_SCOPES if role is Role.VIEWER else DEFAULT_SCOPES
    unknown = sorted({scope for scope in scopes if scope not in SCOPES})
    if unknown:
        raise bad_input("scopes", f"unknown scopes {unknown}; choose from {list(SCOPES)}")
    if not scopes:
        raise bad_input("scopes", f"give at least one scope of {list(SCOPES)}")
    if role is Role.VIEWER and set(scopes) - set(VIEWER_SCOPES):
        raise bad_input("scopes", "viewers may only create keys with the 'read' scope")
    return tuple(scope for scope in SCOPES if scope in scopes)


def check_expiry(expires_at: datetime | None, now: datetime, max_lifetime: timedelta) -> datetime:
    """When the key stops working: in the future, at most `max_lifetime` ahead (the default)."""
    if expires_at is None:
        return now + max_lifetime
    if expires_at.tzinfo is None:
        raise bad_input("expiresAt", "expiresAt needs a time zone (e.g. 2030-01-01T00:00:00Z)")
    if expires_at <= now:
        raise bad_input("expiresAt", "expiresAt must be in the future")
    if expires_at > now + max_lifetime:
        raise bad_input("expiresAt", f"expiresAt must be within {max_lifetime.days} days from now")
    return expires_at


def _person(actor: Actor | None) -> Actor:
    """An approved user signed in with a token: keys cannot manage keys (no credential escalation)."""
    who = require_active(actor)
    if who.via == "api_key":
        raise forbidden("API keys cannot create or revoke API keys; sign in with a token to manage keys.")
    return who


class ApiKeys:
    """Making, listing and revoking keys; every create and revoke attempt is audited."""

    def __init__(self, docs: DocStore, audit: AuditLog, policy: ApiKeyPolicy | None = None) -> None:
        self._docs = docs
        self._audit = audit
        self.policy = policy or ApiKeyPolicy()
        self._revoked: list[Callable[[str], None]] = []

    def on_revoked(self, listener: Callable[[str], None]) -> None:
        """Called with the key id after a revocation (sign-in forgets that key at once)."""
        self._revoked.append(listener)

    async def create(
        self,
        actor: Actor | None,
        name: str,
        scopes: Sequence[str] | None,
        expires_at: datetime | None,
        request: RequestInfo,
    ) -> tuple[ApiKey, str]:
        """The new key and its secret, which is never available again."""
        key_id = new_id()
        try:
            who = _person(actor)
            data = await self._new_key(who, name, scopes, expires_at, key_id)
        except StudioError as error:
            await self._record("apikey.create", actor, None, error, request)
            raise
        secret = new_secret(key_id)
        doc = await self._docs.create(API_KEYS, key_id, {**data, "secret_sha256": hash_secret(secret)})
        await self._record("apikey.create", who, key_id, None, request, {"scopes": list(data["scopes"])})
        return ApiKey.from_doc(doc.id, doc.data), secret

    async def _new_key(
        self, who: Actor, name: str, scopes: Sequence[str] | None, expires_at: datetime | None, key_id: str
    ) -> dict[str, Any]:
        now = utcnow()
        data = {
            "owner_id": who.id,
            "name": check_name(name),
            "prefix": prefix_for(key_id),
            "scopes": list(check_scopes(scopes, who.user.role)),
            "created_at": to_iso(now),
            "expires_at": to_iso(check_expiry(expires_at, now, self.policy.max_lifetime)),
            "last_used_at": None,
            "revoked_at": None,
        }
        active = [key for key in await self._owned(who.id) if key.is_active(now)]
        if len(active) >= self.policy.max_active:
            raise StudioError(
                ErrorCode.CONFLICT,
                f"You have {len(active)} active API keys, the most allowed; revoke one first.",
                retryable=False,
                limit=self.policy.max_active,
            )
        return data

    async def list_for(self, actor: Actor | None) -> list[ApiKey]:
        """The caller's keys, newest first, revoked and expired ones included."""
        who = require_active(actor)
        return await self._owned(who.id)

    async def get(self, actor: Actor | None, key_id: str) -> ApiKey:
        """One key, for its owner and administrators; NOT_FOUND for everyone else."""
        who = require_active(actor)
        doc = await self._docs.get(API_KEYS, key_id)
        if doc is None or (doc.data.get("owner_id") != who.id and not who.user.is_admin):
            raise not_found("ApiKey", key_id)
        return ApiKey.from_doc(doc.id, doc.data)

    async def revoke(self, actor: Actor | None, key_id: str, request: RequestInfo) -> ApiKey:
        """Owners revoke their keys, administrators anyone's; revoking twice keeps the first moment."""
        try:
            who = _person(actor)
            key = await self.get(who, key_id)
        except StudioError as error:
            await self._record("apikey.revoke", actor, key_id, error, request)
            raise
        if key.revoked_at is None:
            doc = await self._docs.update(API_KEYS, key_id, {"revoked_at": now_iso()})
            key = ApiKey.from_doc(doc.id, doc.data)
        for listener in self._revoked:
            listener(key_id)
        await self._record("apikey.revoke", who, key_id, None, request, {"owner": key.owner_id})
        return key

    async def _owned(self, owner_id: str) -> list[ApiKey]:
        docs = await self._docs.query(Query(API_KEYS, [Filter("owner_id", "==", owner_id)]))
        keys = [ApiKey.from_doc(doc.id, doc.data) for doc in docs]
        return sorted(keys, key=lambda key: (key.created_at, key.id), reverse=True)

    async def _record(
        self,
        action: str,
        actor: Actor | None,
        key_id: str | None,
        error: StudioError | None,
        request: RequestInfo,
        details: dict[str, Any] | None = None,
    ) -> None:
        outcome = "ok"
        extra: dict[str, Any] = dict(details or {})
        if error is not None:
            denied = error.code in (ErrorCode.UNAUTHENTICATED, ErrorCode.FORBIDDEN)
            outcome = "denied" if denied else "error"
            extra.update(code=error.code.value, reason=error.message)
        if actor is not None and actor.api_key_id is not None:
            extra["via_key"] = actor.api_key_id
        await self._audit.record(
            action,
            actor_id=actor.id if actor is not None else None,
            target=key_id,
            outcome=outcome,
            request=request,
            details=extra,
        )
