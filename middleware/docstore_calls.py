"""Adds X-Docstore-Calls: how many docstore round trips the request made (N+1 shows up at once)."""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backends.docstore.counting import calls_var


class DocstoreCallsMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        box = [0]
        token = calls_var.set(box)

        async def send_with_count(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-docstore-calls", str(box[0]).encode()),
                ]
            await send(message)

        try:
            await self.app(scope, receive, send_with_count)
        finally:
            calls_var.reset(token)
