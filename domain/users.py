"""People: who they are, what role and status they have, and how a sign-in becomes a user."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from domain.clock import now_iso
from domain.errors import ErrorCode, StudioError, bad_input, not_found
from domain.ports import DocStore, PreconditionFailed

USERS = "users"


class Role(StrEnum):
    ADMIN = "ADMIN"
    USER = "USER"
    VIEWER = "VIEWER"


class UserStatus(StrEnum):
    ACTIVE = "ACTIVE"
    PENDING = "PENDING"
    BLOCKED = "BLOCKED"


@dataclass(frozen=True)
class User:
    """A person known to the studio."""

    id: str
    email: str
    role: Role
    status: UserStatus
    display_name: str | None
    created_at: str
    last_seen_at: str | None = None
    accepted_terms_version: str | None = None
    accepted_terms_at: str | None = None
    sessions_valid_after: str | None = None  # tokens signed in before this moment are refused

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN

    @classmethod
    def from_doc(cls, doc_id: str, data: dict[str, Any]) -> User:
        return cls(
            id=doc_id,
            email=data["email"],
            role=Role(data.get("role", Role.USER.value)),
            status=UserStatus(data.get("status", UserStatus.PENDING.value)),
            display_name=data.get("display_name"),
            created_at=data["created_at"],
            last_seen_at=data.get("last_seen_at"),
            accepted_terms_version=data.get("accepted_terms_version"),
            accepted_terms_at=data.get("accepted_terms_at"),
            sessions_valid_after=data.get("sessions_valid_after"),
        )


def normalise_email(email: str) -> str:
    """Lower-cased and trimmed; BAD_USER_INPUT when it cannot be an address."""
    value = email.strip().lower()
    local, _, domain = value.partition("@")
    if not local or "." not in domain or " " in value or len(value) > 254:
        raise bad_input("email", f"not an email address: {email!r}")
    return value


def user_id_for(email: str) -> str:
    """Deterministic id per address, so every process creates the same user without a lookup."""
    return "u" + hashlib.sha256(normalise_email(email).encode()).hexdigest()[:19]


class Directory:
    """Finds, creates and changes users."""

    def __init__(
        self,
        docs: DocStore,
        *,
        admin_emails: frozenset[str] = frozenset(),
        auto_approve_domains: frozenset[str] = frozenset(),
    ) -> None:
        self._docs = docs
        self._admin_emails = admin_emails
        self._auto_approve_domains = auto_approve_domains

    async def get(self, user_id: str) -> User | None:
        doc = await self._docs.get(USERS, user_id)
        return User.from_doc(doc.id, doc.data) if doc else None

    async def require(self, user_id: str) -> User:
        user = await self.get(user_id)
        if user is None:
            raise not_found("user", user_id)
        return user

    async def sign_in(self, email: str, *, display_name: str | None = None) -> User:
        """The user behind a verified credential: created on first sign-in (PENDING unless bootstrapped)."""
        address = normalise_email(email)
        user_id = user_id_for(address)
        doc = await self._docs.get(USERS, user_id)
        if doc is not None:
            return User.from_doc(doc.id, doc.data)
        bootstrap = address in self._admin_emails
        approved = bootstrap or address.rpartition("@")[2] in self._auto_approve_domains
        data = {
            "email": address,
            "display_name": display_name,
            "role": Role.ADMIN.value if bootstrap else Role.USER.value,
            "status": UserStatus.ACTIVE.value if approved else UserStatus.PENDING.value,
            "created_at": now_iso(),
        }
        try:
            created = await self._docs.create(USERS, user_id, data)
        except PreconditionFailed:
            existing = await self._docs.get(USERS, user_id)
            if existing is None:  # deleted in between; extremely unlikely
                raise StudioError(ErrorCode.INTERNAL, "user could not be created") from None
            return User.from_doc(existing.id, existing.data)
        return User.from_doc(created.id, created.data)

    async def put(
        self,
        email: str,
        *,
        role: Role | None = None,
        status: UserStatus | None = None,
        terms_version: str | None = None,
    ) -> User:
        """Create or change a user by email (the CLI's `token` and `user set`); with `terms_version`,
        record that they accepted those terms now."""
        user = await self.sign_in(email)
        changes: dict[str, Any] = {}
        if terms_version is not None:
            changes["accepted_terms_version"] = terms_version
            changes["accepted_terms_at"] = now_iso()
        if role is not None:
            changes["role"] = role.value
        if status is not None:
            changes["status"] = status.value
        if not changes:
            return user
        doc = await self._docs.update(USERS, user.id, changes)
        return User.from_doc(doc.id, doc.data)
