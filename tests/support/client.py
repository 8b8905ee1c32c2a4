"""The one GraphQL client the tests use: HTTP queries and graphql-transport-ws subscriptions."""

from __future__ import annotations

import asyncio
import json
import ssl
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import websockets

# One TLS context for every request: httpx would build (and load CA files for) one per client, ~20 ms each.
_TLS = ssl.create_default_context()


class GraphQLErrors(AssertionError):
    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__(json.dumps(errors, indent=1))
        self.errors = errors


class StudioClient:
    """Speaks to a running studio as a front end would."""

    def __init__(self, base_url: str, token: str | None = None) -> None:
        self.base_url = base_url
        self.token = token

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> httpx.Response:
        async with httpx.AsyncClient(base_url=self.base_url, timeout=30, verify=_TLS) as http:
            return await http.post(
                "/v1/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers
            )

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The whole response body ({data, errors})."""
        response = await self.post(query, variables)
        assert response.status_code == 200, response.text
        return dict(response.json())

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The data of a response that must have no errors."""
        body = await self.execute(query, variables)
        if body.get("errors"):
            raise GraphQLErrors(body["errors"])
        return dict(body["data"])

    async def error(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        """The first error of a response that must have one."""
        body = await self.execute(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        return dict(body["errors"][0])

    @asynccontextmanager
    async def socket(self, *, init_payload: dict[str, Any] | None = None) -> AsyncIterator[Subscriptions]:
        url = self.base_url.replace("http", "ws", 1) + "/v1/graphql"
        async with websockets.connect(
            url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]
        ) as ws:
            payload = (
                init_payload
                if init_payload is not None
                else ({"authorization": f"Bearer {self.token}"} if self.token else {})
            )
            await ws.send(json.dumps({"type": "connection_init", "payload": payload}))
            yield Subscriptions(ws)


class KeyClient(StudioClient):
    """A client that signs with an API key: `X-API-Key` on HTTP, `{"apiKey": ...}` in `connection_init`."""

    def __init__(self, base_url: str, secret: str) -> None:
        super().__init__(base_url)
        self.secret = secret

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.secret}

    def socket(self, *, init_payload: dict[str, Any] | None = None) -> Any:
        return super().socket(init_payload={"apiKey": self.secret} if init_payload is None else init_payload)


class Subscriptions:
    """One graphql-transport-ws connection."""

    def __init__(self, ws: websockets.ClientConnection) -> None:
        self.ws = ws
        self._next_id = 0
        self.acked = False

    async def ack(self, timeout: float = 10) -> dict[str, Any]:
        message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
        self.acked = message.get("type") == "connection_ack"
        return dict(message)

    async def subscribe(self, query: str, variables: dict[str, Any] | None = None) -> str:
        self._next_id += 1
        op_id = str(self._next_id)
        message = {
            "id": op_id,
            "type": "subscribe",
            "payload": {"query": query, "variables": variables or {}},
        }
        await self.ws.send(json.dumps(message))
        return op_id

    async def messages(self, op_id: str, timeout: float = 30) -> list[dict[str, Any]]:
        """Every message of one operation until its `complete` or `error`."""
        received: list[dict[str, Any]] = []
        while True:
            message = json.loads(await asyncio.wait_for(self.ws.recv(), timeout))
            if message.get("id") != op_id:
                continue
            received.append(message)
            if message["type"] in ("complete", "error"):
                return received

    async def complete(self, op_id: str) -> None:
        await self.ws.send(json.dumps({"id": op_id, "type": "complete"}))
