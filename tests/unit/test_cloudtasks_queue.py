"""The Cloud Tasks queue adapter against the Cloud Tasks stand-in on loopback, and the worker's OIDC
verification against locally signed tokens (published as a JWKS, like Google's oauth2/v3/certs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from backends.identity.google_oidc import GoogleOidcVerifier
from backends.queue.cloudtasks import CloudTasksQueue
from domain.errors import ErrorCode, StudioError
from domain.ports import JobQueue
from tests.support.certs_server import CertKey, CertsServer, certs_server, make_key
from tests.support.cloudtasks_standin import CloudTasksStandIn, cloudtasks_standin

WORKER_URL = "https://worker.example.com/internal/tasks/run"
INVOKER = "tasks-invoker@studio-test.iam.gserviceaccount.com"
PARENT = "projects/studio-test/locations/europe-west1/queues/genmedia-jobs"


@pytest.fixture(scope="module")
def key() -> CertKey:
    return make_key("oidc-1")


@pytest.fixture(scope="module")
def certs(key: CertKey) -> Iterator[CertsServer]:
    with certs_server(key) as server:
        yield server


@pytest.fixture
def standin(certs: CertsServer) -> Iterator[CloudTasksStandIn]:
    with cloudtasks_standin(certs) as running:
        yield running


def queue_for(standin: CloudTasksStandIn) -> CloudTasksQueue:
    return CloudTasksQueue(
        project="studio-test",
        location="europe-west1",
        queue="genmedia-jobs",
        worker_url=WORKER_URL,
        service_account=INVOKER,
        api_endpoint=standin.base_url,
    )


async def test_one_http_task_per_job_with_an_oidc_token_for_the_worker(standin: CloudTasksStandIn) -> None:
    queue = queue_for(standin)
    assert isinstance(queue, JobQueue)
    await queue.enqueue("job123")

    (task,) = standin.tasks.values()
    assert task.name == f"{PARENT}/tasks/job123-a0"
    request = task.http_request
    assert (request["url"], request["httpMethod"]) == (WORKER_URL, "POST")
    assert request["oidcToken"] == {"serviceAccountEmail": INVOKER, "audience": WORKER_URL}
    assert task.body == {"jobId": "job123", "attempt": 0}
    await queue.close()


async def test_enqueueing_twice_is_one_task_and_a_requeued_attempt_a_new_one(
    standin: CloudTasksStandIn,
) -> None:
    queue = queue_for(standin)
    await queue.enqueue("job123")
    await queue.enqueue("job123")  # ALREADY_EXISTS is success
    assert standin.calls == 2 and len(standin.tasks) == 1

    await queue.enqueue("job123", attempt=1)
    assert sorted(task.task_id for task in standin.tasks.values()) == ["job123-a0", "job123-a1"]
    await queue.close()


async def test_transient_errors_are_retried_and_lasting_ones_reported(standin: CloudTasksStandIn) -> None:
    queue = queue_for(standin)
    standin.fail_next(2, 503)
    await queue.enqueue("job-transient")
    assert len(standin.for_job("job-transient")) == 1

    standin.fail_next(1, 400)
    with pytest.raises(StudioError) as caught:
        await queue.enqueue("job-refused")
    assert caught.value.code is ErrorCode.UPSTREAM_UNAVAILABLE and caught.value.retryable
    assert standin.for_job("job-refused") == []
    await queue.close()


async def test_the_worker_accepts_only_the_invokers_token_for_its_audience(
    standin: CloudTasksStandIn, certs: CertsServer
) -> None:
    queue = queue_for(standin)
    await queue.enqueue("job-oidc")
    (task,) = standin.for_job("job-oidc")
    verifier = GoogleOidcVerifier(audience=WORKER_URL, service_account=INVOKER, certs_url=certs.jwks_url)

    claims = await verifier.verify(standin.oidc_token(task))
    assert claims["email"] == INVOKER

    refused = {
        "wrong audience": (standin.oidc_token(task, aud="https://elsewhere.example.com"), "UNAUTHENTICATED"),
        "expired": (standin.oidc_token(task, iat=1_000_000, exp=1_000_600), "UNAUTHENTICATED"),
        "other issuer": (standin.oidc_token(task, iss="https://evil.example.com"), "UNAUTHENTICATED"),
        "unknown key": (certs.sign({"aud": WORKER_URL}, key=make_key("stranger")), "UNAUTHENTICATED"),
        "other account": (standin.oidc_token(task, email="someone@example.com"), "FORBIDDEN"),
        "unverified email": (standin.oidc_token(task, email_verified=False), "FORBIDDEN"),
    }
    for name, (token, code) in refused.items():
        with pytest.raises(StudioError) as caught:
            await verifier.verify(token)
        assert caught.value.code.value == code, name
    await queue.close()
