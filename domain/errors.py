"""Every failure the studio reports, as one exception carrying a public ErrorCode."""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    """The public error codes; the schema's ErrorCode enum mirrors these names."""

    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    NOT_FOUND = "NOT_FOUND"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    RATE_LIMITED = "RATE_LIMITED"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"
    CONTENT_BLOCKED = "CONTENT_BLOCKED"
    UPSTREAM_UNAVAILABLE = "UPSTREAM_UNAVAILABLE"
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    QUERY_TOO_COMPLEX = "QUERY_TOO_COMPLEX"
    CONFLICT = "CONFLICT"
    INTERNAL = "INTERNAL"


RETRYABLE_CODES = frozenset(
    {ErrorCode.RATE_LIMITED, ErrorCode.UPSTREAM_UNAVAILABLE, ErrorCode.INTERNAL, ErrorCode.CONFLICT}
)


class StudioError(Exception):
    """A failure with a public code, a message safe to show, and optional details (e.g. `field`)."""

    def __init__(
        self,
        code: ErrorCode,
        message: str,
        *,
        retryable: bool | None = None,
        retry_after: float | None = None,
        **details: Any,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.retryable = code in RETRYABLE_CODES if retryable is None else retryable
        self.retry_after = retry_after
        self.details = details

    def __repr__(self) -> str:
        return f"StudioError({self.code.value}, {self.message!r})"


def bad_input(field: str, message: str) -> StudioError:
    """A validation failure naming the input path the caller got wrong."""
    return StudioError(ErrorCode.BAD_USER_INPUT, message, field=field)


def not_found(what: str, ident: str) -> StudioError:
    """Also used for things the caller may not see, so existence is never revealed."""
    return StudioError(ErrorCode.NOT_FOUND, f"{what} {ident} not found")


def forbidden(message: str) -> StudioError:
    return StudioError(ErrorCode.FORBIDDEN, message)


def conflict(message: str) -> StudioError:
    return StudioError(ErrorCode.CONFLICT, message, retryable=False)
