"""A Firestore listener whose stream dies is opened again, and its first snapshot says so.

The SDK's listener is the cloud side here: a stand-in handle plays it, so the test can end a
stream the way a network failure does (the handle stops being active) without an emulator.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from backends.docstore import _firestore_listen


class StandInListener:
    """What `on_snapshot` returns: active until its stream dies or it is unsubscribed."""

    def __init__(self) -> None:
        self.is_active = True
        self.unsubscribed = False

    def unsubscribe(self) -> None:
        self.is_active, self.unsubscribed = False, True


async def test_a_dead_stream_is_reopened_and_the_watch_goes_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_firestore_listen, "HEALTH_EVERY", 0.02)
    opened: list[tuple[StandInListener, Callable[..., None]]] = []

    def subscribe(callback: Callable[..., None]) -> Any:
        listener = StandInListener()
        opened.append((listener, callback))
        callback([f"snapshot-{len(opened)}"], [], None)  # a new stream starts with the whole state
        return listener

    listen = _firestore_listen.Listen(subscribe)
    await listen.start()
    assert await asyncio.wait_for(listen.next(), 1) == (True, ["snapshot-1"], [])

    opened[0][0].is_active = False  # the stream ends with an error the SDK does not recover from
    reopened = await asyncio.wait_for(listen.next(), 2)

    assert len(opened) == 2 and reopened == (True, ["snapshot-2"], [])
    opened[0][1](["late from the dead stream"], [], None)
    opened[1][1](["next"], [], None)
    assert await asyncio.wait_for(listen.next(), 1) == (False, ["next"], []), "the dead stream is ignored"
    listen.closed = True
    listen.stop()
    await asyncio.sleep(0.05)
    assert opened[1][0].unsubscribed
