"""The Google SDK as the Firestore store uses it: imported on first use, so building the store costs
nothing at start-up; and the small pieces every part of the store shares."""

from __future__ import annotations

import asyncio
import random

Key = tuple[str, str]


class Sdk:
    """The SDK modules, imported on first use."""

    def __init__(self) -> None:
        from google.api_core import exceptions
        from google.cloud import firestore
        from google.cloud.firestore_v1 import types
        from google.protobuf.timestamp_pb2 import Timestamp

        self.firestore = firestore
        self.exceptions = exceptions
        self.types = types
        self.Timestamp = Timestamp
        self.FieldFilter = firestore.FieldFilter
        # Write refusals that mean "the document is not in the state the write requires".
        self.precondition_errors: tuple[type[BaseException], ...] = (
            exceptions.AlreadyExists,
            exceptions.NotFound,
            exceptions.FailedPrecondition,
        )


_SDK: Sdk | None = None


def load_sdk() -> Sdk:
    global _SDK
    if _SDK is None:
        _SDK = Sdk()
    return _SDK


async def backoff(attempt: int) -> None:
    """Jittered exponential backoff spreads competing retries apart."""
    await asyncio.sleep(random.uniform(0, min(0.5, 0.01 * 2**attempt)))


def reason(exc: BaseException) -> str:
    return str(getattr(exc, "message", None) or exc)
