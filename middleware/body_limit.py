"""Refuses HTTP request bodies over a size before anything parses them: 413 with a GraphQL-shaped body.

A declared Content-Length over the limit is refused before the application runs. Otherwise (chunked
bodies, or a client sending more than it declared) the bytes are counted as the application receives
them, and the request is refused as soon as the count passes the limit.

Before answering, the rest of the body is read and dropped (at most `DRAIN_BYTES`, for at most
`DRAIN_SECONDS`): closing a connection with unread bytes makes the kernel reset it, and the client
would see a broken connection instead of the 413.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from domain.errors import ErrorCode
from middleware.request_id import request_id_var

DRAIN_BYTES = 1 << 20
DRAIN_SECONDS = 2.0


class _BodyTooLarge(Exception):
    """Raised from `receive` into the application, caught again here."""


class BodyLimitMiddleware:
    def __init__(
        self, app: ASGIApp, max_bytes: int, *, exempt_prefixes: tuple[str, ...] = ("/files/",)
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.exempt_prefixes = exempt_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("path", "").startswith(self.exempt_prefixes):
            await self.app(scope, receive, send)
            return
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    break
                if declared > self.max_bytes:
                    if declared <= DRAIN_BYTES:
                        await _drain(receive)
                    await self._refuse(send)
                    return
                break

        received = 0
        started = complete = False

        async def counting_receive() -> Message:
            nonlocal received, complete
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                complete = not message.get("more_body", False)
                if received > self.max_bytes:
                    raise _BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except _BodyTooLarge:
            if started:  # the application answered before reading it all: nothing left to change
                return
            if not complete:
                await _drain(receive)
            await self._refuse(send)

    async def _refuse(self, send: Send) -> None:
        error = {
            "message": f"The request body is larger than {self.max_bytes} bytes.",
            "extensions": {
                "code": ErrorCode.PAYLOAD_TOO_LARGE.value,
                "retryable": False,
                "requestId": request_id_var.get(),
            },
        }
        body = json.dumps({"errors": [error]}, separators=(",", ":")).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


async def _drain(receive: Receive) -> None:
    """Read and drop what is left of the request body, within bounds."""
    dropped = 0
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(DRAIN_SECONDS):
            while dropped <= DRAIN_BYTES:
                message = await receive()
                if message["type"] != "http.request":
                    return
                dropped += len(message.get("body", b""))
                if not message.get("more_body", False):
                    return
