"""Administering people (approve, block, roles, ending sessions) and the audit log of such changes."""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from domain.access import Actor, require_admin
from domain.clock import from_iso, new_id, now_iso
from domain.errors import StudioError, bad_input, conflict
from domain.pages import Page, PageRequest, check_page_size, paginate
from domain.ports import DocStore, Filter, Order, Query
from domain.users import USERS, Directory, Role, User, UserStatus

AUDIT = "audit"

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RequestInfo:
    """Where a request came from, as the audit log records it."""

    request_id: str = ""
    ip: str | None = None


class AuditLog:
    """Append-only records of who did (or tried) what to whom."""

    def __init__(self, docs: DocStore, *, max_page_size: int = 100) -> None:
        self._docs = docs
        self._max = max_page_size

    async def record(
        self,
        action: str,
        *,
        actor_id: str | None,
        target: str | None,
        outcome: str,
        request: RequestInfo,
        details: dict[str, Any] | None = None,
    ) -> None:
        data = {
            "action": action,
            "actor_id": actor_id,
            "target": target,
            "outcome": outcome,
            "request_id": request.request_id or None,
            "ip": request.ip,
            "at": now_iso(),
            "details": details or {},
        }
        await self._docs.create(AUDIT, new_id(), data)

    async def refused_sign_in(
        self, user_id: str | None, reason: str, request: RequestInfo | None, **details: Any
    ) -> None:
        """Record a refused sign-in (token or key). Never raises: the refusal stands even when the
        audit write fails, which is logged instead."""
        try:
            await self.record(
                "signin.refused",
                actor_id=user_id,
                target=user_id,
                outcome="denied",
                request=request or RequestInfo(),
                details={"reason": reason, **details},
            )
        except Exception:
            _log.exception("could not audit a refused sign-in")

    async def list(
        self,
        actor: Actor | None,
        page: PageRequest,
        *,
        action: str | None = None,
        actor_id: str | None = None,
    ) -> Page:
        """Newest first; administrators only."""
        require_admin(actor)
        if action is not None and not 0 < len(action) <= 100:
            raise bad_input("action", "action must be 1 to 100 characters")
        filters = []
        if action is not None:
            filters.append(Filter("action", "==", action))
        if actor_id is not None:
            filters.append(Filter("actor_id", "==", actor_id))
        return await paginate(
            self._docs,
            AUDIT,
            filters,
            Order("at", descending=True),
            page,
            max_size=self._max,
            default_size=50,
        )


def session_cutoff(user: User) -> int | None:
    """The whole second before which this user's sign-ins are refused (rounded up: the same second too)."""
    if not user.sessions_valid_after:
        return None
    return math.ceil(from_iso(user.sessions_valid_after).timestamp())


def session_revoked(user: User, signed_in_at: datetime) -> bool:
    cutoff = session_cutoff(user)
    return cutoff is not None and signed_in_at.timestamp() < cutoff


class Admin:
    """What administrators do to other people; every attempt is audited."""

    def __init__(
        self, docs: DocStore, directory: Directory, audit: AuditLog, *, max_page_size: int = 100
    ) -> None:
        self._docs = docs
        self._directory = directory
        self._audit = audit
        self._max = max_page_size
        self._listeners: list[Callable[[str], None]] = []

    def on_user_changed(self, listener: Callable[[str], None]) -> None:
        """Called with the user id after each change (the Authenticator forgets that user's tokens)."""
        self._listeners.append(listener)

    async def list_users(
        self, actor: Actor | None, *, status: UserStatus | None, first: int | None, after: str | None
    ) -> list[User]:
        """Ordered by email; `after` is the id of the last user already seen."""
        require_admin(actor)
        check_page_size(PageRequest(first=first), self._max)
        size = 50 if first is None else first
        start_after = None
        if after is not None:
            last = await self._directory.get(after)
            if last is None:
                raise bad_input("after", "not a user id from this list")
            start_after = [last.email, last.id]
        filters = [Filter("status", "==", status.value)] if status is not None else []
        docs = await self._docs.query(
            Query(USERS, filters, (Order("email"),), limit=size, start_after=start_after)
        )
        return [User.from_doc(doc.id, doc.data) for doc in docs]

    async def set_status(
        self, actor: Actor | None, user_id: str, status: UserStatus, request: RequestInfo
    ) -> User:
        async def change(admin: Actor, user: User) -> dict[str, Any]:
            if admin.id == user.id and status is not UserStatus.ACTIVE:
                raise conflict("Administrators cannot block or unapprove themselves.")
            changes: dict[str, Any] = {"status": status.value}
            if status is UserStatus.BLOCKED:
                changes["sessions_valid_after"] = now_iso()
            return changes

        return await self._change(
            "user.status.set", actor, user_id, request, change, {"status": status.value}
        )

    async def set_role(self, actor: Actor | None, user_id: str, role: Role, request: RequestInfo) -> User:
        async def change(admin: Actor, user: User) -> dict[str, Any]:
            if admin.id == user.id and role is not Role.ADMIN:
                raise conflict("Administrators cannot demote themselves.")
            return {"role": role.value}

        return await self._change("user.role.set", actor, user_id, request, change, {"role": role.value})

    async def revoke_sessions(self, actor: Actor | None, user_id: str, request: RequestInfo) -> User:
        async def change(admin: Actor, user: User) -> dict[str, Any]:
            return {"sessions_valid_after": now_iso()}

        return await self._change("user.sessions.revoke", actor, user_id, request, change, {})

    async def _change(
        self,
        action: str,
        actor: Actor | None,
        user_id: str,
        request: RequestInfo,
        change: Callable[[Actor, User], Any],
        details: dict[str, Any],
    ) -> User:
        actor_id = actor.id if actor is not None else None
        try:
            admin = require_admin(actor)
        except StudioError as error:
            await self._audit.record(
                action,
                actor_id=actor_id,
                target=user_id,
                outcome="denied",
                request=request,
                details={**details, "reason": error.message},
            )
            raise
        try:
            user = await self._directory.require(user_id)
            changes = await change(admin, user)
            doc = await self._docs.update(USERS, user.id, changes)
        except StudioError as error:
            await self._audit.record(
                action,
                actor_id=actor_id,
                target=user_id,
                outcome="error",
                request=request,
                details={**details, "code": error.code.value, "reason": error.message},
            )
            raise
        for listener in self._listeners:
            listener(user.id)
        updated = User.from_doc(doc.id, doc.data)
        before = {"status": user.status.value, "role": user.role.value}
        await self._audit.record(
            action,
            actor_id=actor_id,
            target=user.id,
            outcome="ok",
            request=request,
            details={**details, "before": before},
        )
        return updated
