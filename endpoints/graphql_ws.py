"""The GraphQL WebSocket endpoint (graphql-transport-ws): strawberry's protocol handling, our auth."""

from __future__ import annotations

from typing import Any

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError

from domain.authn import Authenticator
from domain.errors import StudioError
from endpoints.context import new_context
from resolvers.services import Services
from schema.context import StudioContext


class GraphQLWebSocket(GraphQL):
    """Authenticates once, at `connection_init`; every subscribe is then checked by its resolver."""

    def __init__(
        self, schema: strawberry.Schema, services: Services, authenticator: Authenticator, **options: Any
    ) -> None:
        super().__init__(schema, graphql_ide=None, **options)
        self.services = services
        self.authenticator = authenticator

    async def get_context(self, request: Request | WebSocket, response: Any) -> StudioContext:  # type: ignore[override]
        return new_context(self.services, request, response)

    async def on_ws_connect(self, context: StudioContext) -> dict[str, Any] | None:  # type: ignore[override]
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("authorization") or params.get("Authorization")
        if not header and context.request is not None:
            header = context.request.headers.get("authorization")
        if not isinstance(header, str) or not header:
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": "Send authorization in connection_init."}
            )
        try:
            context.principal = await self.authenticator.from_authorization(header)
        except StudioError as error:
            raise ConnectionRejectionError({"code": error.code.value, "message": error.message}) from None
        return {"userId": context.principal.id if context.principal else None}
