"""Thousands of generated documents and variables: every answer is a coded error or data, never INTERNAL or a 500.

The documents come from the served schema itself (hypothesis-graphql): valid queries and mutations
with odd but well-typed arguments, invalid documents, and the studio's own operations with variables
of any JSON shape. They run against a server of their own with no workers (so generated jobs only
queue) and rate limits out of the way, as a signed-in user, a viewer and an anonymous caller.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import graphql
import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from schema.root import schema as studio_schema
from tests.support.server import StudioProcess, mint_token, start_server

CODES = {
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "RATE_LIMITED",
    "QUOTA_EXCEEDED",
    "CONTENT_BLOCKED",
    "UPSTREAM_UNAVAILABLE",
    "PAYLOAD_TOO_LARGE",
    "QUERY_TOO_COMPLEX",
    "CONFLICT",
}
SDL = studio_schema.as_str()


def fuzz(examples: int) -> settings:
    """Hypothesis settings for one of the runs below."""
    return settings(max_examples=examples, **FUZZ)


FUZZ: dict[str, Any] = dict(
    deadline=None,
    derandomize=True,  # the same documents on every run: a failure is reproducible from the log
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much],
    database=None,
)


@dataclass
class Fuzzer:
    http: httpx.Client
    tokens: dict[str, str | None]
    ids: list[str]
    seen: dict[str, int]

    def send(self, caller: str, body: Any) -> None:
        """Post one request; fail on a 500, an INTERNAL error, an uncoded error or a leaked internal."""
        token = self.tokens[caller]
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        response = self.http.post("/v1/graphql", json=body, headers=headers)
        assert response.status_code < 500, (response.status_code, body, response.text)
        payload = response.json()
        for error in payload.get("errors") or ():
            code = (error.get("extensions") or {}).get("code")
            assert code in CODES, (code, body, error)
            assert "Traceback" not in error.get("message", ""), error
            self.seen[code] = self.seen.get(code, 0) + 1
        if not payload.get("errors"):
            self.seen["ok"] = self.seen.get("ok", 0) + 1


def global_id(type_name: str, raw: str) -> str:
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


@pytest.fixture(scope="module")
def fuzzer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Fuzzer]:
    data = tmp_path_factory.mktemp("fuzz") / "data"
    data.mkdir()
    server: StudioProcess = start_server(
        data,
        {
            "GENMEDIA_WORKERS": "0",
            "GENMEDIA_RATE_GENERATE": "100000/minute",
            "GENMEDIA_RATE_READ": "100000/minute",
            "GENMEDIA_WEBHOOK_ALLOW_PRIVATE": "false",
        },
    )
    try:
        tokens: dict[str, str | None] = {
            "user": asyncio.run(mint_token(data, "fuzz-user@example.com")),
            "viewer": asyncio.run(mint_token(data, "fuzz-viewer@example.com", "VIEWER")),
            "admin": asyncio.run(mint_token(data, "fuzz-admin@example.com", "ADMIN")),
            "anonymous": None,
        }
        with httpx.Client(base_url=server.base_url, timeout=30) as http:
            made = http.post(
                "/v1/graphql",
                json={"query": 'mutation { generateText(input: {prompt: "fuzz"}) { id owner { id } } }'},
                headers={"Authorization": f"Bearer {tokens['user']}"},
            ).json()["data"]["generateText"]
            ids = [
                made["id"],
                made["owner"]["id"],
                global_id("Job", "missing"),
                global_id("Asset", "missing"),
                global_id("User", "missing"),
                "not a global id",
                "",
            ]
            fuzzer = Fuzzer(http, tokens, ids, {})
            yield fuzzer
            print("outcomes:", json.dumps(fuzzer.seen, sort_keys=True))
    finally:
        server.stop()


def scalars(ids: list[str]) -> dict[str, st.SearchStrategy[graphql.ValueNode]]:
    """Strategies for the custom scalars, as AST literals: plausible values and nonsense."""
    moments = st.one_of(
        st.datetimes(timezones=st.timezones()).map(lambda moment: moment.isoformat()),
        st.text(max_size=30),
    )
    return {
        "ID": st.sampled_from(ids).map(lambda value: graphql.StringValueNode(value=value)),
        "DateTime": moments.map(lambda value: graphql.StringValueNode(value=value)),
        "JSON": st.text(max_size=40).map(lambda value: graphql.StringValueNode(value=value)),
    }


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=12,
)
# The studio's own operations, whose variables are fuzzed with any JSON at all.
OPERATIONS = [
    "mutation($input: GenerateImageInput!) { generateImage(input: $input) { id status } }",
    "mutation($input: GenerateVideoInput!) { generateVideo(input: $input) { id status } }",
    "mutation($input: GenerateTextInput!) { generateText(input: $input) { id status } }",
    "mutation($input: UpscaleImageInput!) { upscaleImage(input: $input) { id } }",
    "query($filter: AssetFilter, $sort: AssetSort, $first: Int, $after: String) "
    "{ assets(filter: $filter, sort: $sort, first: $first, after: $after) { totalCount } }",
    "query($filter: JobFilter, $first: Int, $after: String) { jobs(filter: $filter, first: $first, after: $after) "
    "{ totalCount edges { node { id } } } }",
    "query($query: UsageQuery!) { usage(query: $query) { totals { jobs } } }",
    "query($id: ID!) { node(id: $id) { id } }",
    "mutation($id: ID!) { cancelJob(id: $id) { id } }",
]
CALLERS = itertools.cycle(["user", "viewer", "admin", "anonymous"])


def field_names(root: graphql.GraphQLObjectType | None) -> list[str]:
    return sorted(root.fields) if root else []


def test_generated_valid_documents_never_fail_internally(fuzzer: Fuzzer) -> None:
    roots = studio_schema._schema
    documents = from_schema(
        SDL,
        fields=[*field_names(roots.query_type), *field_names(roots.mutation_type)],
        custom_scalars=scalars(fuzzer.ids),
        allow_x00=False,
    )

    @fuzz(1200)
    @given(document=documents)
    def run(document: str) -> None:
        fuzzer.send(next(CALLERS), {"query": document})

    run()


def test_generated_invalid_documents_get_coded_errors(fuzzer: Fuzzer) -> None:
    documents = from_schema(SDL, custom_scalars=scalars(fuzzer.ids), mode=Mode.NEGATIVE)

    @fuzz(600)
    @given(document=documents)
    def run(document: str) -> None:
        fuzzer.send(next(CALLERS), {"query": document})

    run()


def test_operations_with_any_variables_never_fail_internally(fuzzer: Fuzzer) -> None:
    variables = st.dictionaries(
        st.sampled_from(["input", "filter", "sort", "first", "after", "query", "id", "other"]),
        JSON_VALUES,
        max_size=4,
    )
    bodies = st.fixed_dictionaries(
        {"query": st.sampled_from(OPERATIONS), "variables": variables | JSON_VALUES},
        optional={"operationName": st.none() | st.text(max_size=10), "extensions": JSON_VALUES},
    )

    @fuzz(1000)
    @given(body=bodies)
    def run(body: dict[str, Any]) -> None:
        fuzzer.send(next(CALLERS), body)

    run()


def test_bodies_of_any_shape_get_coded_errors(fuzzer: Fuzzer) -> None:
    @fuzz(300)
    @given(body=JSON_VALUES)
    def run(body: Any) -> None:
        fuzzer.send(next(CALLERS), body)

    run()
