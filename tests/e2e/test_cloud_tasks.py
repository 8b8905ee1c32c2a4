"""GENMEDIA_QUEUE=cloudtasks end to end: the API enqueues to a Cloud Tasks stand-in on loopback, the
stand-in delivers to `/internal/tasks/run` with Cloud Tasks' headers and an OIDC token signed by a
local key, and the worker endpoint runs the job exactly once."""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator

import httpx
import pytest

from schema.nodes import decode_id
from tests.e2e.conftest import Processes
from tests.e2e.helpers import job, poll, submit, subscribe, usage
from tests.support.certs_server import CertsServer, certs_server, make_key
from tests.support.client import StudioClient
from tests.support.cloudtasks_standin import CloudTasksStandIn, cloudtasks_standin
from tests.support.server import free_port, mint_token

INVOKER = "tasks-invoker@studio-test.iam.gserviceaccount.com"


@pytest.fixture(scope="module")
def certs() -> Iterator[CertsServer]:
    with certs_server(make_key("oidc-e2e")) as server:
        yield server


@pytest.fixture
def standin(certs: CertsServer) -> Iterator[CloudTasksStandIn]:
    with cloudtasks_standin(certs) as running:
        yield running


def tasks_env(standin: CloudTasksStandIn, worker_port: int, **extra: str) -> dict[str, str]:
    return {
        "GENMEDIA_QUEUE": "cloudtasks",
        "GOOGLE_CLOUD_PROJECT": "studio-test",
        "GENMEDIA_CLOUDTASKS_API_ENDPOINT": standin.base_url,
        "GENMEDIA_CLOUDTASKS_WORKER_URL": f"http://127.0.0.1:{worker_port}/internal/tasks/run",
        "GENMEDIA_CLOUDTASKS_SERVICE_ACCOUNT": INVOKER,
        "GENMEDIA_CLOUDTASKS_CERTS_URL": standin.certs.jwks_url,
        "GENMEDIA_WORKERS": "1",  # the sweeper and webhooks; jobs arrive only through deliveries
        **extra,
    }


async def _studio(processes: Processes, standin: CloudTasksStandIn, email: str, **extra: str) -> StudioClient:
    """One `genmedia serve` that is both the API and the worker endpoint Cloud Tasks calls."""
    port = free_port()
    server = processes.serve(tasks_env(standin, port, **extra), port=port)
    return StudioClient(server.base_url, await mint_token(processes.data_dir, email))


async def test_a_job_goes_api_to_cloud_tasks_to_the_worker_endpoint_and_runs_once(
    processes: Processes, standin: CloudTasksStandIn
) -> None:
    client = await _studio(processes, standin, "tasks@example.com")
    submitted = await submit(client, "image", {"prompt": "a lighthouse in fog"})
    assert submitted["status"] == "QUEUED"

    (task,) = standin.for_job(decode_id(submitted["id"], "Job"))
    assert task.task_id == f"{decode_id(submitted['id'], 'Job')}-a0"
    assert task.http_request["oidcToken"]["serviceAccountEmail"] == INVOKER
    assert (await job(client, submitted["id"]))["status"] == "QUEUED", "nothing runs before a delivery"

    # Cloud Tasks delivers at least once: the same task twice at the same moment runs the job once.
    first, second = await asyncio.gather(standin.deliver(task), standin.deliver(task))
    assert (first.status_code, second.status_code) == (200, 200), (first.text, second.text)
    assert {first.json()["outcome"], second.json()["outcome"]} <= {"finished", "elsewhere"}
    final = await poll(lambda: job(client, submitted["id"]), lambda j: j["status"] == "SUCCEEDED", timeout=15)
    assert final["attempts"] == 1 and len(final["assets"]) == 1

    late = await standin.deliver(task)  # a retry arriving after the end
    assert (late.status_code, late.json()["outcome"]) == (200, "nothing-to-do")
    library = await client.data("{ assets { totalCount } }")
    assert library["assets"]["totalCount"] == 1
    totals = await usage(client)
    assert (totals["images"], totals["jobs"], totals["failedJobs"]) == (1, 1, 0), totals
    assert len(standin.for_job(decode_id(submitted["id"], "Job"))) == 1


async def test_deliveries_without_the_invokers_valid_token_are_refused_and_touch_nothing(
    processes: Processes, standin: CloudTasksStandIn
) -> None:
    client = await _studio(processes, standin, "refused-tasks@example.com")
    submitted = await submit(client, "image", {"prompt": "a kite over the dunes"})
    (task,) = standin.for_job(decode_id(submitted["id"], "Job"))
    unsigned = standin.oidc_token(task).rsplit(".", 1)[0] + "."
    stranger = make_key("not-google")
    refusals = {
        "no token": ("", 401),
        "wrong audience": (standin.oidc_token(task, aud="https://other.example.com/run"), 401),
        "expired": (standin.oidc_token(task, iat=1_700_000_000, exp=1_700_003_600), 401),
        "unsigned": (unsigned, 401),
        "signed by another key": (standin.certs.sign({"aud": "x"}, key=stranger), 401),
        "wrong service account": (standin.oidc_token(task, email="intruder@example.com"), 403),
    }
    for name, (token, status) in refusals.items():
        response = await standin.deliver(task, token=token)
        assert response.status_code == status, (name, response.text)

    async with httpx.AsyncClient(timeout=10) as http:  # the invoker's token, but a body naming no job
        response = await http.post(
            task.http_request["url"], json={}, headers={"Authorization": f"Bearer {standin.oidc_token(task)}"}
        )
    assert (response.status_code, response.json()["outcome"]) == (200, "ignored"), "a retry cannot fix it"

    untouched = await job(client, submitted["id"])
    assert (untouched["status"], untouched["attempts"], untouched["assets"]) == ("QUEUED", 0, [])
    # The refused requests stand for other senders, not retries of this task: a first delivery.
    accepted = await standin.deliver(task, retry_count=0)
    assert (accepted.status_code, accepted.json()["outcome"]) == (200, "finished"), accepted.text


async def test_a_delivery_past_the_max_attempts_fails_the_job_with_a_clear_error(
    processes: Processes, standin: CloudTasksStandIn
) -> None:
    client = await _studio(processes, standin, "given-up@example.com", GENMEDIA_JOB_MAX_ATTEMPTS="3")
    submitted = await submit(client, "image", {"prompt": "a fox in snow"})
    (task,) = standin.for_job(decode_id(submitted["id"], "Job"))

    response = await standin.deliver(task, retry_count=3)
    assert (response.status_code, response.json()["outcome"]) == (200, "gave-up")
    failed = await job(client, submitted["id"])
    assert failed["status"] == "FAILED" and failed["assets"] == [] and failed["attempts"] == 0
    assert "delivered this job 4 times" in failed["error"]["message"], failed
    assert (await usage(client))["failedJobs"] == 1


async def test_a_retryable_failure_asks_cloud_tasks_to_retry_until_the_attempts_run_out(
    processes: Processes, standin: CloudTasksStandIn
) -> None:
    client = await _studio(
        processes, standin, "flaky@example.com", GENMEDIA_LOCAL_FAIL_RATE="1", GENMEDIA_JOB_MAX_ATTEMPTS="2"
    )
    submitted = await submit(client, "image", {"prompt": "a boat at dawn"})
    (task,) = standin.for_job(decode_id(submitted["id"], "Job"))

    again = await standin.deliver(task)
    assert (again.status_code, again.json()["outcome"]) == (503, "retry")
    assert (await job(client, submitted["id"]))["status"] == "QUEUED"
    last = await standin.deliver(task)
    assert (last.status_code, last.json()["outcome"]) == (200, "finished")
    final = await job(client, submitted["id"])
    assert (final["status"], final["attempts"], final["error"]["code"]) == (
        "FAILED",
        2,
        "UPSTREAM_UNAVAILABLE",
    )
    assert task.statuses == [503, 200]


async def test_a_worker_killed_mid_delivery_is_swept_and_its_job_delivered_again(
    processes: Processes, standin: CloudTasksStandIn
) -> None:
    lease = {"GENMEDIA_JOB_LEASE_SECONDS": "2", "GENMEDIA_LOCAL_SPEED": "2"}
    worker_port = free_port()
    api = processes.serve(tasks_env(standin, worker_port, **lease))  # sweeps; receives no deliveries
    client = StudioClient(api.base_url, await mint_token(processes.data_dir, "killed@example.com"))
    worker = processes.serve(tasks_env(standin, worker_port, GENMEDIA_WORKERS="0", **lease), port=worker_port)
    submitted = await submit(client, "video", {"prompt": "rain on a window", "durationSeconds": 4})
    (task,) = standin.for_job(decode_id(submitted["id"], "Job"))

    async with client.socket() as socket:
        feed = await subscribe(socket, submitted["id"])
        delivery = asyncio.create_task(standin.deliver(task))
        await feed.until(lambda e: e["job"]["status"] == "RUNNING" and e["job"]["progress"] > 0.2, timeout=20)
        worker.kill(signal.SIGKILL)
        with pytest.raises(Exception):  # noqa: B017  the connection dies with the worker
            await delivery

        # The API's sweeper finds the expired lease, re-queues the job and enqueues a new task.
        await feed.until(lambda e: e["job"]["status"] == "QUEUED", timeout=20)
        retry = await poll(
            lambda: asyncio.sleep(0, standin.for_job(decode_id(submitted["id"], "Job"))),
            lambda tasks: len(tasks) == 2,
            timeout=10,
        )
        (again,) = [t for t in retry if t.task_id == f"{decode_id(submitted['id'], 'Job')}-a1"]
        processes.serve(tasks_env(standin, worker_port, GENMEDIA_WORKERS="0", **lease), port=worker_port)
        response = await standin.deliver(again)
        assert (response.status_code, response.json()["outcome"]) == (200, "finished"), response.text
        events = await feed.to_the_end(timeout=20)

    final = events[-1]["job"]
    assert (final["status"], final["attempts"], len(final["assets"])) == ("SUCCEEDED", 2, 1), processes.logs()
    totals = await usage(client)
    assert (totals["videos"], totals["jobs"], totals["failedJobs"]) == (1, 1, 0), totals
