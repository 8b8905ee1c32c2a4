"""Global object ids (`base64("Type:id")`) and the Node interface."""

from __future__ import annotations

import base64
import binascii

import strawberry

from domain.errors import ErrorCode, StudioError
from domain.pages import Page


def encode_id(type_name: str, raw: str) -> strawberry.ID:
    return strawberry.ID(base64.b64encode(f"{type_name}:{raw}".encode()).decode())


def split_id(value: str, field: str = "id") -> tuple[str, str]:
    """(type name, raw id) of a global id; BAD_USER_INPUT for anything we never handed out."""
    try:
        padded = value + "=" * (-len(value) % 4)
        text = base64.b64decode(padded.encode(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise StudioError(ErrorCode.BAD_USER_INPUT, f"{field}: not a valid id", field=field) from None
    type_name, sep, raw = text.partition(":")
    if not sep or not type_name or not raw:
        raise StudioError(ErrorCode.BAD_USER_INPUT, f"{field}: not a valid id", field=field)
    return type_name, raw


def decode_id(value: str, expected: str, field: str = "id") -> str:
    """The raw id of a global id of the expected type; NOT_FOUND when it names another type."""
    type_name, raw = split_id(value, field)
    if type_name != expected:
        raise StudioError(ErrorCode.NOT_FOUND, f"{expected} {value} not found")
    return raw


@strawberry.interface(description="An object with a global id, fetchable with `node(id:)`.")
class Node:
    id: strawberry.ID


@strawberry.type(description="Relay pagination state of a connection.")
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None

    @classmethod
    def of(cls, page: Page) -> PageInfo:
        """The page info of a domain page."""
        return cls(
            has_next_page=page.has_next,
            has_previous_page=page.has_previous,
            start_cursor=page.cursors[0] if page.cursors else None,
            end_cursor=page.cursors[-1] if page.cursors else None,
        )
