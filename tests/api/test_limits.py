"""Limits as clients meet them, over real HTTP and WebSocket against a server with tiny limits.

Rate limits per caller and operation class (429 + Retry-After on HTTP, an `error` on WebSocket),
the request body size (413 before parsing), the query cost, the WebSocket limits (operations per
socket, subscriptions per user, connection_init timeout, token expiry), security headers and CORS.
"""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.conftest import assert_error
from tests.support.client import StudioClient, Subscriptions
from tests.support.server import StudioProcess, mint_token, serving

pytestmark = pytest.mark.timeout(20)

ORIGIN = "https://app.example.com"
LIMITS = {
    "GENMEDIA_WORKERS": "0",  # jobs stay QUEUED: these tests only count requests
    "GENMEDIA_RATE_GENERATE": "2/minute",
    "GENMEDIA_RATE_READ": "30/minute",
    "GENMEDIA_RATE_SUBSCRIBE": "5/minute",
    "GENMEDIA_MAX_BODY_BYTES": "1024",
    "GENMEDIA_MAX_QUERY_COST": "50",
    "GENMEDIA_MAX_QUERY_DEPTH": "4",
    "GENMEDIA_MAX_QUERY_TOKENS": "250",
    "GENMEDIA_WS_MAX_SUBSCRIPTIONS_PER_SOCKET": "2",
    "GENMEDIA_WS_MAX_SUBSCRIPTIONS_PER_USER": "3",
    "GENMEDIA_WS_INIT_TIMEOUT_SECONDS": "1",
    "GENMEDIA_WS_MAX_MESSAGE_BYTES": "2048",
    "GENMEDIA_CORS_ORIGINS": ORIGIN,
    "GENMEDIA_PUBLIC_URL": "https://studio.example.com",
}
GENERATE = 'mutation { generateText(input: {prompt: "a haiku"}) { id } }'
MY_JOBS = "subscription { myJobs { job { id status } } }"


@pytest.fixture(scope="module")
def limited_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("limited") / "data"


@pytest.fixture(scope="module")
def limited(limited_dir: Path) -> Iterator[StudioProcess]:
    with serving(limited_dir, LIMITS) as server:
        yield server


async def new_user(limited: StudioProcess, limited_dir: Path, *, hours: float = 1.0) -> StudioClient:
    """A fresh user: every rate-limit budget untouched."""
    email = f"limits-{uuid.uuid4().hex[:12]}@example.com"
    return StudioClient(limited.base_url, await mint_token(limited_dir, email, hours=hours))


@pytest.fixture
async def user(limited: StudioProcess, limited_dir: Path) -> StudioClient:
    return await new_user(limited, limited_dir)


async def http(
    server: StudioProcess, method: str, path: str = "/v1/graphql", **options: Any
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
        return await client.request(method, path, **options)


def assert_rate_limited(response: httpx.Response) -> dict[str, Any]:
    """A request refused before it ran: 429, one RATE_LIMITED error, Retry-After = retryAfter."""
    assert response.status_code == 429, response.text
    body = response.json()
    assert "data" not in body, body
    (error,) = body["errors"]
    assert_error(error, "RATE_LIMITED")
    retry_after = error["extensions"]["retryAfter"]
    assert isinstance(retry_after, int) and 1 <= retry_after <= 60, error
    assert response.headers["retry-after"] == str(retry_after)
    return dict(error)


@pytest.fixture
async def socket(user: StudioClient) -> AsyncIterator[Subscriptions]:
    async with user.socket() as subs:
        assert (await subs.ack())["type"] == "connection_ack"
        yield subs


async def final_message(subs: Subscriptions, op_id: str) -> dict[str, Any]:
    """The `error` (or `complete`) ending one operation."""
    return (await subs.messages(op_id, timeout=5))[-1]


async def still_open(subs: Subscriptions) -> None:
    await subs.ws.send(json.dumps({"type": "ping"}))
    assert json.loads(await asyncio.wait_for(subs.ws.recv(), 5)) == {"type": "pong"}


# ------------------------------------------------------------------ rate limits over HTTP


async def test_generate_past_the_rate_is_429_with_retry_after_and_runs_nothing(user: StudioClient) -> None:
    for _ in range(2):
        assert (await user.post(GENERATE)).status_code == 200
    refused = await user.post(GENERATE)
    error = assert_rate_limited(refused)
    assert error["extensions"]["retryable"] is True
    assert (await user.data("{ jobs { totalCount } }"))["jobs"]["totalCount"] == 2
    # Reads are another class with their own budget.
    assert (await user.data("{ me { id } }"))["me"]["id"]


async def test_each_generate_field_takes_a_slot_and_mixed_documents_count_as_generate(
    user: StudioClient,
) -> None:
    two = 'mutation { a: generateText(input: {prompt: "a"}) { id } b: generateText(input: {prompt: "b"}) { id } }'
    assert set((await user.data(two)).keys()) == {"a", "b"}
    mixed = 'mutation { g: generateText(input: {prompt: "c"}) { id } c: cancelJob(id: "x") { id } }'
    assert_rate_limited(await user.post(mixed))
    assert (await user.data("{ jobs { totalCount } }"))["jobs"]["totalCount"] == 2


async def test_more_generations_in_one_request_than_the_rate_allows_is_never_retryable(
    user: StudioClient,
) -> None:
    three = (
        "mutation { "
        + " ".join(f'g{i}: generateText(input: {{prompt: "{i}"}}) {{ id }}' for i in range(3))
        + " }"
    )
    response = await user.post(three)
    assert response.status_code == 429
    (error,) = response.json()["errors"]
    assert_error(error, "RATE_LIMITED")
    assert error["extensions"]["retryable"] is False and "retry-after" not in response.headers
    assert (await user.data("{ jobs { totalCount } }"))["jobs"]["totalCount"] == 0


async def test_users_have_separate_budgets(limited: StudioProcess, limited_dir: Path) -> None:
    first, second = await new_user(limited, limited_dir), await new_user(limited, limited_dir)
    for _ in range(2):
        assert (await first.post(GENERATE)).status_code == 200
    assert_rate_limited(await first.post(GENERATE))
    assert (await second.post(GENERATE)).status_code == 200


async def test_reads_are_limited_per_user_and_anonymous_callers_per_address(
    limited: StudioProcess, limited_dir: Path
) -> None:
    reader = await new_user(limited, limited_dir)
    statuses = [(await reader.post("{ me { id } }")).status_code for _ in range(31)]
    assert statuses[:30] == [200] * 30 and statuses[30] == 429
    assert_rate_limited(await reader.post("{ models { id } }"))
    # Anonymous callers share their address's budget (other tests may have spent some of it).
    anonymous = StudioClient(limited.base_url)
    for _ in range(31):
        response = await anonymous.post("{ models { id } }")
        if response.status_code == 429:
            break
        assert response.status_code == 200, response.text
    assert_rate_limited(response)
    # A signed-in caller from the same address still has their own budget.
    assert (await (await new_user(limited, limited_dir)).post("{ me { id } }")).status_code == 200


# ------------------------------------------------------------------ body size


async def test_a_body_over_the_limit_is_413_before_parsing(
    limited: StudioProcess, user: StudioClient
) -> None:
    padding = " " * 2000
    response = await http(limited, "POST", json={"query": "{ me { id } }" + padding}, headers=user.headers)
    assert response.status_code == 413
    (error,) = response.json()["errors"]
    assert error["extensions"] == {
        "code": "PAYLOAD_TOO_LARGE",
        "retryable": False,
        "requestId": response.headers["x-request-id"],
    }
    assert "1024" in error["message"]
    small = await http(limited, "POST", json={"query": "{ me { id } }"}, headers=user.headers)
    assert small.status_code == 200 and small.json()["data"]["me"]["id"]


async def test_a_chunked_body_is_counted_as_it_arrives(limited: StudioProcess) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        yield b'{"query": "{ me { id } }", "padding": "'
        for _ in range(8):
            yield b"x" * 400
        yield b'"}'

    response = await http(limited, "POST", content=chunks(), headers={"Content-Type": "application/json"})
    assert "content-length" not in response.request.headers
    assert response.status_code == 413
    assert response.json()["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


# ------------------------------------------------------------------ query cost


async def test_a_query_costing_more_than_the_limit_is_too_complex_and_names_its_cost(
    user: StudioClient,
) -> None:
    error = await user.error("{ assets(first: 100) { edges { node { id } } } }")
    assert_error(error, "QUERY_TOO_COMPLEX")
    assert "301" in error["message"] and "50" in error["message"]
    assert (await user.data("{ assets(first: 5) { edges { node { id } } } }"))["assets"]["edges"] == []
    # A page size from a variable counts as the largest page.
    error = await user.error("query($n: Int) { assets(first: $n) { edges { node { id } } } }", {"n": 1})
    assert_error(error, "QUERY_TOO_COMPLEX")


async def test_query_limits_apply_over_websocket(socket: Subscriptions) -> None:
    costly = "subscription { myJobs { " + " ".join(f"a{i}: job {{ id }}" for i in range(30)) + " } }"
    op_id = await socket.subscribe(costly)
    message = await final_message(socket, op_id)
    assert message["type"] == "error", message
    assert_error(message["payload"][0], "QUERY_TOO_COMPLEX")
    assert "61" in message["payload"][0]["message"]
    op_id = await socket.subscribe("query { assets(first: 100) { edges { node { id } } } }")
    assert_error((await final_message(socket, op_id))["payload"][0], "QUERY_TOO_COMPLEX")
    await still_open(socket)


async def test_depth_and_token_limits_are_settings_on_http_and_websocket(
    user: StudioClient, socket: Subscriptions
) -> None:
    deep = "{ jobs(first: 1) { edges { node { assets { owner { id } } } } } }"
    long = "{ me { " + "id " * 300 + "} }"
    for document, words in ((deep, "depth of 4"), (long, "more than 250 tokens")):
        error = await user.error(document)
        assert_error(error, "QUERY_TOO_COMPLEX")
        assert words in error["message"]
        op_id = await socket.subscribe(document)
        message = await final_message(socket, op_id)
        assert message["type"] == "error", message
        assert_error(message["payload"][0], "QUERY_TOO_COMPLEX")
    await still_open(socket)


# ------------------------------------------------------------------ WebSocket limits


async def test_operations_per_socket_are_limited_without_closing_it(socket: Subscriptions) -> None:
    first = await socket.subscribe(MY_JOBS)
    await socket.subscribe(MY_JOBS)
    third = await socket.subscribe(MY_JOBS)
    message = await final_message(socket, third)
    assert message["type"] == "error"
    assert_error(message["payload"][0], "RATE_LIMITED")
    assert message["payload"][0]["extensions"]["retryable"] is False
    await socket.complete(first)
    again = await socket.subscribe(MY_JOBS)
    with pytest.raises(TimeoutError):  # admitted: no error, it runs (waiting for job changes)
        await socket.messages(again, timeout=1)


async def test_subscription_starts_are_rate_limited_with_retry_after(socket: Subscriptions) -> None:
    for _ in range(5):
        op_id = await socket.subscribe(MY_JOBS)
        await socket.complete(op_id)
    refused = await socket.subscribe(MY_JOBS)
    message = await final_message(socket, refused)
    assert message["type"] == "error"
    error = message["payload"][0]
    assert_error(error, "RATE_LIMITED")
    assert 1 <= error["extensions"]["retryAfter"] <= 60
    await still_open(socket)


async def test_live_subscriptions_per_user_are_limited_across_sockets(user: StudioClient) -> None:
    async with user.socket() as one, user.socket() as two:
        await one.ack()
        await two.ack()
        held = [await one.subscribe(MY_JOBS), await one.subscribe(MY_JOBS)]
        await still_open(one)  # both admitted before the other socket asks
        await two.subscribe(MY_JOBS)
        refused = await two.subscribe(MY_JOBS)
        message = await final_message(two, refused)
        assert message["type"] == "error"
        error = message["payload"][0]
        assert_error(error, "RATE_LIMITED")
        assert "retryAfter" not in error["extensions"] and error["extensions"]["retryable"] is False
        await one.complete(held[0])
        await still_open(one)  # messages are handled in order: the `complete` has been, the slot is free
        admitted = await two.subscribe(MY_JOBS)
        with pytest.raises(TimeoutError):  # no error: it runs (and waits for job changes)
            await two.messages(admitted, timeout=1)


async def test_generations_over_websocket_share_the_generate_budget(
    user: StudioClient, socket: Subscriptions
) -> None:
    for _ in range(2):
        assert (await user.post(GENERATE)).status_code == 200
    op_id = await socket.subscribe(GENERATE)
    message = await final_message(socket, op_id)
    assert message["type"] == "error"
    assert_error(message["payload"][0], "RATE_LIMITED")


async def test_a_websocket_message_over_the_limit_closes_the_socket(socket: Subscriptions) -> None:
    await socket.ws.send(json.dumps({"id": "big", "type": "subscribe", "payload": {"query": " " * 4096}}))
    with pytest.raises(websockets.ConnectionClosed):
        await asyncio.wait_for(socket.ws.recv(), 5)
    assert socket.ws.close_code == 1009


async def test_a_socket_without_connection_init_is_closed_after_the_timeout(limited: StudioProcess) -> None:
    url = limited.base_url.replace("http", "ws", 1) + "/v1/graphql"
    started = time.monotonic()
    async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]) as ws:
        with pytest.raises(websockets.ConnectionClosed):
            await asyncio.wait_for(ws.recv(), 5)
    assert ws.close_code == 4408
    assert time.monotonic() - started < 3


async def test_a_socket_is_closed_with_4403_when_its_token_expires(
    limited: StudioProcess, limited_dir: Path
) -> None:
    short = await new_user(limited, limited_dir, hours=2 / 3600)
    async with short.socket() as subs:
        assert (await subs.ack())["type"] == "connection_ack"
        await subs.subscribe(MY_JOBS)
        started = time.monotonic()
        with pytest.raises(websockets.ConnectionClosed):
            while True:
                await asyncio.wait_for(subs.ws.recv(), 8)
        assert subs.ws.close_code == 4403
        assert time.monotonic() - started < 5
    assert "Traceback" not in limited.log_path.read_text()


# ------------------------------------------------------------------ headers


@pytest.mark.parametrize(
    ("method", "path"), [("GET", "/healthz"), ("POST", "/v1/graphql"), ("GET", "/metrics")]
)
async def test_every_response_carries_security_headers(
    limited: StudioProcess, method: str, path: str
) -> None:
    options: dict[str, Any] = {"json": {"query": "{ models { id } }"}} if method == "POST" else {}
    response = await http(limited, method, path, **options)
    headers = response.headers
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"
    assert headers["content-security-policy"].startswith("default-src 'none'")
    assert headers["strict-transport-security"].startswith("max-age=")


async def test_graphiql_gets_a_csp_that_lets_it_load(limited: StudioProcess) -> None:
    response = await http(limited, "GET", headers={"Accept": "text/html"})
    assert response.status_code == 200
    csp = response.headers["content-security-policy"]
    assert "https://unpkg.com" in csp and "frame-ancestors 'none'" in csp
    assert response.headers["x-frame-options"] == "DENY"


async def test_cors_allows_the_configured_origins_only(limited: StudioProcess, user: StudioClient) -> None:
    preflight = {
        "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = await http(limited, "OPTIONS", headers={"Origin": ORIGIN, **preflight})
    assert allowed.status_code == 200
    assert allowed.headers["access-control-allow-origin"] == ORIGIN
    assert "authorization" in allowed.headers["access-control-allow-headers"].lower()
    other = await http(limited, "OPTIONS", headers={"Origin": "https://evil.example.com", **preflight})
    assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
    simple = await http(
        limited, "POST", json={"query": "{ me { id } }"}, headers={"Origin": ORIGIN, **user.headers}
    )
    assert simple.headers["access-control-allow-origin"] == ORIGIN
    assert "retry-after" in simple.headers["access-control-expose-headers"].lower()
