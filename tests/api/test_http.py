"""The HTTP transport as clients meet it: GET queries, GraphiQL, and coded errors for malformed requests."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import assert_error
from tests.support.client import StudioClient


async def raw(
    client: StudioClient, method: str, *, headers: dict[str, str] | None = None, **options: object
) -> httpx.Response:
    async with httpx.AsyncClient(base_url=client.base_url, timeout=10) as http:
        merged = {**client.headers, **(headers or {})}
        return await http.request(method, "/v1/graphql", headers=merged, **options)  # type: ignore[arg-type]


async def test_a_query_can_be_sent_with_get(user: StudioClient) -> None:
    query = "query($n: Int) { me { role } jobs(first: $n) { totalCount } }"
    response = await raw(user, "GET", params={"query": query, "variables": '{"n": 2}'})
    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"role": "USER"}, "jobs": {"totalCount": 0}}}


async def test_a_browser_gets_graphiql(anonymous: StudioClient) -> None:
    response = await raw(anonymous, "GET", headers={"Accept": "text/html"})
    assert response.status_code == 200 and "graphiql" in response.text.lower()


async def test_a_mutation_sent_with_get_is_refused(user: StudioClient) -> None:
    response = await raw(
        user, "GET", params={"query": 'mutation { generateText(input: {prompt: "x"}) { id } }'}
    )
    assert_error(response.json()["errors"][0], "BAD_USER_INPUT")
    jobs = await user.data("{ jobs { totalCount } }")
    assert jobs["jobs"]["totalCount"] == 0


async def test_a_subscription_sent_over_http_points_to_websocket(user: StudioClient) -> None:
    body = await user.execute("subscription { myJobs { job { id } } }")
    assert_error(body["errors"][0], "BAD_USER_INPUT")
    assert "WebSocket" in body["errors"][0]["message"]


@pytest.mark.parametrize(
    ("content", "content_type"),
    [
        ("{not json", "application/json"),
        ("[]", "application/json"),
        ('{"query": 42}', "application/json"),
        ('{"query": "{ me { id } }", "variables": [1]}', "application/json"),
        ("query { me { id } }", "text/plain"),
    ],
)
async def test_a_malformed_request_gets_400_with_a_code(
    user: StudioClient, content: str, content_type: str
) -> None:
    response = await raw(user, "POST", content=content, headers={"Content-Type": content_type})
    assert response.status_code == 400
    (error,) = response.json()["errors"]
    assert_error(error, "BAD_USER_INPUT")
    assert error["extensions"]["requestId"] == response.headers["x-request-id"]


async def test_an_ambiguous_document_asks_for_an_operation_name(user: StudioClient) -> None:
    body = await user.execute("query A { me { id } } query B { me { role } }")
    assert_error(body["errors"][0], "BAD_USER_INPUT")
    response = await raw(
        user, "POST", json={"query": "query A { me { id } } query B { me { role } }", "operationName": "B"}
    )
    assert response.json() == {"data": {"me": {"role": "USER"}}}


async def test_a_document_with_too_many_tokens_is_too_complex(user: StudioClient) -> None:
    fields = " ".join(f"a{i}: me {{ id }}" for i in range(2000))
    body = await user.execute("{ " + fields + " }")
    assert_error(body["errors"][0], "QUERY_TOO_COMPLEX")


async def test_every_response_names_its_request_id_and_honours_a_sane_incoming_one(
    user: StudioClient,
) -> None:
    response = await raw(
        user,
        "POST",
        json={"query": "{ me { id } }"},
        headers={"X-Request-Id": "trace-abc-123"},
    )
    assert response.headers["x-request-id"] == "trace-abc-123"
    hostile = await raw(user, "POST", json={"query": "{ me { id } }"}, headers={"X-Request-Id": "<script> x"})
    assert hostile.headers["x-request-id"] != "<script> x" and json.loads(hostile.text)["data"]
