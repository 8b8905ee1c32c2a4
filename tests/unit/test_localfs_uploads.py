"""The local upload route: signed PUT links, the byte cap enforced while streaming, nothing kept on refusal."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from backends.blobs.localfs import LocalBlobStore, files_route
from backends.blobs.localfs_uploads import upload_route
from domain.ports import UploadTarget

SECRET = b"unit-test-secret-0123456789abcdef"
KEY = "uploads/ab/abcdef.png"


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", base_url="http://files.test", secret=SECRET)


@pytest.fixture
async def client(store: LocalBlobStore) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette(routes=[files_route(store), upload_route(store)])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://files.test"
    ) as http:
        yield http


async def target(store: LocalBlobStore, max_bytes: int = 1000) -> UploadTarget:
    return await store.upload_url(
        KEY, content_type="image/png", max_bytes=max_bytes, expires_in=timedelta(minutes=5)
    )


def stored_files(store: LocalBlobStore) -> list[str]:
    """Every file under the store's root, temporary ones included."""
    return sorted(str(path.relative_to(store.root)) for path in store.root.rglob("*") if path.is_file())


async def chunks(data: bytes, size: int = 100) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


async def test_a_put_within_the_cap_stores_the_object_and_its_sidecar(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    link = await target(store)
    data = b"\x89PNG\r\n\x1a\n" + bytes(992)

    response = await client.put(link.url, content=data, headers=link.headers)

    assert response.status_code == 201
    assert await store.get(KEY) == data
    stat = await store.stat(KEY)
    assert (stat.size, stat.sha256, stat.content_type) == (
        1000,
        hashlib.sha256(data).hexdigest(),
        "image/png",
    )
    assert stored_files(store) == [KEY, KEY + ".meta.json"]
    sidecar = json.loads((store.root / (KEY + ".meta.json")).read_text())
    assert sidecar["metadata"] == {"uploaded": "true"}


async def test_a_chunked_body_past_the_cap_is_refused_413_and_nothing_is_kept(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    link = await target(store, max_bytes=1000)

    # No Content-Length: the route only learns the size by counting while it streams.
    response = await client.put(link.url, content=chunks(bytes(1001)), headers=link.headers)

    assert response.status_code == 413
    assert response.json()["error"]["code"] == "PAYLOAD_TOO_LARGE"
    assert stored_files(store) == []


async def test_a_declared_length_past_the_cap_is_refused_before_reading(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    link = await target(store, max_bytes=10)

    response = await client.put(link.url, content=bytes(11), headers=link.headers)

    assert response.status_code == 413
    assert stored_files(store) == []


async def test_a_refused_replacement_keeps_the_earlier_upload(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    link = await target(store, max_bytes=100)
    assert (await client.put(link.url, content=b"first", headers=link.headers)).status_code == 201

    refused = await client.put(link.url, content=chunks(bytes(101), 10), headers=link.headers)

    assert refused.status_code == 413
    assert await store.get(KEY) == b"first"
    assert stored_files(store) == [KEY, KEY + ".meta.json"]


@pytest.mark.parametrize("content_type", [None, "text/html", "image/jpeg"])
async def test_another_content_type_than_signed_is_refused(
    store: LocalBlobStore, client: httpx.AsyncClient, content_type: str | None
) -> None:
    link = await target(store)
    headers = {"Content-Type": content_type} if content_type else {}

    response = await client.put(link.url, content=b"\x89PNG", headers=headers)

    assert response.status_code == 403
    assert "image/png" in response.json()["error"]["message"]
    assert stored_files(store) == []


async def test_a_download_link_cannot_be_used_to_upload(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    await store.put(KEY, b"original", "image/png")
    download = await store.signed_url(KEY, expires_in=timedelta(minutes=5))

    response = await client.put(download.url, content=b"replaced", headers={"Content-Type": "image/png"})

    assert response.status_code == 403
    assert await store.get(KEY) == b"original"


async def test_an_upload_link_cannot_be_used_to_download(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    link = await target(store)
    await client.put(link.url, content=b"\x89PNG", headers=link.headers)

    assert (await client.get(link.url)).status_code == 403


async def test_upload_link_shape_and_bounds(store: LocalBlobStore) -> None:
    link = await target(store, max_bytes=123)
    assert link.method == "PUT" and link.headers == {"Content-Type": "image/png"}
    assert link.url.startswith(f"http://files.test/files/{KEY}?") and "max=123" in link.url
    with pytest.raises(ValueError):
        await store.upload_url(KEY, content_type="image/png", max_bytes=-1, expires_in=timedelta(minutes=1))
    with pytest.raises(ValueError):
        await store.upload_url(KEY, content_type="image/png", max_bytes=1, expires_in=timedelta(days=8))
    with pytest.raises(ValueError):
        await store.upload_url("../x", content_type="image/png", max_bytes=1, expires_in=timedelta(minutes=1))
