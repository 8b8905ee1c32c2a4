"""The headers every HTTP response carries, stamped in one pass: X-Request-Id, X-Docstore-Calls and
the security headers.

One send wrapper instead of three: on the leanest request (`{ me { id } }`) each extra wrapper
costs a few per cent of throughput. The request id (HTTP and WebSocket) and the docstore call
count are set up here too, in context variables the rest of the request reads.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backends.docstore.counting import calls_var
from middleware.request_id import SAFE_ID, new_request_id, request_id_var
from middleware.security_headers import security_headers


class ResponseHeadersMiddleware:
    """Takes a sane incoming X-Request-Id (from a proxy) or makes one, and stamps every response."""

    def __init__(self, app: ASGIApp, *, hsts: bool = False) -> None:
        self.app = app
        self.security = security_headers(hsts=hsts)
        self.security_names = {name for name, _ in self.security}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        incoming = ""
        for name, value in scope.get("headers", ()):
            if name == b"x-request-id":
                incoming = value.decode("latin-1")
                break
        request_id = incoming if SAFE_ID.match(incoming) else new_request_id()
        id_token = request_id_var.set(request_id)
        scope.setdefault("state", {})["request_id"] = request_id
        if kind == "websocket":
            try:
                await self.app(scope, receive, send)
            finally:
                request_id_var.reset(id_token)
            return
        calls = [0]
        calls_token = calls_var.set(calls)

        async def stamped(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.append((b"x-request-id", request_id.encode()))
                headers.append((b"x-docstore-calls", str(calls[0]).encode()))
                if present & self.security_names:  # a response that set its own keeps it (GraphiQL's CSP)
                    headers.extend(header for header in self.security if header[0] not in present)
                else:
                    headers.extend(self.security)
                message["headers"] = headers
            await send(message)

        try:
            await self.app(scope, receive, stamped)
        finally:
            calls_var.reset(calls_token)
            request_id_var.reset(id_token)
