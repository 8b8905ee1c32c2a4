"""The GraphQL WebSocket endpoint (graphql-transport-ws): strawberry's protocol handling, our auth and limits.

On top of strawberry's handler, every `subscribe` message is admitted before it runs:

- at most `max_subscriptions_per_connection` operations at a time on one socket,
- the query cost limit (the same validation rule as HTTP),
- the caller's rate limit for the operation's class (`subscribe`, `generate` or `read`),
- at most `SubscriptionSlots.per_caller` live subscriptions per user across their sockets in this process.

A refused operation gets an `error` message with a coded error (RATE_LIMITED, QUERY_TOO_COMPLEX);
the socket stays open. The socket is closed with 4403 when the token or API key it was opened with
expires; an API key revoked meanwhile is refused (UNAUTHENTICATED) at the next `subscribe`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from datetime import datetime
from typing import Any, cast

import strawberry
from graphql import (
    DocumentNode,
    GraphQLError,
    OperationType,
    get_operation_ast,
    parse,
    validate,
)
from starlette.requests import Request
from starlette.websockets import WebSocket
from strawberry.asgi import GraphQL
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    SubscribeMessage,
)

from domain.access import Actor
from domain.authn import Authenticator
from domain.clock import utcnow
from domain.errors import ErrorCode, StudioError
from domain.limits import RateLimits, SubscriptionSlots
from endpoints.admission import admit, operation_class, scope_refusal
from endpoints.context import new_context, request_info
from endpoints.graphql_http import QueryLimits
from endpoints.query_cost import query_cost_rule
from resolvers.services import Services
from schema.context import StudioContext
from schema.errors import classify

TOKEN_EXPIRED = 4403


class StudioTransportWSHandler(BaseGraphQLTransportWSHandler[StudioContext, None]):
    """strawberry's graphql-transport-ws handler with admission of each operation and session expiry."""

    _expiry: asyncio.Task[None] | None = None
    _slots: dict[str, str] | None = None  # operation id -> the caller whose subscription slot it holds

    @property
    def endpoint(self) -> GraphQLWebSocket:
        return cast("GraphQLWebSocket", self.view)

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        await super().handle_connection_init(message)
        expires_at = self.context.extras.get("expires_at") if self.connection_acknowledged else None
        if isinstance(expires_at, datetime) and self._expiry is None:
            self._expiry = asyncio.create_task(self._close_at(expires_at))
            self._expiry.add_done_callback(self._task_done)

    async def _close_at(self, expires_at: datetime) -> None:
        delay = (expires_at - utcnow()).total_seconds()
        if delay > 0:
            await asyncio.sleep(delay)
        for operation_id in list(self.operations):
            await self.cleanup_operation(operation_id)
        await self.websocket.close(code=TOKEN_EXPIRED, reason="Token expired")

    async def shutdown(self) -> None:
        if self._expiry is not None and self._expiry is not asyncio.current_task():
            self._expiry.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._expiry
        await super().shutdown()

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        payload = message.get("payload")
        op_id = message.get("id")
        if (
            not self.connection_acknowledged
            or not isinstance(op_id, str)
            or op_id in self.operations
            or not isinstance(payload, dict)
            or not isinstance(payload.get("query"), str)
        ):
            await super().handle_subscribe(message)  # strawberry's protocol errors and closes
            return
        try:
            slot = await self._admit(payload["query"], payload.get("operationName"))
        except StudioError as error:
            await self._send_errors(op_id, [GraphQLError(error.message, original_error=error)])
            return
        except _Invalid as invalid:
            await self._send_errors(op_id, invalid.errors)
            return
        await super().handle_subscribe(message)
        if slot is not None:
            self._hold_slot(op_id, slot)

    async def _admit(self, query: str, operation_name: Any) -> str | None:
        """Raises the refusal; returns the caller whose subscription slot was taken, if one was."""
        endpoint = self.endpoint
        most = self.max_subscriptions_per_connection
        if most is not None and len(self.operations) >= most:
            raise StudioError(
                ErrorCode.RATE_LIMITED,
                f"At most {most} operations run at a time on one socket; complete one first.",
                retryable=False,
                limit=most,
            )
        document, errors = endpoint.prepare(query)
        if errors:
            raise _Invalid(errors)
        if document is None:
            return None  # a syntax error: strawberry closes the socket with 4400, as before
        name = operation_name if isinstance(operation_name, str) else None
        operation = get_operation_ast(document, name)
        if operation is None:
            return None  # strawberry reports the missing operation
        kind, slots = operation_class(document, operation)
        actor = await self._recheck_key()
        client = self.context.request.client if self.context.request is not None else None
        limited = await admit(endpoint.rate_limits, kind, slots, actor, client.host if client else None)
        if limited is not None:
            raise limited
        denied = scope_refusal(actor, document, name)
        if denied is not None:
            raise denied
        if operation.operation is not OperationType.SUBSCRIPTION or actor is None:
            return None
        endpoint.subscription_slots.acquire(actor.id)
        return actor.id

    async def _recheck_key(self) -> Actor | None:
        """The caller; an API key is checked again (cached 5 s), so a revoked key starts nothing more."""
        secret = self.context.extras.get("api_key")
        if isinstance(secret, str):
            self.context.principal, _ = await self.endpoint.authenticator.session_from_headers(
                None, secret, request_info(self.context)
            )
        return self.context.principal

    def _hold_slot(self, op_id: str, caller: str) -> None:
        """The slot is freed when the client completes the operation or its task ends, whichever is first."""
        operation = self.operations.get(op_id)
        if operation is None or operation.task is None:
            self.endpoint.subscription_slots.release(caller)
            return
        if self._slots is None:
            self._slots = {}
        self._slots[op_id] = caller
        task = operation.task
        task.add_done_callback(lambda _: self._free_slot(op_id, task))

    def _free_slot(self, op_id: str, task: asyncio.Task[Any] | None = None) -> None:
        if self._slots is None or op_id not in self._slots:
            return
        operation = self.operations.get(op_id)
        if task is not None and operation is not None and operation.task is not task:
            return  # the id was reused by a newer operation that holds its own slot
        self.endpoint.subscription_slots.release(self._slots.pop(op_id))

    async def cleanup_operation(self, operation_id: str) -> None:
        operation = self.operations.get(operation_id)
        await super().cleanup_operation(operation_id)
        if operation is not None:
            self._free_slot(operation_id)

    async def _send_errors(self, op_id: str, errors: list[GraphQLError]) -> None:
        request_id = self.context.request_id
        await self.send_message(
            {
                "id": op_id,
                "type": "error",
                "payload": [classify(error, request_id).formatted for error in errors],
            }
        )


class _Invalid(Exception):
    def __init__(self, errors: list[GraphQLError]) -> None:
        super().__init__("invalid operation")
        self.errors = errors


class GraphQLWebSocket(GraphQL):
    """Authenticates once, at `connection_init`; every subscribe is admitted, then checked by its resolver."""

    graphql_transport_ws_handler_class = StudioTransportWSHandler  # type: ignore[assignment]

    def __init__(
        self,
        schema: strawberry.Schema,
        services: Services,
        authenticator: Authenticator,
        *,
        query_limits: QueryLimits | None = None,
        rate_limits: RateLimits | None = None,
        subscription_slots: SubscriptionSlots | None = None,
        **options: Any,
    ) -> None:
        super().__init__(schema, graphql_ide=None, **options)
        self.services = services
        self.authenticator = authenticator
        self.query_limits = query_limits or QueryLimits()
        self.rate_limits = rate_limits
        self.subscription_slots = subscription_slots or SubscriptionSlots(50)
        limits = self.query_limits
        self._rules = [
            query_cost_rule(limits.max_cost, default_page=limits.default_page, variable_page=limits.max_page)
        ]
        self._prepared: OrderedDict[str, tuple[DocumentNode | None, list[GraphQLError]]] = OrderedDict()

    def prepare(self, query: str) -> tuple[DocumentNode | None, list[GraphQLError]]:
        """The parsed document (None on a syntax error) and its limit errors; cached per query text.

        Too many tokens and too high a cost are errors of the operation (QUERY_TOO_COMPLEX); other
        syntax errors are left to strawberry.
        """
        cached = self._prepared.get(query)
        if cached is not None:
            self._prepared.move_to_end(query)
            return cached
        document: DocumentNode | None = None
        errors: list[GraphQLError] = []
        try:
            document = parse(query, max_tokens=self.query_limits.max_tokens)
        except GraphQLError as error:
            if "more than" in error.message and "tokens" in error.message:
                errors = [error]
        if document is not None:
            errors = validate(self.schema._schema, document, self._rules)  # type: ignore[attr-defined]
        prepared = self._prepared[query] = (document, errors)
        if len(self._prepared) > self.query_limits.cache_size:
            self._prepared.popitem(last=False)
        return prepared

    async def get_context(self, request: Request | WebSocket, response: Any) -> StudioContext:  # type: ignore[override]
        return new_context(self.services, request, response)

    async def on_ws_connect(self, context: StudioContext) -> dict[str, Any] | None:  # type: ignore[override]
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        header = params.get("authorization") or params.get("Authorization")
        api_key = params.get("apiKey")
        if not header and not api_key and context.request is not None:
            header = context.request.headers.get("authorization")
            api_key = context.request.headers.get("x-api-key")
        if not header and not api_key:
            raise ConnectionRejectionError(
                {"code": "UNAUTHENTICATED", "message": "Send authorization or apiKey in connection_init."}
            )
        try:
            context.principal, expires_at = await self.authenticator.session_from_headers(
                str(header) if header else None, str(api_key) if api_key else None, request_info(context)
            )
        except StudioError as error:
            raise ConnectionRejectionError({"code": error.code.value, "message": error.message}) from None
        context.extras["expires_at"] = expires_at  # the socket closes (4403) then
        if api_key:
            context.extras["api_key"] = str(api_key)  # checked again at every subscribe
        return {"userId": context.principal.id if context.principal else None}
