"""Time as the studio stores it: tz-aware UTC datetimes, kept in documents as fixed-width ISO strings.

Fixed width (microseconds, `Z`) makes lexical order equal to time order in every docstore.
"""

from __future__ import annotations

import os
import secrets
import time
from datetime import UTC, datetime

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow() -> datetime:
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """Serialise a datetime for storage (naive datetimes are taken as UTC)."""
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime(_FORMAT)


def from_iso(text: str) -> datetime:
    return datetime.strptime(text, _FORMAT).replace(tzinfo=UTC)


def now_iso() -> str:
    return to_iso(utcnow())


def new_id() -> str:
    """A short, unique, roughly time-ordered id (milliseconds then randomness)."""
    millis = int(time.time() * 1000)
    return f"{millis:011x}{secrets.token_hex(5)}{os.getpid() % 256:02x}"
