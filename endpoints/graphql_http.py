"""The GraphQL HTTP endpoint: a lean path from JSON to result, every failure a coded GraphQL error.

Documents are parsed and validated (depth, aliases, tokens, cost) once and kept in an LRU cache,
the caller is rate-limited by operation class before anything runs (HTTP 429 + Retry-After),
execution goes straight to graphql-core with strawberry's resolvers, and errors go through the one
formatter.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import strawberry
from graphql import (
    DocumentNode,
    ExecutionResult,
    GraphQLError,
    OperationDefinitionNode,
    OperationType,
    execute,
    get_operation_ast,
    parse,
    specified_rules,
    validate,
)
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.types import Receive, Scope, Send
from strawberry.execution import optimized_is_awaitable
from strawberry.extensions.max_aliases import create_validator as aliases_rule
from strawberry.extensions.query_depth_limiter import create_validator as depth_rule
from strawberry.http.ides import get_graphql_ide_html

from domain.errors import ErrorCode, StudioError
from domain.limits import OperationClass, RateLimits
from endpoints.admission import admit, operation_class, scope_refusal
from endpoints.query_cost import query_cost_rule
from middleware.request_id import request_id_var
from schema.errors import classify

ContextFactory = Callable[[Request, Any], Awaitable[Any]]


@dataclass(frozen=True)
class QueryLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_tokens: int = 5000
    max_cost: int = 5000
    default_page: int = 20  # what a connection without first/last costs
    max_page: int = 100  # what first/last given by a variable costs (the largest page)
    cache_size: int = 512

    def rules(self) -> list[Any]:
        """graphql-core validation rules: the specified ones, then depth, aliases and cost."""
        return [
            *specified_rules,
            depth_rule(self.max_depth, None),
            aliases_rule(self.max_aliases),
            query_cost_rule(self.max_cost, default_page=self.default_page, variable_page=self.max_page),
        ]


# GraphiQL loads React and GraphiQL from unpkg with inline bootstrapping; every other response gets the
# strict policy of middleware/security_headers.py.
GRAPHIQL_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' https://unpkg.com; "
    "style-src 'self' 'unsafe-inline' https://unpkg.com; img-src 'self' data: https:; "
    "font-src 'self' data: https://unpkg.com; connect-src 'self' ws: wss:; "
    "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@dataclass(frozen=True)
class _Prepared:
    document: DocumentNode | None
    errors: list[GraphQLError]
    # (operationName, method) -> (refusal, (class, slots)): worked out on first use
    plans: dict[tuple[str | None, str], tuple[GraphQLError | None, tuple[OperationClass, int]]] = field(
        default_factory=dict
    )


def _coded(message: str, code: ErrorCode) -> GraphQLError:
    return GraphQLError(message, original_error=StudioError(code, message))


class GraphQLHttp:
    """ASGI app for `GET|POST /v1/graphql` (GraphiQL for browsers)."""

    def __init__(
        self,
        schema: strawberry.Schema,
        make_context: ContextFactory,
        limits: QueryLimits,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self._schema = schema
        self._graphql_schema = schema._schema
        self._executor = schema.execution_context_class
        self._make_context = make_context
        self._limits = limits
        self._rate_limits = rate_limits
        self._rules = limits.rules()
        self._cache: OrderedDict[str, _Prepared] = OrderedDict()
        self._ide = get_graphql_ide_html(graphql_ide="graphiql")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        response = await self._handle(request)
        await response(scope, receive, send)

    async def _handle(self, request: Request) -> Response:
        if request.method == "GET" and "query" not in request.query_params:
            if "text/html" in request.headers.get("accept", ""):
                return HTMLResponse(self._ide, headers={"content-security-policy": GRAPHIQL_CSP})
            return self._reply(
                {"errors": [self._format(_coded("Send a query.", ErrorCode.BAD_USER_INPUT))]}, 400
            )
        try:
            query, variables, operation_name = await self._read(request)
        except StudioError as error:
            failure = GraphQLError(error.message, original_error=error)
            return self._reply({"errors": [self._format(failure)]}, 400)
        prepared = self._prepare(query)
        plan = prepared.plans.get((operation_name, request.method))
        if plan is None:
            plan = prepared.plans[(operation_name, request.method)] = self._plan(
                prepared, operation_name, request.method
            )
        refusal, (kind, slots) = plan
        context = await self._make_context(request, None)
        client = request.client.host if request.client else None
        limited = await admit(self._rate_limits, kind, slots, getattr(context, "principal", None), client)
        if limited is not None:
            failure = GraphQLError(limited.message, original_error=limited)
            return self._reply({"errors": [self._format(failure)]}, 429, retry_after=limited.retry_after)
        if prepared.errors:
            return self._reply({"data": None, "errors": [self._format(e) for e in prepared.errors]})
        assert prepared.document is not None
        if refusal is not None:
            return self._reply({"data": None, "errors": [self._format(refusal)]})
        denied = scope_refusal(getattr(context, "principal", None), prepared.document, operation_name)
        if denied is not None:
            return self._reply(
                {"data": None, "errors": [self._format(GraphQLError(denied.message, original_error=denied))]}
            )
        result = execute(
            self._graphql_schema,
            prepared.document,
            context_value=context,
            variable_values=variables,
            operation_name=operation_name,
            executor_class=self._executor,
            is_awaitable=optimized_is_awaitable,  # type: ignore[arg-type]
        )
        if optimized_is_awaitable(result):
            result = await result  # type: ignore[misc]
        assert isinstance(result, ExecutionResult)
        body: dict[str, Any] = {"data": result.data}
        retry_after: float | None = None
        if result.errors:
            body["errors"] = [self._format(error) for error in result.errors]
            retry_after = _retry_after(body["errors"])
        return self._reply(body, retry_after=retry_after)

    def _plan(
        self, prepared: _Prepared, operation_name: str | None, method: str
    ) -> tuple[GraphQLError | None, tuple[OperationClass, int]]:
        """What a document asks for, worked out once per operation name and method: the refusal (if
        it may not run this way) and the rate-limit class it is charged as (invalid ones: one read)."""
        if prepared.document is None or prepared.errors:
            return None, (OperationClass.READ, 1)
        operation = get_operation_ast(prepared.document, operation_name)
        refusal = self._refuse(operation, method, operation_name)
        if refusal is not None:
            return refusal, (OperationClass.READ, 1)
        return None, operation_class(prepared.document, operation)

    async def _read(self, request: Request) -> tuple[str, dict[str, Any] | None, str | None]:
        if request.method == "GET":
            params = request.query_params
            raw_variables = params.get("variables")
            try:
                variables = json.loads(raw_variables) if raw_variables else None
            except ValueError:
                raise StudioError(
                    ErrorCode.BAD_USER_INPUT, "variables must be JSON", field="variables"
                ) from None
            return self._fields(params.get("query"), variables, params.get("operationName"))
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type not in ("application/json", "application/graphql-response+json"):
            raise StudioError(ErrorCode.BAD_USER_INPUT, "POST a JSON body (Content-Type: application/json).")
        try:
            payload = json.loads(await request.body())
        except ValueError:
            raise StudioError(ErrorCode.BAD_USER_INPUT, "the body is not valid JSON") from None
        if not isinstance(payload, dict):
            raise StudioError(
                ErrorCode.BAD_USER_INPUT, "send one operation as a JSON object; batches are not served"
            )
        return self._fields(payload.get("query"), payload.get("variables"), payload.get("operationName"))

    @staticmethod
    def _fields(
        query: Any, variables: Any, operation_name: Any
    ) -> tuple[str, dict[str, Any] | None, str | None]:
        if not isinstance(query, str) or not query.strip():
            raise StudioError(ErrorCode.BAD_USER_INPUT, "no GraphQL query in the request", field="query")
        if variables is not None and not isinstance(variables, dict):
            raise StudioError(ErrorCode.BAD_USER_INPUT, "variables must be a JSON object", field="variables")
        if operation_name is not None and not isinstance(operation_name, str):
            raise StudioError(
                ErrorCode.BAD_USER_INPUT, "operationName must be a string", field="operationName"
            )
        return query, variables, operation_name

    def _prepare(self, query: str) -> _Prepared:
        cached = self._cache.get(query)
        if cached is not None:
            self._cache.move_to_end(query)
            return cached
        try:
            document = parse(query, max_tokens=self._limits.max_tokens)
        except GraphQLError as error:
            prepared = _Prepared(None, [error])
        else:
            prepared = _Prepared(document, validate(self._graphql_schema, document, self._rules))
        self._cache[query] = prepared
        if len(self._cache) > self._limits.cache_size:
            self._cache.popitem(last=False)
        return prepared

    @staticmethod
    def _refuse(
        operation: OperationDefinitionNode | None, method: str, name: str | None
    ) -> GraphQLError | None:
        if operation is None:
            which = (
                f"no operation named {name!r}" if name else "several operations: name one in operationName"
            )
            return _coded(f"The document has {which}.", ErrorCode.BAD_USER_INPUT)
        if operation.operation is OperationType.SUBSCRIPTION:
            return _coded(
                "Subscriptions are served over WebSocket (graphql-transport-ws).", ErrorCode.BAD_USER_INPUT
            )
        if operation.operation is OperationType.MUTATION and method == "GET":
            return _coded("Mutations must be sent with POST.", ErrorCode.BAD_USER_INPUT)
        return None

    @staticmethod
    def _format(error: GraphQLError) -> dict[str, Any]:
        return classify(error, request_id_var.get()).formatted  # type: ignore[return-value]

    @staticmethod
    def _reply(body: dict[str, Any], status: int = 200, *, retry_after: float | None = None) -> Response:
        response = Response(
            json.dumps(body, separators=(",", ":"), default=str),
            status_code=status,
            media_type="application/json",
        )
        if retry_after is not None:
            response.headers["retry-after"] = str(max(int(retry_after + 0.999), 1))
        return response


def _retry_after(errors: list[dict[str, Any]]) -> float | None:
    """The longest `retryAfter` of the RATE_LIMITED errors a result carries (for a Retry-After header)."""
    waits = [
        float(extensions["retryAfter"])
        for error in errors
        if isinstance(extensions := error.get("extensions"), dict)
        and extensions.get("code") == ErrorCode.RATE_LIMITED.value
        and isinstance(extensions.get("retryAfter"), int | float)
    ]
    return max(waits) if waits else None
