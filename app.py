"""Assembles the ASGI application: routes, middleware, the GraphQL endpoint and the in-process workers."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, Gauge, generate_latest
from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL

from config import Settings, load_settings
from domain.limits import SubscriptionSlots
from domain.workers import run_workers
from endpoints.context import HttpContexts
from endpoints.graphql_http import GraphQLHttp, QueryLimits
from endpoints.graphql_ws import GraphQLWebSocket
from middleware.body_limit import BodyLimitMiddleware
from middleware.response_headers import ResponseHeadersMiddleware
from schema.root import build_schema
from wiring import (
    build_authenticator,
    build_followers,
    build_rate_limits,
    build_runner,
    build_services,
    build_task_endpoint,
    tasks_endpoint_enabled,
)

log = logging.getLogger("genmedia.app")
SUBSCRIPTION_WATCHES = Gauge(
    "genmedia_subscription_watches", "Docstore watches the subscription hub holds (one per followed job)"
)


def create_app(settings: Settings | None = None) -> Starlette:
    """The API process: GraphQL, health, metrics, signed files, and `settings.workers` job workers."""
    settings = settings or load_settings()
    services = build_services(settings)
    authenticator = build_authenticator(services)
    limits = QueryLimits(
        max_depth=settings.max_query_depth,
        max_aliases=settings.max_query_aliases,
        max_tokens=settings.max_query_tokens,
        max_cost=settings.max_query_cost,
        max_page=settings.max_page_size,
    )
    # The WebSocket path validates through strawberry's extensions: depth, aliases and tokens come
    # from these settings; the cost rule runs in GraphQLWebSocket before an operation starts.
    schema = build_schema(
        max_depth=limits.max_depth, max_aliases=limits.max_aliases, max_tokens=limits.max_tokens
    )
    rate_limits = build_rate_limits(settings)
    graphql_http = GraphQLHttp(schema, HttpContexts(services, authenticator), limits, rate_limits)
    graphql_ws = GraphQLWebSocket(
        schema,
        services,
        authenticator,
        query_limits=limits,
        rate_limits=rate_limits,
        subscription_slots=SubscriptionSlots(settings.ws_max_subscriptions_per_user),
        subscription_protocols=[GRAPHQL_TRANSPORT_WS_PROTOCOL],
        allowed_origins=settings.cors_origins,
        connection_init_wait_timeout=timedelta(seconds=settings.ws_init_timeout_seconds),
        max_subscriptions_per_connection=settings.ws_max_subscriptions_per_socket,
    )

    async def healthz(request: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(request: Request) -> Response:
        checks: dict[str, str] = {}
        for name, probe in (("docstore", services.docs.ping), ("blobs", services.blobs.ping)):
            try:
                await asyncio.wait_for(probe(), timeout=2.0)
                checks[name] = "ok"
            except Exception as error:  # readiness reports, never raises
                checks[name] = f"unavailable: {type(error).__name__}"
        ready = all(value == "ok" for value in checks.values())
        return JSONResponse(
            {"status": "ready" if ready else "unavailable", "checks": checks}, 200 if ready else 503
        )

    async def metrics(request: Request) -> Response:
        SUBSCRIPTION_WATCHES.set(services.jobs_hub.watch_count)
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        # Everything loaded so far (modules, schema, settings) lives for the whole process: freeze it
        # out of the collector's scans, and collect young objects less eagerly. Full collections
        # otherwise stall the event loop for hundreds of ms under subscription fan-out.
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)
        workers: asyncio.Task[None] | None = None
        if settings.workers > 0:
            runner = build_runner(services)
            workers = asyncio.create_task(
                run_workers(
                    services.queue,
                    runner,
                    concurrency=settings.workers,
                    sweep_seconds=max(settings.job_lease_seconds / 2, 0.5),
                    followers=build_followers(services),
                ),
                name="workers",
            )
        try:
            yield
        finally:
            if workers is not None:
                workers.cancel()
                await asyncio.gather(workers, return_exceptions=True)
            await services.jobs_hub.close()
            await services.runs_hub.close()
            await services.docs.close()
            for adapter in (services.blobs, services.generator, services.queue):
                close = getattr(adapter, "close", None)
                if close is not None:
                    await close()

    routes: list[Any] = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/v1/graphql", graphql_http, methods=["GET", "POST"]),
        WebSocketRoute("/v1/graphql", graphql_ws),
    ]
    if tasks_endpoint_enabled(settings):
        from endpoints.tasks import TASKS_PATH

        endpoint = build_task_endpoint(services, build_runner(services))
        routes.append(Route(TASKS_PATH, endpoint.handle, methods=["POST"]))
    if settings.blobs == "local":
        from backends.blobs.localfs import files_route
        from backends.blobs.localfs_uploads import upload_route

        routes.append(files_route(services.blobs))  # type: ignore[arg-type]
        routes.append(upload_route(services.blobs))  # type: ignore[arg-type]
    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.services = services
    # Each add wraps the ones before: a request meets response headers (request id, docstore call
    # count, security headers) → CORS → body size (every path but /files) → the routes.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PUT"],  # PUT: uploads to signed /files links
            allow_headers=["Authorization", "Content-Type", "X-API-Key", "X-Request-Id"],
            expose_headers=["X-Request-Id", "Retry-After", "X-Docstore-Calls"],
            max_age=600,
        )
    app.add_middleware(ResponseHeadersMiddleware, hsts=settings.base_url.startswith("https://"))
    return app
