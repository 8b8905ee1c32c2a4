"""Building the per-request (or per-connection) context that resolvers receive."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request

from domain.admin import RequestInfo
from domain.authn import Authenticator
from domain.errors import StudioError
from middleware.request_id import new_request_id, request_id_var
from resolvers.loaders import make_loaders
from resolvers.services import Services
from schema.context import StudioContext


def new_context(services: Services, request: Any, response: Any) -> StudioContext:
    return StudioContext(
        services=services,
        request_id=request_id_var.get() or new_request_id(),
        loaders=make_loaders(services.docs),
        request=request,
        response=response,
    )


def request_info(context: StudioContext) -> RequestInfo:
    """The request id and client address of a request, for the audit log."""
    client = getattr(context.request, "client", None)
    return RequestInfo(request_id=context.request_id, ip=getattr(client, "host", None))


class HttpContexts:
    """Contexts for HTTP requests: the caller comes from the Authorization or X-API-Key header."""

    def __init__(self, services: Services, authenticator: Authenticator) -> None:
        self._services = services
        self._authenticator = authenticator

    async def __call__(self, request: Request, response: Any) -> StudioContext:
        context = new_context(self._services, request, response)
        try:
            context.principal, _ = await self._authenticator.session_from_headers(
                request.headers.get("authorization"), request.headers.get("x-api-key"), request_info(context)
            )
        except StudioError as error:
            context.auth_error = error
        return context
