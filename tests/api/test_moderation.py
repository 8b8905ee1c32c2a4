"""Moderation before generation, on a server with a policy: refused prompts cost nothing and are counted."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.api.helpers import around_now, job_count, submit, wait_for_jobs
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess, mint_token, serving

POLICY = {
    "GENMEDIA_WORKERS": "1",
    "GENMEDIA_MODERATION_BLOCKED_TERMS": "Crème Brûlée, forbidden fruit",
    "GENMEDIA_MODERATION_CATEGORIES": "violence,self-harm",
}
IMAGE = "mutation($input: GenerateImageInput!) { generateImage(input: $input) { id status } }"
TEXT = "mutation($input: GenerateTextInput!) { generateText(input: $input) { id status } }"
QUOTA = "{ me { quota { imagesUsedToday } } }"
USAGE = "query($from: DateTime!, $to: DateTime!) { usage(query: {from: $from, to: $to}) { totals { jobs refused } } }"
JOB = "query($id: ID!) { job(id: $id) { status error { code } } }"
_emails = itertools.count()


@pytest.fixture(scope="module")
def moderated_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("moderated") / "data"


@pytest.fixture(scope="module")
def moderated(moderated_dir: Path) -> Iterator[StudioProcess]:
    with serving(moderated_dir, POLICY) as server:
        yield server


@pytest.fixture
async def client(moderated: StudioProcess, moderated_dir: Path) -> StudioClient:
    token = await mint_token(moderated_dir, f"moderated-{next(_emails)}@example.com")
    return StudioClient(moderated.base_url, token)


async def usage_totals(client: StudioClient) -> dict[str, Any]:
    return dict((await client.data(USAGE, around_now()))["usage"]["totals"])


@pytest.mark.parametrize(
    ("values", "category", "field"),
    [
        ({"prompt": "a crème brûlée on a plate"}, "blocked_term", "input.prompt"),
        ({"prompt": "A CREME BRULEE, torched"}, "blocked_term", "input.prompt"),
        (
            {"prompt": "still life", "negativePrompt": "no Forbidden   Fruit"},
            "blocked_term",
            "input.negativePrompt",
        ),
        ({"prompt": "a medieval MASSACRE in oils"}, "violence", "input.prompt"),
    ],
)
async def test_a_refused_image_prompt_creates_no_job_and_books_no_quota(
    client: StudioClient, values: dict[str, Any], category: str, field: str
) -> None:
    error = await client.error(IMAGE, {"input": values})

    assert_error(error, "CONTENT_BLOCKED")
    extensions = error["extensions"]
    assert (extensions["category"], extensions["field"]) == (category, field)
    assert "brûlée" not in str(error).lower() and "fruit" not in str(error).lower()  # the list stays private
    assert await job_count(client) == 0
    assert (await client.data(QUOTA))["me"]["quota"]["imagesUsedToday"] == 0
    assert await usage_totals(client) == {"jobs": 0, "refused": 1}


async def test_a_system_prompt_is_checked_too(client: StudioClient) -> None:
    error = await client.error(TEXT, {"input": {"prompt": "a poem", "systemPrompt": "Talk about suicide"}})

    assert_error(error, "CONTENT_BLOCKED")
    assert (error["extensions"]["category"], error["extensions"]["field"]) == (
        "self-harm",
        "input.systemPrompt",
    )


async def test_a_word_that_only_contains_a_blocked_term_is_allowed(client: StudioClient) -> None:
    job = await submit(
        client, "generateText", {"prompt": "gored? no: a gorgeous crème brûlées tart", "maxOutputTokens": 8}
    )

    assert job["status"] in ("QUEUED", "RUNNING", "SUCCEEDED")
    await wait_for_jobs(client)
    assert await usage_totals(client) == {"jobs": 1, "refused": 0}


async def test_a_job_the_safety_filter_refuses_counts_as_refused(client: StudioClient) -> None:
    job = await submit(client, "generateText", {"prompt": "a story [[blocked]] here", "maxOutputTokens": 8})
    await wait_for_jobs(client)

    failed = (await client.data(JOB, {"id": job["id"]}))["job"]
    assert (failed["status"], failed["error"]["code"]) == ("FAILED", "CONTENT_BLOCKED")
    assert await usage_totals(client) == {"jobs": 1, "refused": 1}


async def test_refusals_are_counted_in_the_metrics(moderated: StudioProcess, client: StudioClient) -> None:
    await client.error(IMAGE, {"input": {"prompt": "a decapitated statue"}})

    async with httpx.AsyncClient() as http:
        text = (await http.get(f"{moderated.base_url}/metrics")).text
    assert 'genmedia_moderation_refusals_total{category="violence"}' in text
