"""The terms of service: which version is current, who accepted it, and the rule that generating needs it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

from domain.access import Actor, require_active
from domain.clock import now_iso, to_iso
from domain.errors import ErrorCode, StudioError, bad_input
from domain.ports import DocStore, Transaction
from domain.users import USERS, User

# The version a fresh installation asks for; Settings default to it, and test users accept it.
DEFAULT_TERMS_VERSION = "2026-11-01"
DEFAULT_TERMS_PUBLISHED_AT = datetime(2026, 11, 1, tzinfo=UTC)
MAX_VERSION_CHARS = 64


@dataclass(frozen=True)
class Terms:
    """One published version of the terms of service."""

    version: str
    url: str | None
    published_at: datetime


def acceptance(version: str) -> dict[str, str]:
    """The user-document fields that record accepting `version` now."""
    return {"accepted_terms_version": version, "accepted_terms_at": now_iso()}


class TermsOfService:
    """The current terms, accepting them, and the check every generation passes through."""

    def __init__(self, docs: DocStore, current: Terms) -> None:
        self._docs = docs
        self.current = current
        self._listeners: list[Callable[[str], None]] = []

    def on_user_changed(self, listener: Callable[[str], None]) -> None:
        """Called with the user id after an acceptance (the Authenticator forgets that user's tokens)."""
        self._listeners.append(listener)

    async def accept(self, actor: Actor | None, version: str) -> User:
        """Record that the caller (an approved user) accepts `version`, which must be the current one."""
        who = require_active(actor)
        if not 0 < len(version) <= MAX_VERSION_CHARS or not version.isprintable():
            raise bad_input("version", f"version must be 1 to {MAX_VERSION_CHARS} printable characters")
        if version != self.current.version:
            raise StudioError(
                ErrorCode.CONFLICT,
                f"Version {version!r} is not the current terms of service; the current version is "
                f"{self.current.version!r}.",
                retryable=False,
                currentTermsVersion=self.current.version,
            )

        async def record(tx: Transaction) -> User:
            doc = await tx.get(USERS, who.id)
            if doc is None:  # a token of a user deleted since it was issued
                raise StudioError(ErrorCode.UNAUTHENTICATED, "This account no longer exists.")
            changes = acceptance(version)
            tx.update(USERS, who.id, changes)
            return User.from_doc(doc.id, {**doc.data, **changes})

        user = await self._docs.run_transaction(record)
        for listener in self._listeners:
            listener(user.id)
        return user

    async def require_accepted(self, who: Actor) -> None:
        """FORBIDDEN, naming the current version, unless the caller accepted it.

        The actor may come from a short-lived cache, so a refusal is confirmed against the stored
        user: someone who accepted a moment ago is not turned away.
        """
        if who.user.accepted_terms_version == self.current.version:
            return
        doc = await self._docs.get(USERS, who.id)
        if doc is not None and doc.data.get("accepted_terms_version") == self.current.version:
            return
        raise StudioError(
            ErrorCode.FORBIDDEN,
            f"Accept the terms of service (version {self.current.version}) with acceptTerms before "
            "generating.",
            currentTermsVersion=self.current.version,
            termsUrl=self.current.url,
            termsPublishedAt=to_iso(self.current.published_at),
        )
