"""Firestore's order across value types, which every docstore adapter follows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def rank(value: Any) -> int:
    """The position of a value's type in Firestore's order: null, booleans, numbers, strings, arrays, maps."""
    if value is None:
        return 0
    if isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return 2
    if isinstance(value, str):
        return 3
    if isinstance(value, list | tuple):
        return 4
    if isinstance(value, Mapping):
        return 5
    raise TypeError(f"not a JSON value: {type(value).__name__}")
