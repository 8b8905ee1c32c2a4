"""Uploads at the domain level on the embedded adapters: team uploads, and the sweep of expired tickets."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from backends.blobs.localfs import LocalBlobStore
from backends.blobs.localfs_uploads import upload_route
from backends.docstore.sqlite import SqliteDocStore
from backends.media_probe import inspect_media
from domain.access import Actor
from domain.assets import ASSETS
from domain.clock import utcnow
from domain.errors import ErrorCode, StudioError
from domain.uploads import UPLOADS, UploadLimits, Uploads, UploadTicket
from domain.users import Directory, Role, UserStatus
from tests.support.media import image_bytes

PNG = image_bytes("image/png")


@dataclass
class Desk:
    docs: SqliteDocStore
    blobs: LocalBlobStore
    uploads: Uploads
    actor: Actor
    http: httpx.AsyncClient

    async def send(self, ticket: UploadTicket, data: bytes = PNG) -> None:
        target = ticket.target
        response = await self.http.request(target.method, target.url, headers=target.headers, content=data)
        assert response.status_code == 201, response.text

    async def ticket_of(self, asset_id: str) -> dict[str, object] | None:
        doc = await self.docs.get(UPLOADS, asset_id)
        return None if doc is None else doc.data


@pytest.fixture
async def desk(tmp_path: Path) -> AsyncIterator[Desk]:
    docs = SqliteDocStore(tmp_path / "studio.db")
    blobs = LocalBlobStore(tmp_path / "blobs", base_url="http://files.test", secret=b"s" * 32)
    user = await Directory(docs).put("uploader@example.com", role=Role.USER, status=UserStatus.ACTIVE)
    app = Starlette(routes=[upload_route(blobs)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as http:
        yield Desk(docs, blobs, Uploads(docs, blobs, inspect_media, UploadLimits()), Actor(user), http)
    await docs.close()


def stored(desk: Desk) -> list[str]:
    return sorted(str(p.relative_to(desk.blobs.root)) for p in desk.blobs.root.rglob("*") if p.is_file())


async def test_the_sweep_removes_expired_tickets_and_their_uploads_only(desk: Desk) -> None:
    abandoned = await desk.uploads.create(desk.actor, "left.png", "image/png", len(PNG))
    await desk.send(abandoned)
    completed = await desk.uploads.create(desk.actor, "kept.png", "image/png", len(PNG))
    await desk.send(completed)
    await desk.uploads.complete(desk.actor, completed.asset.id)
    longer = Uploads(desk.docs, desk.blobs, inspect_media, UploadLimits(ttl_seconds=7200))
    fresh = await longer.create(desk.actor, "fresh.png", "image/png", len(PNG))

    # Just before the hour is up nothing goes; just after, both hour-long tickets go.
    assert await desk.uploads.sweep(now=utcnow() + timedelta(minutes=59)) == 0
    assert await desk.uploads.sweep(now=utcnow() + timedelta(minutes=61)) == 2

    assert await desk.ticket_of(abandoned.asset.id) is None
    assert await desk.ticket_of(completed.asset.id) is None
    assert await desk.ticket_of(fresh.asset.id) is not None
    assert await desk.docs.get(ASSETS, abandoned.asset.id) is None
    kept = await desk.docs.get(ASSETS, completed.asset.id)
    assert kept is not None and await desk.blobs.get(kept.data["blob_key"]) == PNG
    assert [path for path in stored(desk) if path.startswith("tmp/")] == []


async def test_a_worker_keeps_sweeping_expired_tickets_while_it_runs(desk: Desk) -> None:
    old = await desk.uploads.create(desk.actor, "old.png", "image/png", len(PNG))
    await desk.send(old)
    await desk.docs.update(UPLOADS, old.asset.id, {"expires_at": "2000-01-01T00:00:00.000000Z"})

    sweeper = asyncio.create_task(desk.uploads.keep_swept(every_seconds=0.01))
    try:
        async with asyncio.timeout(5):
            while await desk.ticket_of(old.asset.id) is not None:
                await asyncio.sleep(0.01)
    finally:
        sweeper.cancel()
    assert [path for path in stored(desk) if path.startswith("tmp/")] == []


async def test_starting_an_upload_sweeps_expired_ones(desk: Desk) -> None:
    old = await desk.uploads.create(desk.actor, "old.png", "image/png", len(PNG))
    await desk.send(old)
    await desk.docs.update(UPLOADS, old.asset.id, {"expires_at": "2000-01-01T00:00:00.000000Z"})

    await desk.uploads.create(desk.actor, "new.png", "image/png", 10)

    assert await desk.ticket_of(old.asset.id) is None
    assert stored(desk) == []


@pytest.mark.parametrize("role", ["OWNER", "EDITOR"])
async def test_team_editors_upload_into_the_team(desk: Desk, role: str) -> None:
    member = Actor(desk.actor.user, teams={"t1": role})
    ticket = await desk.uploads.create(member, "team.png", "image/png", len(PNG), team_id="t1")
    await desk.send(ticket)

    asset = await desk.uploads.complete(member, ticket.asset.id)

    assert asset.data["team_id"] == "t1"
    assert asset.data["readers"] == [f"user:{desk.actor.id}", "team:t1"]


@pytest.mark.parametrize(
    ("teams", "code"),
    [
        ({"t1": "VIEWER"}, ErrorCode.FORBIDDEN),
        ({"t2": "OWNER"}, ErrorCode.NOT_FOUND),
        ({}, ErrorCode.NOT_FOUND),
    ],
)
async def test_team_viewers_are_refused_and_outsiders_get_not_found(
    desk: Desk, teams: dict[str, str], code: ErrorCode
) -> None:
    with pytest.raises(StudioError) as refused:
        await desk.uploads.create(Actor(desk.actor.user, teams=teams), "a.png", "image/png", 10, team_id="t1")
    assert refused.value.code is code


async def test_the_cap_per_kind_comes_from_the_limits(desk: Desk) -> None:
    small = Uploads(
        desk.docs, desk.blobs, inspect_media, UploadLimits(max_image_bytes=100, max_video_bytes=200)
    )
    await small.create(desk.actor, "a.mp4", "video/mp4", 200)
    for mime, size in (("image/png", 101), ("video/mp4", 201)):
        with pytest.raises(StudioError) as refused:
            await small.create(desk.actor, "a", mime, size)
        assert refused.value.details["field"] == "bytes"


@pytest.mark.filterwarnings("ignore::PIL.Image.DecompressionBombWarning")
def test_an_image_claiming_too_many_pixels_is_refused_before_decoding() -> None:
    import io

    from PIL import Image

    bomb = io.BytesIO()
    Image.new("1", (10_000, 10_000)).save(bomb, "PNG")  # 100 megapixels in about 12 KB

    with pytest.raises(ValueError, match="pixels"):
        inspect_media(bomb.getvalue(), "image/png")


async def test_racing_completions_publish_one_asset_and_keep_one_copy(desk: Desk) -> None:
    ticket = await desk.uploads.create(desk.actor, "twice.png", "image/png", len(PNG))
    await desk.send(ticket)

    # Eight at once: some find the staging copy already gone, removed by the one that published.
    first, *others = await asyncio.gather(
        *(desk.uploads.complete(desk.actor, ticket.asset.id) for _ in range(8))
    )

    assert all(other.data == first.data for other in others)
    assert [path for path in stored(desk) if not path.endswith(".meta.json")] == [first.data["blob_key"]]
