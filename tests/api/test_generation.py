"""Generating each kind of media over real HTTP, watching it over WebSocket, downloading the result."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.conftest import assert_error
from tests.support.client import StudioClient

JOB = "id status progress stage etaSeconds attempts costUsd error { code message } assets { id url mimeType width height durationSeconds text bytes contentSha256 owner { id } }"
PROGRESS = f"subscription($id: ID!) {{ jobProgress(id: $id) {{ previousStatus job {{ {JOB} }} }} }}"


async def submit(client: StudioClient, field: str, input_type: str, values: dict[str, Any]) -> dict[str, Any]:
    data = await client.data(
        f"mutation($input: {input_type}!) {{ job: {field}(input: $input) {{ {JOB} }} }}", {"input": values}
    )
    return dict(data["job"])


async def follow(client: StudioClient, job_id: str) -> list[dict[str, Any]]:
    """Every job event of one subscription until it completes."""
    async with client.socket() as socket:
        assert (await socket.ack())["type"] == "connection_ack"
        op = await socket.subscribe(PROGRESS, {"id": job_id})
        messages = await socket.messages(op, timeout=60)
    assert messages[-1]["type"] == "complete", messages[-1]
    events = [m["payload"]["data"]["jobProgress"] for m in messages if m["type"] == "next"]
    assert events, messages
    return events


async def download(url: str) -> httpx.Response:
    async with httpx.AsyncClient(timeout=30) as http:
        return await http.get(url)


def assert_monotonic(events: list[dict[str, Any]]) -> None:
    progress = [event["job"]["progress"] for event in events]
    assert progress == sorted(progress), progress
    assert progress[-1] == 1.0


async def test_image_job_runs_to_success_with_live_progress_and_a_signed_download(user: StudioClient) -> None:
    job = await submit(
        user,
        "generateImage",
        "GenerateImageInput",
        {"prompt": "a red fox in snow", "count": 2, "aspectRatio": "16:9"},
    )
    assert job["status"] == "QUEUED" and job["progress"] == 0.0
    events = await follow(user, job["id"])
    assert_monotonic(events)
    final = events[-1]["job"]
    assert final["status"] == "SUCCEEDED" and final["stage"] == "done"
    assert final["attempts"] == 1 and final["costUsd"] > 0
    assert len(events) >= 4, "several progress steps reach the subscriber"
    assert events[-1]["previousStatus"] == "RUNNING"
    assert len(final["assets"]) == 2
    for asset in final["assets"]:
        response = await download(asset["url"])
        assert response.status_code == 200
        assert response.headers["content-type"] == "image/png"
        image = Image.open(io.BytesIO(response.content))
        assert image.size == (asset["width"], asset["height"])
        assert image.width > image.height, "16:9 is landscape"
        assert len(response.content) == asset["bytes"]


async def test_video_job_produces_a_playable_mp4_of_the_requested_length(user: StudioClient) -> None:
    job = await submit(
        user, "generateVideo", "GenerateVideoInput", {"prompt": "waves at dusk", "durationSeconds": 4}
    )
    events = await follow(user, job["id"])
    assert_monotonic(events)
    final = events[-1]["job"]
    assert final["status"] == "SUCCEEDED"
    (asset,) = final["assets"]
    assert asset["mimeType"] == "video/mp4" and asset["durationSeconds"] == pytest.approx(4, abs=0.15)
    response = await download(asset["url"])
    assert response.status_code == 200 and response.content[4:8] == b"ftyp"


async def test_text_job_returns_text_inline_and_as_a_file(user: StudioClient) -> None:
    job = await submit(
        user,
        "generateText",
        "GenerateTextInput",
        {"prompt": "a haiku about autumn leaves", "maxOutputTokens": 60},
    )
    final = (await follow(user, job["id"]))[-1]["job"]
    assert final["status"] == "SUCCEEDED"
    (asset,) = final["assets"]
    assert asset["text"] and asset["mimeType"].startswith("text/plain")
    response = await download(asset["url"])
    assert response.text == asset["text"]


async def test_upscale_doubles_an_image_from_the_library_and_records_its_parent(user: StudioClient) -> None:
    source_job = await submit(
        user, "generateImage", "GenerateImageInput", {"prompt": "tiny blue house", "seed": 7}
    )
    source = (await follow(user, source_job["id"]))[-1]["job"]["assets"][0]
    job = await submit(user, "upscaleImage", "UpscaleImageInput", {"assetId": source["id"], "factor": 2})
    final = (await follow(user, job["id"]))[-1]["job"]
    assert final["status"] == "SUCCEEDED"
    (asset,) = final["assets"]
    assert (asset["width"], asset["height"]) == (source["width"] * 2, source["height"] * 2)
    data = await user.data("query($id: ID!) { asset(id: $id) { parent { id } } }", {"id": asset["id"]})
    assert data["asset"]["parent"]["id"] == source["id"]


async def test_same_seed_and_prompt_give_the_same_image(user: StudioClient) -> None:
    values = {"prompt": "green hills", "seed": 42}
    first = await submit(user, "generateImage", "GenerateImageInput", values)
    second = await submit(user, "generateImage", "GenerateImageInput", values)
    a = (await follow(user, first["id"]))[-1]["job"]["assets"][0]
    b = (await follow(user, second["id"]))[-1]["job"]["assets"][0]
    assert a["contentSha256"] == b["contentSha256"]


async def test_a_late_subscriber_first_gets_the_current_state(user: StudioClient) -> None:
    job = await submit(user, "generateImage", "GenerateImageInput", {"prompt": "late"})
    await follow(user, job["id"])  # finished now
    events = await follow(user, job["id"])
    assert len(events) == 1 and events[0]["job"]["status"] == "SUCCEEDED"


async def test_two_subscribers_on_one_job_see_the_same_events(user: StudioClient) -> None:
    job = await submit(
        user, "generateVideo", "GenerateVideoInput", {"prompt": "two watchers", "durationSeconds": 4}
    )
    first, second = await asyncio.gather(follow(user, job["id"]), follow(user, job["id"]))
    assert first[-1]["job"]["status"] == second[-1]["job"]["status"] == "SUCCEEDED"
    assert_monotonic(first)
    assert_monotonic(second)


async def test_cancelling_a_running_video_stops_it_and_keeps_no_asset(user: StudioClient) -> None:
    job = await submit(
        user, "generateVideo", "GenerateVideoInput", {"prompt": "long take", "durationSeconds": 8}
    )
    async with user.socket() as socket:
        await socket.ack()
        op = await socket.subscribe(PROGRESS, {"id": job["id"]})
        for _ in range(500):
            current = await user.data(
                "query($id: ID!) { job(id: $id) { status progress } }", {"id": job["id"]}
            )
            if current["job"]["status"] == "RUNNING" and current["job"]["progress"] > 0:
                break
            await asyncio.sleep(0.01)
        assert current["job"]["status"] == "RUNNING", "the job must be running when it is cancelled"
        data = await user.data("mutation($id: ID!) { cancelJob(id: $id) { status } }", {"id": job["id"]})
        assert data["cancelJob"]["status"] == "CANCELLED"
        messages = await socket.messages(op, timeout=30)
    final = [m for m in messages if m["type"] == "next"][-1]["payload"]["data"]["jobProgress"]["job"]
    assert final["status"] == "CANCELLED" and final["assets"] == []
    again = await user.error("mutation($id: ID!) { cancelJob(id: $id) { status } }", {"id": job["id"]})
    assert_error(again, "CONFLICT")
    await asyncio.sleep(0.5)  # the worker had time to finish had it not stopped
    after = await user.data("query($id: ID!) { job(id: $id) { status assets { id } } }", {"id": job["id"]})
    assert after["job"] == {"status": "CANCELLED", "assets": []}


async def test_job_is_not_found_for_another_user(user: StudioClient, stranger: StudioClient) -> None:
    job = await submit(user, "generateText", "GenerateTextInput", {"prompt": "private"})
    error = await stranger.error("query($id: ID!) { job(id: $id) { id } }", {"id": job["id"]})
    assert_error(error, "NOT_FOUND")
    error = await stranger.error("mutation($id: ID!) { cancelJob(id: $id) { id } }", {"id": job["id"]})
    assert_error(error, "NOT_FOUND")


async def test_a_caller_may_pick_an_extra_model_and_pays_its_price(user: StudioClient) -> None:
    models = (await user.data("{ models { id kind unitCostUsd } }"))["models"]
    assert {"id": "imagen-4.0-generate-001", "kind": "IMAGE", "unitCostUsd": 0.04} in models
    job = await submit(
        user,
        "generateImage",
        "GenerateImageInput",
        {"prompt": "a kite", "model": "imagen-4.0-generate-001", "count": 2},
    )
    final = (await follow(user, job["id"]))[-1]["job"]
    assert final["status"] == "SUCCEEDED" and final["costUsd"] == pytest.approx(0.08)
    data = await user.data("query($id: ID!) { job(id: $id) { model } }", {"id": job["id"]})
    assert data["job"]["model"] == "imagen-4.0-generate-001"
