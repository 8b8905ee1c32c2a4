"""Quotas and budgets over HTTP: shown on `me`, booked with the job, refused at the edge, given back."""

from __future__ import annotations

import asyncio
import base64
import math
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.api.helpers import job_count, submit, wait_for_jobs
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess, mint_token, serving

QUOTA = """{ me { id quota {
  imagesPerDay videosPerMonth imagesUsedToday videosUsedThisMonth monthlyBudgetUsd spentThisMonthUsd resetsAt
} } }"""
SET_QUOTA = """mutation($userId: ID!, $imagesPerDay: Int, $videosPerMonth: Int, $monthlyBudgetUsd: Float) {
  setQuota(userId: $userId, imagesPerDay: $imagesPerDay, videosPerMonth: $videosPerMonth,
           monthlyBudgetUsd: $monthlyBudgetUsd) {
    id quota { imagesPerDay videosPerMonth monthlyBudgetUsd }
  }
}"""
IMAGE = "mutation($input: GenerateImageInput!) { generateImage(input: $input) { id status } }"
CANCEL = "mutation($id: ID!) { cancelJob(id: $id) { id status } }"
AUDIT = (
    '{ auditLog(action: "quota.set", first: 50) { edges { node { target outcome actor { id } details } } } }'
)
IMAGE_PRICE = 0.039  # the default image model's price per image
VIDEO_SECOND_PRICE = 0.40


async def quota_of(client: StudioClient) -> dict[str, Any]:
    return dict((await client.data(QUOTA))["me"]["quota"])


async def my_id(client: StudioClient) -> str:
    return str((await client.data("{ me { id } }"))["me"]["id"])


async def limit(admin: StudioClient, client: StudioClient, **limits: Any) -> dict[str, Any]:
    changed = await admin.data(SET_QUOTA, {"userId": await my_id(client), **limits})
    return dict(changed["setQuota"]["quota"])


def next_midnight() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1)


def next_month() -> datetime:
    now = datetime.now(UTC)
    return datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)


def assert_quota_exceeded(error: dict[str, Any], limit_name: str, resets: datetime) -> None:
    assert_error(error, "QUOTA_EXCEEDED")
    extensions = error["extensions"]
    assert extensions["limit"] == limit_name
    assert datetime.fromisoformat(extensions["resetsAt"]) == resets
    retry_after = extensions["retryAfter"]
    assert isinstance(retry_after, int)
    assert 0 < retry_after <= math.ceil((resets - datetime.now(UTC)).total_seconds()) + 1


async def test_a_fresh_user_sees_the_default_quota_unused(user: StudioClient) -> None:
    quota = await quota_of(user)
    assert datetime.fromisoformat(quota.pop("resetsAt")) == next_midnight()
    assert quota == {
        "imagesPerDay": 1000,
        "videosPerMonth": 200,
        "imagesUsedToday": 0,
        "videosUsedThisMonth": 0,
        "monthlyBudgetUsd": None,
        "spentThisMonthUsd": 0.0,
    }


async def test_each_job_books_its_images_videos_and_estimated_cost(user: StudioClient) -> None:
    await submit(user, "generateImage", {"prompt": "two kites", "count": 2})
    await submit(user, "generateVideo", {"prompt": "a kite flying", "durationSeconds": 4})
    await submit(user, "generateText", {"prompt": "a kite poem", "maxOutputTokens": 16})
    quota = await quota_of(user)
    assert quota["imagesUsedToday"] == 2 and quota["videosUsedThisMonth"] == 1
    text_estimate = quota["spentThisMonthUsd"] - 2 * IMAGE_PRICE - 4 * VIDEO_SECOND_PRICE
    assert 0 < text_estimate < 0.001


async def test_a_finished_job_books_the_price_it_was_charged(user: StudioClient) -> None:
    await submit(user, "generateText", {"prompt": "a long poem about kites", "maxOutputTokens": 2000})
    await submit(user, "generateImage", {"prompt": "a kite"})
    booked = (await quota_of(user))["spentThisMonthUsd"]
    await wait_for_jobs(user)
    jobs = (await user.data("{ jobs { edges { node { costUsd status } } } }"))["jobs"]["edges"]
    charged = sum(edge["node"]["costUsd"] for edge in jobs)
    assert all(edge["node"]["status"] == "SUCCEEDED" for edge in jobs)
    assert (await quota_of(user))["spentThisMonthUsd"] == pytest.approx(charged)
    assert charged < booked  # the text's estimate assumed all 2000 tokens


async def test_an_admin_sets_and_clears_a_users_limits_and_it_is_audited(
    admin: StudioClient, user: StudioClient
) -> None:
    assert await limit(admin, user, imagesPerDay=7, videosPerMonth=2, monthlyBudgetUsd=12.5) == {
        "imagesPerDay": 7,
        "videosPerMonth": 2,
        "monthlyBudgetUsd": 12.5,
    }
    assert (await quota_of(user))["imagesPerDay"] == 7
    # Omitted arguments stay; null goes back to the default of the server.
    assert await limit(admin, user, imagesPerDay=None, monthlyBudgetUsd=None) == {
        "imagesPerDay": 1000,
        "videosPerMonth": 2,
        "monthlyBudgetUsd": None,
    }
    target = base64.b64decode(await my_id(user)).decode().removeprefix("User:")
    events = [e["node"] for e in (await admin.data(AUDIT))["auditLog"]["edges"]]
    mine = [e for e in events if e["target"] == target]  # newest first
    assert [e["outcome"] for e in mine][:2] == ["ok", "ok"]
    assert mine[1]["details"]["changes"] == {"imagesPerDay": 7, "videosPerMonth": 2, "monthlyBudgetUsd": 12.5}
    assert mine[0]["actor"]["id"] == await my_id(admin)


async def test_only_admins_set_quotas_and_refusals_are_audited(
    admin: StudioClient, user: StudioClient, stranger: StudioClient
) -> None:
    error = await stranger.error(SET_QUOTA, {"userId": await my_id(user), "imagesPerDay": 100000})
    assert_error(error, "FORBIDDEN")
    assert (await quota_of(user))["imagesPerDay"] == 1000
    events = [e["node"] for e in (await admin.data(AUDIT))["auditLog"]["edges"]]
    refuser = await my_id(stranger)
    assert any(e["outcome"] == "denied" and e["actor"]["id"] == refuser for e in events)


async def test_a_user_cannot_see_someone_elses_quota_but_an_admin_can(
    admin: StudioClient, user: StudioClient
) -> None:
    document = "query($id: ID!) { node(id: $id) { ... on User { quota { imagesPerDay } } } }"
    seen = await admin.data(document, {"id": await my_id(user)})
    assert seen["node"]["quota"]["imagesPerDay"] == 1000


async def test_the_image_quota_refuses_what_does_not_fit_and_says_when_it_resets(
    admin: StudioClient, user: StudioClient
) -> None:
    await limit(admin, user, imagesPerDay=3)
    await submit(user, "generateImage", {"prompt": "a pair", "count": 2})
    error = await user.error(IMAGE, {"input": {"prompt": "another pair", "count": 2}})
    assert_quota_exceeded(error, "imagesPerDay", next_midnight())
    assert error["extensions"]["retryable"] is True
    await submit(user, "generateImage", {"prompt": "the last one"})
    assert (await quota_of(user))["imagesUsedToday"] == 3
    assert await job_count(user) == 2


async def test_twenty_parallel_requests_at_the_edge_create_exactly_what_is_left(
    admin: StudioClient, user: StudioClient
) -> None:
    await limit(admin, user, imagesPerDay=7)
    await submit(user, "generateImage", {"prompt": "a warm-up", "count": 2})  # 5 left
    bodies = await asyncio.gather(
        *(user.execute(IMAGE, {"input": {"prompt": f"rush {i}"}}) for i in range(20))
    )
    made = [body["data"]["generateImage"] for body in bodies if not body.get("errors")]
    refused = [body["errors"][0] for body in bodies if body.get("errors")]
    assert len(made) == 5
    for error in refused:
        assert_quota_exceeded(error, "imagesPerDay", next_midnight())
    assert await job_count(user) == 6
    assert (await quota_of(user))["imagesUsedToday"] == 7


async def test_the_video_quota_is_per_month(admin: StudioClient, user: StudioClient) -> None:
    await limit(admin, user, videosPerMonth=1)
    await submit(user, "generateVideo", {"prompt": "a tide", "durationSeconds": 4})
    error = await user.error(
        'mutation { generateVideo(input: {prompt: "a second tide", durationSeconds: 4}) { id } }'
    )
    assert_quota_exceeded(error, "videosPerMonth", next_month())


async def test_the_monthly_budget_refuses_a_job_that_could_exceed_it(
    admin: StudioClient, user: StudioClient
) -> None:
    await limit(admin, user, monthlyBudgetUsd=0.1)
    await submit(user, "generateImage", {"prompt": "one", "count": 2})  # up to $0.078
    error = await user.error(IMAGE, {"input": {"prompt": "two"}})
    assert_quota_exceeded(error, "monthlyBudgetUsd", next_month())
    assert "budget" in str(error["message"]).lower()
    quota = await quota_of(user)
    assert quota["monthlyBudgetUsd"] == 0.1 and quota["spentThisMonthUsd"] == pytest.approx(0.078)


async def test_an_idempotent_replay_is_booked_once(user: StudioClient) -> None:
    values = {"prompt": "once only", "count": 3, "idempotencyKey": f"k-{uuid.uuid4().hex}"}
    first = await submit(user, "generateImage", values)
    again = await submit(user, "generateImage", values)
    assert first["id"] == again["id"]
    assert (await quota_of(user))["imagesUsedToday"] == 3


async def test_a_job_refused_upstream_gives_its_booking_back(user: StudioClient) -> None:
    job = await submit(user, "generateImage", {"prompt": "[[blocked]] something", "count": 2})
    await wait_for_jobs(user)
    status = await user.data("query($id: ID!) { job(id: $id) { status error { code } } }", {"id": job["id"]})
    assert status["job"] == {"status": "FAILED", "error": {"code": "CONTENT_BLOCKED"}}
    quota = await quota_of(user)
    assert quota["imagesUsedToday"] == 0 and quota["spentThisMonthUsd"] == 0


async def test_a_finished_job_keeps_its_booking(user: StudioClient) -> None:
    job = await submit(user, "generateImage", {"prompt": "a keeper"})
    await wait_for_jobs(user)
    assert_error(await user.error(CANCEL, {"id": job["id"]}), "CONFLICT")
    assert (await quota_of(user))["imagesUsedToday"] == 1


# ---------------------------------------------------------------- servers of their own


@pytest.fixture(scope="module")
def idle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("idle") / "data"


@pytest.fixture(scope="module")
def idle(idle_dir: Path) -> Iterator[StudioProcess]:
    """No workers: jobs stay QUEUED until cancelled."""
    with serving(idle_dir, {"GENMEDIA_WORKERS": "0", "GENMEDIA_QUOTA_IMAGES_PER_DAY": "4"}) as server:
        yield server


@pytest.fixture(scope="module")
def failing_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("failing") / "data"


@pytest.fixture(scope="module")
def failing(failing_dir: Path) -> Iterator[StudioProcess]:
    """The provider is always unavailable and jobs are not retried."""
    with serving(
        failing_dir,
        {"GENMEDIA_WORKERS": "1", "GENMEDIA_LOCAL_FAIL_RATE": "1", "GENMEDIA_JOB_MAX_ATTEMPTS": "1"},
    ) as server:
        yield server


async def client_of(server: StudioProcess, data_dir: Path) -> StudioClient:
    email = f"quota-{uuid.uuid4().hex[:12]}@example.com"
    return StudioClient(server.base_url, await mint_token(data_dir, email))


async def test_the_default_limits_come_from_settings(idle: StudioProcess, idle_dir: Path) -> None:
    client = await client_of(idle, idle_dir)
    assert (await quota_of(client))["imagesPerDay"] == 4


async def test_cancelling_a_queued_job_gives_its_booking_back_once(
    idle: StudioProcess, idle_dir: Path
) -> None:
    client = await client_of(idle, idle_dir)
    job = await submit(client, "generateImage", {"prompt": "never mind", "count": 4})
    assert job["status"] == "QUEUED"
    assert_error(await client.error(IMAGE, {"input": {"prompt": "no room"}}), "QUOTA_EXCEEDED")
    cancelled = (await client.data(CANCEL, {"id": job["id"]}))["cancelJob"]
    assert cancelled["status"] == "CANCELLED"
    assert_error(await client.error(CANCEL, {"id": job["id"]}), "CONFLICT")
    quota = await quota_of(client)
    assert quota["imagesUsedToday"] == 0 and quota["spentThisMonthUsd"] == 0
    await submit(client, "generateImage", {"prompt": "room again", "count": 4})


async def test_a_job_failing_upstream_gives_its_booking_back(
    failing: StudioProcess, failing_dir: Path
) -> None:
    client = await client_of(failing, failing_dir)
    job = await submit(client, "generateVideo", {"prompt": "a storm", "durationSeconds": 4})
    deadline = time.monotonic() + 30
    document = "query($id: ID!) { job(id: $id) { status error { code } } }"
    while (status := await client.data(document, {"id": job["id"]}))["job"]["status"] != "FAILED":
        assert time.monotonic() < deadline, status
        await asyncio.sleep(0.05)
    assert status["job"]["error"]["code"] == "UPSTREAM_UNAVAILABLE"
    quota = await quota_of(client)
    assert quota["videosUsedThisMonth"] == 0 and quota["spentThisMonthUsd"] == 0
