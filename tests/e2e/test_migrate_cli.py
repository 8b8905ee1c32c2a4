"""`genmedia migrate`: the old backend's bucket (on a Cloud Storage emulator) imported into a studio.

The old bucket holds one JSON metadata file per asset, in the spellings the old backend used over
the years, and the media; some files are bad. The destination is the embedded default (SQLite and
local files); the imported library is then checked through the API of a real server.
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from tests.e2e.conftest import Processes
from tests.e2e.helpers import CliResult, download, run_cli
from tests.support.client import StudioClient
from tests.support.gcs_emulator import GcsEmulator, gcs_emulator
from tests.support.server import free_port, studio_env

pytestmark = pytest.mark.timeout(45)

OLD_BUCKET = "old-bucket"
ASSET = (
    "id kind prompt model mimeType bytes width height durationSeconds text contentSha256 url "
    "createdAt parameters job { id } owner { email }"
)
LIBRARY = f"{{ assets(first: 20) {{ totalCount edges {{ node {{ {ASSET} }} }} }} }}"


@dataclass(frozen=True)
class Old:
    """One good asset of the old backend: its metadata and its media."""

    legacy_id: str
    metadata: dict[str, Any]
    media_name: str
    media: bytes
    email: str
    kind: str
    mime: str


def picture(fmt: str, size: tuple[int, int]) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (180, 60, 30)).save(buffer, fmt)
    return buffer.getvalue()


def video() -> bytes:
    """A real MP4 made by the studio's own local generator (ffmpeg), four seconds long."""
    from backends.generators.local import LocalGenerator
    from domain.ports import GenerationRequest, Progress

    async def ignore(progress: Progress) -> None:
        return None

    request = GenerationRequest(
        kind="VIDEO", model="veo", prompt="waves", parameters={"duration_seconds": 4, "aspect_ratio": "16:9"}
    )
    result = asyncio.run(LocalGenerator(speed=0).generate(request, ignore))
    return result.media[0].data


def good_assets() -> list[Old]:
    return [
        Old(
            "img-001",
            {
                "id": "img-001",
                "user_email": "alice@example.com",
                "prompt": "a red fox in fresh snow",
                "type": "image",
                "model": "imagen-3.0-generate-002",
                "gcs_path": f"gs://{OLD_BUCKET}/media/img-001.png",
                "created_at": "2025-01-15T09:30:00Z",
            },
            "media/img-001.png",
            picture("PNG", (64, 48)),
            "alice@example.com",
            "IMAGE",
            "image/png",
        ),
        Old(
            "vid-002",
            {
                "assetId": "vid-002",
                "userEmail": "Bob@Example.com",
                "prompt": "waves at dusk",
                "mediaType": "VIDEO",
                "modelName": "veo-2.0-generate-001",
                "mediaUrl": f"https://storage.googleapis.com/{OLD_BUCKET}/media/vid-002.mp4",
                "createdAt": 1736934000000,
            },
            "media/vid-002.mp4",
            video(),
            "bob@example.com",
            "VIDEO",
            "video/mp4",
        ),
        Old(
            "img-003",
            {
                "id": "img-003",
                "email": "carol",  # a bare user name: completed by --owner-domain
                "prompt": "a lighthouse in fog",
                "type": "image/jpeg",
                "path": "media/img-003.jpg",
                "timestamp": "2025-02-01 08:00:00",
            },
            "media/img-003.jpg",
            picture("JPEG", (40, 30)),
            "carol@example.com",
            "IMAGE",
            "image/jpeg",
        ),
        Old(
            "txt-004",
            {
                "id": "txt-004",
                "user_email": "alice@example.com",
                "prompt": "a haiku about autumn",
                "type": "text",
                "model": "gemini-1.5-flash",
                "gcs_path": f"gs://{OLD_BUCKET}/media/txt-004.txt",
                "created_at": "2025-03-01T12:00:00+01:00",
            },
            "media/txt-004.txt",
            b"Leaves drift and settle\nthe pond keeps every colour\nuntil the first frost",
            "alice@example.com",
            "TEXT",
            "text/plain; charset=utf-8",
        ),
    ]


BAD_FILES = {
    "metadata/005.json": (b'{"id": "bad-005", "user_email": "alice@example.com", ', "invalid JSON"),
    "metadata/006.json": (
        json.dumps(
            {"id": "bad-006", "prompt": "no owner", "type": "image", "gcs_path": "media/x.png"}
        ).encode(),
        "missing fields: user email, created time",
    ),
    "metadata/007.json": (
        json.dumps(
            {
                "id": "bad-007",
                "user_email": "alice@example.com",
                "type": "image",
                "gcs_path": f"gs://{OLD_BUCKET}/media/deleted.png",
                "created_at": "2025-01-01T00:00:00Z",
            }
        ).encode(),
        f"media not found: gs://{OLD_BUCKET}/media/deleted.png",
    ),
}


@pytest.fixture(scope="module")
def old_bucket() -> Iterator[tuple[GcsEmulator, list[Old]]]:
    """The old backend's bucket on the emulator: 4 good metadata files with media, 3 bad ones."""
    with gcs_emulator(OLD_BUCKET) as emulator:
        from google.cloud import storage

        client = storage.Client(project="genmedia-test")
        bucket = client.bucket(OLD_BUCKET)
        assets = good_assets()
        for number, old in enumerate(assets, start=1):
            bucket.blob(f"metadata/{number:03d}.json").upload_from_string(
                json.dumps(old.metadata), content_type="application/json"
            )
            bucket.blob(old.media_name).upload_from_string(old.media)
        for name, (raw, _) in BAD_FILES.items():
            bucket.blob(name).upload_from_string(raw, content_type="application/json")
        yield emulator, assets
        client.close()


def migrate_env(processes: Processes) -> dict[str, str]:
    """The studio's own settings (SQLite and local files); STORAGE_EMULATOR_HOST reaches the old bucket."""
    return studio_env(processes.data_dir, free_port(), {"GOOGLE_CLOUD_PROJECT": "genmedia-test"})


async def migrate(processes: Processes, *extra: str) -> CliResult:
    args = ["migrate", "--from-bucket", f"gs://{OLD_BUCKET}", "--prefix", "metadata/", "--owner-domain"]
    return await run_cli(*args, "example.com", *extra, env=migrate_env(processes), timeout=30)


def summary(result: CliResult) -> str:
    return result.stdout.strip().splitlines()[-1]


def assert_bad_files_reported(result: CliResult) -> None:
    failed = [line for line in result.stdout.splitlines() if line.startswith("failed ")]
    assert len(failed) == len(BAD_FILES), result.stdout
    for name, (_, reason) in BAD_FILES.items():
        assert any(line.startswith(f"failed {name}: ") and reason in line for line in failed), (name, failed)


def media_files(data_dir: Path) -> list[Path]:
    blobs = data_dir / "blobs"
    return [p for p in blobs.rglob("*") if p.is_file() and ".meta" not in p.name] if blobs.exists() else []


async def test_migrate_imports_the_old_bucket_once_and_the_assets_are_served_by_the_api(
    old_bucket: tuple[GcsEmulator, list[Old]], processes: Processes
) -> None:
    _, assets = old_bucket

    dry = await migrate(processes, "--dry-run")
    assert dry.returncode == 1, dry  # some files are bad
    assert summary(dry).startswith("dry run, nothing written: would import 4, skipped 0, failed 3"), (
        dry.stdout
    )
    assert "would create 3 users" in summary(dry)
    assert sum(line.startswith("would import metadata/") for line in dry.stdout.splitlines()) == 4
    assert_bad_files_reported(dry)
    assert media_files(processes.data_dir) == []

    first = await migrate(processes)
    assert first.returncode == 1, first
    assert summary(first) == "imported 4, skipped 0, failed 3 (7 metadata files; created 3 users)", (
        first.stdout
    )
    assert_bad_files_reported(first)
    assert len(media_files(processes.data_dir)) == 4

    # Unknown owners were created PENDING: they cannot use the studio until someone lets them in.
    pending = await run_cli("user", "set", "--email", "carol@example.com", env=migrate_env(processes))
    assert json.loads(pending.stdout)["status"] == "PENDING", pending

    again = await migrate(processes)
    assert again.returncode == 1, again
    assert summary(again) == "imported 0, skipped 4, failed 3 (7 metadata files; created 0 users)", (
        again.stdout
    )
    assert len(media_files(processes.data_dir)) == 4

    server = processes.serve({"GENMEDIA_WORKERS": "0"})
    seen = 0
    for email in ("alice@example.com", "bob@example.com", "carol@example.com"):
        token = await run_cli("token", "--email", email, env=studio_env(processes.data_dir, server.port))
        assert token.returncode == 0, token
        client = StudioClient(server.base_url, token.stdout.strip())
        library = (await client.data(LIBRARY))["assets"]
        mine = {old.metadata["prompt"]: old for old in assets if old.email == email}
        assert library["totalCount"] == len(mine), library
        for edge in library["edges"]:
            node = edge["node"]
            old = mine[node["prompt"]]
            await assert_imported(node, old)
            seen += 1
        # Imported prompts are searchable like generated ones.
        word = next(iter(mine)).split()[-1]
        found = await client.data(
            "query($s: String!) { assets(filter: {search: $s}) { totalCount } }", {"s": word[:4]}
        )
        assert found["assets"]["totalCount"] >= 1, (email, word)
    assert seen == 4


async def assert_imported(node: dict[str, Any], old: Old) -> None:
    assert node["kind"] == old.kind and node["mimeType"] == old.mime, node
    assert node["owner"]["email"] == old.email
    assert node["job"] is None
    assert node["bytes"] == len(old.media)
    assert node["contentSha256"] == hashlib.sha256(old.media).hexdigest()
    assert node["parameters"]["legacyId"] == old.legacy_id
    assert node["model"] == (old.metadata.get("model") or old.metadata.get("modelName") or "unknown")
    if old.kind == "IMAGE":
        assert (node["width"], node["height"]) == Image.open(io.BytesIO(old.media)).size
    if old.kind == "VIDEO":
        assert (node["width"], node["height"], node["durationSeconds"]) == (640, 360, 4.0)
    if old.kind == "TEXT":
        assert node["text"] == old.media.decode()
    created = {
        "img-001": "2025-01-15T09:30:00",
        "vid-002": "2025-01-15T09:40:00",
        "img-003": "2025-02-01T08:00:00",
        "txt-004": "2025-03-01T11:00:00",
    }[old.legacy_id]
    assert node["createdAt"].startswith(created), node["createdAt"]
    response = await download(node["url"])
    assert response.status_code == 200 and response.content == old.media
