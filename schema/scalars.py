"""Scalars and enums shared by every part of the schema."""

from __future__ import annotations

from datetime import datetime
from enum import Enum

import strawberry
from strawberry.scalars import JSON

from domain.clock import from_iso
from domain.errors import ErrorCode
from domain.jobs import JobKind, JobStatus
from domain.users import Role, UserStatus

DateTime = datetime
__all__ = [
    "JSON",
    "DateTime",
    "ErrorCode",
    "JobKind",
    "JobStatus",
    "MediaKind",
    "Role",
    "UserStatus",
    "moment",
]

# The domain's enums are the schema's enums: registering them keeps one definition of each.
strawberry.enum(ErrorCode, description="Why a request failed.")
strawberry.enum(Role, description="VIEWER may read what is shared, never generate.")
strawberry.enum(UserStatus)
strawberry.enum(JobKind)
strawberry.enum(JobStatus)


@strawberry.enum(description="What kind of media an asset holds.")
class MediaKind(Enum):
    IMAGE = "IMAGE"
    VIDEO = "VIDEO"
    TEXT = "TEXT"


def moment(value: str | None) -> datetime | None:
    """A stored timestamp as a DateTime (or None)."""
    return from_iso(value) if value else None
