"""The production data path across processes: Firestore documents and Cloud Storage media.

An API-only `genmedia serve` and a separate `genmedia worker` run on the Firestore emulator and a
Cloud Storage emulator, the media signed with a locally generated service-account key. The API
process follows the job through a Firestore listener (on_snapshot) however the worker writes it,
and the client downloads the result through its V4 signed URL, checked as GCS would check it.

The emulators run for the whole module (started by this test process); each test uses its own
Firestore project and data dir, so tests never see each other's documents.
"""

from __future__ import annotations

import itertools
import json
import secrets
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Processes
from tests.e2e.helpers import assert_downloads, assert_monotonic, job, run_cli, submit, subscribe, usage
from tests.support.client import StudioClient
from tests.support.firestore_emulator import (
    EmulatorMissing,
    FirestoreEmulator,
    find_emulator,
    in_ci,
    java_available,
    running_emulator,
)
from tests.support.gcs_emulator import (
    GcsEmulator,
    SigningKey,
    gcs_emulator,
    require_gcs_packages,
    signing_key,
    verify_v4_signed_url,
)
from tests.support.server import free_port, studio_env

# Two tests and the emulators in under a minute: each test (with its share of setup) within 29 s.
pytestmark = pytest.mark.timeout(29)

BUCKET = "genmedia-e2e-media"
ORDER = {"QUEUED": 0, "RUNNING": 1, "SUCCEEDED": 2}


@dataclass
class Cloud:
    """Both emulators, the signing key, and the settings that point a studio process at them."""

    firestore: FirestoreEmulator
    storage: GcsEmulator
    key: SigningKey
    key_file: Path

    def env(self, project: str, **extra: str) -> dict[str, str]:
        return {
            "GENMEDIA_DOCSTORE": "firestore",
            "GENMEDIA_BLOBS": "gcs",
            "GOOGLE_CLOUD_PROJECT": project,
            "FIRESTORE_EMULATOR_HOST": self.firestore.host,
            "GENMEDIA_BUCKET": self.storage.bucket,
            "STORAGE_EMULATOR_HOST": self.storage.base_url,
            "GENMEDIA_SIGNING_KEY_FILE": str(self.key_file),
            "GENMEDIA_IDENTITY": "local",
            **extra,
        }

    def objects(self, prefix: str = "") -> list[str]:
        """Names of the media bucket's objects under `prefix`, through the emulator's JSON API."""
        url = f"{self.storage.base_url}/storage/v1/b/{self.storage.bucket}/o"
        response = httpx.get(url, params={"prefix": prefix} if prefix else None, timeout=10, trust_env=False)
        response.raise_for_status()
        return sorted(item["name"] for item in response.json().get("items", []))


@pytest.fixture(scope="module")
def cloud(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cloud]:
    """The Firestore and Cloud Storage emulators for this module: skipped when missing, failed in CI."""
    try:
        script = find_emulator()
        java_available()
    except EmulatorMissing as exc:
        message = f"{exc}. Install google-cloud-cli-firestore-emulator (and Java 17+) or set FIRESTORE_EMULATOR_BIN."
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    require_gcs_packages()
    root = tmp_path_factory.mktemp("cloud")
    key = signing_key()
    key_file = root / "signer-key.json"
    key_file.write_text(json.dumps(key.key_file_info()))
    key_file.chmod(0o600)
    with running_emulator(root, script) as firestore, gcs_emulator(BUCKET) as storage:
        yield Cloud(firestore, storage, key, key_file)


def project_id() -> str:
    """A Firestore project of its own for one test: nothing to reset, nothing shared."""
    return f"genmedia-e2e-{secrets.token_hex(4)}"


async def cli_token(processes: Processes, env: dict[str, str], email: str) -> str:
    """`genmedia token` on the same settings as the studio: the user is made ACTIVE in Firestore."""
    result = await run_cli("token", "--email", email, env=studio_env(processes.data_dir, free_port(), env))
    assert result.returncode == 0, result
    return result.stdout.strip()


async def assert_signed_download(cloud: Cloud, asset: dict[str, Any]) -> httpx.Response:
    """The URL is a V4 URL GCS would accept for exactly this object; the emulator then serves its bytes."""
    checked = verify_v4_signed_url(asset["url"], cloud.key.public_key)
    assert checked.bucket == cloud.storage.bucket, checked
    assert checked.signer_email == cloud.key.email
    assert (
        checked.signed_headers == ("host",) and checked.expires_in == 3600
    )  # GENMEDIA_SIGNED_URL_TTL_SECONDS
    assert checked.key.startswith("assets/") and checked.key in cloud.objects("assets/"), checked.key
    return await assert_downloads(asset, cloud.storage.translate(asset["url"]))


def only_the_key_in(data_dir: Path) -> list[str]:
    return sorted(str(path.relative_to(data_dir)) for path in data_dir.rglob("*") if path.is_file())


async def test_a_worker_process_on_firestore_and_gcs_streams_every_step_to_the_api_process(
    cloud: Cloud, processes: Processes
) -> None:
    env = cloud.env(project_id(), GENMEDIA_LOCAL_SPEED="4")  # a 4-second video: ~1.25 s, >= 10 steps
    server = processes.serve({**env, "GENMEDIA_WORKERS": "0"})
    client = StudioClient(server.base_url, await cli_token(processes, env, "cloud@example.com"))
    submitted = await submit(client, "video", {"prompt": "a lighthouse in fog", "durationSeconds": 4})
    assert submitted["status"] == "QUEUED"

    async with client.socket() as socket:
        feed = await subscribe(socket, submitted["id"])
        first = await feed.next(timeout=10)
        assert first is not None and first["job"]["status"] == "QUEUED"
        processes.worker(env)  # the only process that runs jobs
        started = time.monotonic()
        events = await feed.to_the_end(timeout=20)
        took = time.monotonic() - started

    statuses = [event["job"]["status"] for event in events]
    assert statuses[0] == "QUEUED" and statuses[-1] == "SUCCEEDED", feed.statuses()
    assert set(statuses) == set(ORDER), feed.statuses()
    assert [ORDER[s] for s in statuses] == sorted(ORDER[s] for s in statuses), feed.statuses()
    for before, after in itertools.pairwise(events):
        assert after["previousStatus"] == before["job"]["status"], (before, after)
    assert_monotonic(events)
    # Firestore listeners may coalesce writes made in quick succession, never reorder them.
    steps = [event["job"]["progress"] for event in events if 0 < event["job"]["progress"] < 1]
    assert len(steps) == len(set(steps)) and len(steps) >= 5, f"live progress steps: {steps}"
    assert took < 20, f"the cross-process feed is live: {took:.1f}s"

    final = events[-1]["job"]
    assert final["progress"] == 1.0 and final["attempts"] == 1 and final["error"] is None
    (asset,) = final["assets"]
    assert asset["kind"] == "VIDEO" and asset["mimeType"] == "video/mp4"
    response = await assert_signed_download(cloud, asset)
    assert response.content[4:8] == b"ftyp"

    totals = await usage(client)
    assert (totals["videos"], totals["jobs"]) == (1, 1), totals
    # Documents live in Firestore and media in the bucket: the data dir keeps only the identity key.
    assert only_the_key_in(processes.data_dir) == ["secrets/issuer-key.pem"], processes.logs()


async def test_a_worker_killed_mid_video_on_firestore_is_replaced_and_the_job_finishes_once(
    cloud: Cloud, processes: Processes
) -> None:
    # A short lease so the sweep re-queues quickly; speed 2: a 4-second video takes about 2.5 s.
    env = cloud.env(project_id(), GENMEDIA_LOCAL_SPEED="2", GENMEDIA_JOB_LEASE_SECONDS="2")
    server = processes.serve({**env, "GENMEDIA_WORKERS": "0"})
    client = StudioClient(server.base_url, await cli_token(processes, env, "crash-cloud@example.com"))
    first_worker = processes.worker(env)
    submitted = await submit(client, "video", {"prompt": "a storm over the sea", "durationSeconds": 4})
    before = set(cloud.objects("assets/"))

    async with client.socket() as socket:
        feed = await subscribe(socket, submitted["id"])
        midway = await feed.until(
            lambda e: e["job"]["status"] == "RUNNING" and e["job"]["progress"] > 0.2, timeout=20
        )
        first_worker.kill(signal.SIGKILL)
        assert first_worker.process is not None and first_worker.process.returncode == -signal.SIGKILL
        assert midway["job"]["attempts"] == 1
        current = await job(client, submitted["id"])
        assert current["status"] == "RUNNING" and current["assets"] == [], current

        processes.worker(env)
        events = await feed.to_the_end(timeout=20)

    statuses = [event["job"]["status"] for event in events]
    after_kill = statuses[statuses.index("RUNNING") :]
    assert "QUEUED" in after_kill, f"the expired lease put the job back in the queue: {feed.statuses()}"
    assert statuses.count("SUCCEEDED") == 1 and statuses[-1] == "SUCCEEDED", feed.statuses()
    assert_monotonic(events)

    final = events[-1]["job"]
    assert final["attempts"] == 2 and final["progress"] == 1.0 and final["error"] is None, final
    (asset,) = final["assets"]
    response = await assert_signed_download(cloud, asset)
    assert response.content[4:8] == b"ftyp"

    assert [a["id"] for a in (await job(client, submitted["id"]))["assets"]] == [asset["id"]]
    library = await client.data("{ assets { totalCount edges { node { id } } } }")
    assert [edge["node"]["id"] for edge in library["assets"]["edges"]] == [asset["id"]]
    assert library["assets"]["totalCount"] == 1
    totals = await usage(client)
    assert (totals["videos"], totals["jobs"], totals["failedJobs"]) == (1, 1, 0), totals
    new_objects = set(cloud.objects("assets/")) - before
    assert len(new_objects) == 1, f"one media object in the bucket: {sorted(new_objects)}"
