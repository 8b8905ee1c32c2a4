"""Who is asking, and what they may do: the checks every entry point (API, worker, CLI) shares."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from domain.errors import ErrorCode, StudioError
from domain.users import Role, User, UserStatus


@dataclass(frozen=True)
class Actor:
    """An authenticated caller: the user, and how they proved it."""

    user: User
    via: str = "token"  # "token" or "api_key"
    teams: Mapping[str, str] = field(default_factory=dict)  # team id -> OWNER / EDITOR / VIEWER
    scopes: frozenset[str] | None = None  # an API key's scopes; None: everything the role allows
    api_key_id: str | None = None

    @property
    def id(self) -> str:
        return self.user.id

    @property
    def reader_tags(self) -> list[str]:
        """The `readers` entries that grant this caller visibility."""
        return [f"user:{self.user.id}", *(f"team:{team_id}" for team_id in sorted(self.teams))]

    def team_role(self, team_id: str) -> str | None:
        """The caller's role in a team (OWNER, EDITOR, VIEWER), None when not a member."""
        return self.teams.get(team_id)


def require_actor(actor: Actor | None) -> Actor:
    """UNAUTHENTICATED for anonymous callers."""
    if actor is None:
        raise StudioError(
            ErrorCode.UNAUTHENTICATED, "Sign in: send an Authorization bearer token or an X-API-Key."
        )
    return actor


def require_active(actor: Actor | None) -> Actor:
    """The caller must be signed in and approved."""
    who = require_actor(actor)
    status = who.user.status
    if status is UserStatus.PENDING:
        raise StudioError(ErrorCode.FORBIDDEN, "Your account is waiting for approval by an administrator.")
    if status is UserStatus.BLOCKED:
        raise StudioError(ErrorCode.FORBIDDEN, "Your account is blocked.")
    return who


def require_generate(actor: Actor | None) -> Actor:
    """Viewers read what is shared with them; only users and admins generate."""
    who = require_active(actor)
    if who.user.role is Role.VIEWER:
        raise StudioError(ErrorCode.FORBIDDEN, "Viewers cannot generate media.")
    return who


def require_admin(actor: Actor | None) -> Actor:
    who = require_active(actor)
    if not who.user.is_admin:
        raise StudioError(ErrorCode.FORBIDDEN, "Only administrators may do this.")
    return who


# What an API key must carry for each class of operation (a bearer token carries every scope its
# role allows). Checked once per operation, on its root fields, before anything runs (HTTP and
# WebSocket alike), so a field added later is covered by the class it belongs to.
READ_SCOPE = "read"  # every query and subscription
WRITE_SCOPE = "write"  # every mutation that does not start a generation (library edits, cancelJob, ...)
GENERATE_SCOPE = "generate"  # generate*/upscale* mutations: they spend quota and budget
_GENERATE_PREFIXES = ("generate", "upscale")
_GENERATE_FIELDS = frozenset({"createUpload"})


def is_generate_field(name: str) -> bool:
    """A root mutation field that starts a paid generation, or stores media like one."""
    return name.startswith(_GENERATE_PREFIXES) or name in _GENERATE_FIELDS


def scope_for(operation_type: str, root_field: str) -> str | None:
    """The scope a root field of a `query`, `mutation` or `subscription` needs (None: introspection)."""
    if root_field.startswith("__"):
        return None
    if operation_type == "mutation":
        return GENERATE_SCOPE if is_generate_field(root_field) else WRITE_SCOPE
    return READ_SCOPE


def require_scopes(actor: Actor | None, operation_type: str, root_fields: Iterable[str]) -> None:
    """FORBIDDEN, naming the missing scopes, when an API key may not run these root fields."""
    if actor is None or actor.scopes is None:
        return
    needed = {scope for name in root_fields if (scope := scope_for(operation_type, name)) is not None}
    missing = sorted(needed - actor.scopes)
    if missing:
        names = ", ".join(f"'{scope}'" for scope in missing)
        raise StudioError(
            ErrorCode.FORBIDDEN,
            f"This API key lacks the {names} scope{'s' if len(missing) > 1 else ''} this operation needs.",
            missingScopes=missing,
        )


def can_read(actor: Actor, data: Mapping[str, Any]) -> bool:
    """Owner, admin, or anyone listed in the document's denormalised `readers`."""
    if actor.user.is_admin or data.get("owner_id") == actor.id:
        return True
    readers = data.get("readers") or ()
    return any(tag in readers for tag in actor.reader_tags)


def can_edit(actor: Actor, data: Mapping[str, Any]) -> bool:
    """Owners, admins and the owning team's OWNERs and EDITORs change an object; viewers never do."""
    if actor.user.role is Role.VIEWER:
        return False
    if actor.user.is_admin or data.get("owner_id") == actor.id:
        return True
    team_id = data.get("team_id")
    return bool(team_id) and actor.team_role(str(team_id)) in ("OWNER", "EDITOR")
