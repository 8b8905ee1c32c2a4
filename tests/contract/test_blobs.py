"""The BlobStore contract: every adapter in BLOB_BACKENDS must pass this same suite.

To add an adapter, add an entry to BLOB_BACKENDS: an async context manager that yields the store,
a `fetch_url(url) -> (status, headers, body)` able to download its signed URLs, and a
`send_upload(target, data) -> status` that sends bytes to one of its upload targets as a client would.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from backends.blobs.localfs import LocalBlobStore, files_route
from backends.blobs.localfs_uploads import upload_route
from domain.ports import BlobNotFound, BlobStore, SignedUrl, StoredBlob, UploadTarget

FetchUrl = Callable[[str], Awaitable[tuple[int, Mapping[str, str], bytes]]]
SendUpload = Callable[[UploadTarget, bytes], Awaitable[int]]
BlobBackend = Callable[[Path], AbstractAsyncContextManager[tuple[BlobStore, FetchUrl, SendUpload]]]


@asynccontextmanager
async def local_backend(tmp_path: Path) -> AsyncIterator[tuple[BlobStore, FetchUrl, SendUpload]]:
    """The local folder store, its /files routes served in-process through httpx."""
    store = LocalBlobStore(
        tmp_path / "blobs", base_url="http://files.test", secret=b"contract-secret-0123456789"
    )
    app = Starlette(routes=[files_route(store), upload_route(store)])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app)) as client:

        async def fetch_url(url: str) -> tuple[int, Mapping[str, str], bytes]:
            response = await client.get(url)
            return response.status_code, response.headers, response.content

        async def send_upload(target: UploadTarget, data: bytes) -> int:
            response = await client.request(target.method, target.url, headers=target.headers, content=data)
            return response.status_code

        yield store, fetch_url, send_upload


@asynccontextmanager
async def gcs_backend(tmp_path: Path) -> AsyncIterator[tuple[BlobStore, FetchUrl, SendUpload]]:
    """GcsBlobStore on gcp-storage-emulator, signing with a locally generated service-account key.

    The emulator ignores signatures, so the fetcher checks each URL as GCS would (V4 signature,
    object, expiry equal to what was asked) before downloading it from the emulator.

    The emulator cannot start an XML-API resumable session (it has no POST on object paths), so
    the uploader checks the signed start request as GCS would — signature, expiry, the signed
    `x-goog-resumable: start`, content type and `x-goog-content-length-range` — refuses a body
    outside the signed range as GCS does, and then stores the bytes with the emulator's XML PUT.
    """
    from backends.blobs.gcs import GcsBlobStore
    from tests.support.gcs_emulator import (
        SignedUrlRejected,
        gcs_emulator,
        signing_key,
        verify_v4_signed_url,
    )

    key = signing_key()

    class RecordingGcsBlobStore(GcsBlobStore):
        """The real store, remembering which key and expiry each signed URL was asked for."""

        issued: dict[str, tuple[str, timedelta]] = {}

        async def signed_url(
            self, key: str, *, expires_in: timedelta, download_name: str | None = None
        ) -> SignedUrl:
            signed = await super().signed_url(key, expires_in=expires_in, download_name=download_name)
            self.issued[signed.url] = (key, expires_in)
            return signed

    with gcs_emulator() as emulator:
        store = RecordingGcsBlobStore(
            emulator.bucket, project="genmedia-test", signer=key.signing_credentials()
        )
        async with httpx.AsyncClient(trust_env=False) as client:

            async def fetch_url(url: str) -> tuple[int, Mapping[str, str], bytes]:
                checked = verify_v4_signed_url(url, key.public_key)
                object_key, expires_in = store.issued[url]
                assert (checked.bucket, checked.key) == (emulator.bucket, object_key)
                assert checked.params["X-Goog-Algorithm"] == "GOOG4-RSA-SHA256"
                assert checked.expires_in == expires_in.total_seconds()
                assert checked.signed_headers == ("host",)
                assert checked.signer_email == key.email
                response = await client.get(emulator.translate(url))
                return response.status_code, response.headers, response.content

            async def send_upload(target: UploadTarget, data: bytes) -> int:
                try:
                    checked = verify_v4_signed_url(
                        target.url, key.public_key, method=target.method, headers=target.headers
                    )
                except SignedUrlRejected:
                    return 403
                assert checked.bucket == emulator.bucket
                assert target.method == "POST" and target.headers["x-goog-resumable"] == "start"
                signed = set(checked.signed_headers)
                assert {"content-type", "x-goog-content-length-range", "x-goog-resumable"} <= signed
                low, high = map(int, target.headers["x-goog-content-length-range"].split(","))
                if not low <= len(data) <= high:
                    return 400  # GCS: EntityTooLarge, and the session stores nothing
                response = await client.put(
                    emulator.object_url(checked.bucket, checked.key),
                    content=data,
                    headers={"Content-Type": target.headers["content-type"]},
                )
                return response.status_code

            try:
                yield store, fetch_url, send_upload
            finally:
                await store.close()


BLOB_BACKENDS: dict[str, BlobBackend] = {"local": local_backend, "gcs": gcs_backend}

_FETCH_URL = pytest.StashKey[FetchUrl]()
_SEND_UPLOAD = pytest.StashKey[SendUpload]()


@pytest.fixture(params=sorted(BLOB_BACKENDS))
async def blobstore(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    """Each registered BlobStore adapter in turn, empty."""
    async with BLOB_BACKENDS[request.param](tmp_path) as (store, fetch_url, send_upload):
        # The helpers belong to the same adapter instance, so hand them over through the test item.
        request.node.stash[_FETCH_URL] = fetch_url
        request.node.stash[_SEND_UPLOAD] = send_upload
        yield store


@pytest.fixture
def fetch_url(blobstore: BlobStore, request: pytest.FixtureRequest) -> FetchUrl:
    """Downloads a signed URL of the current adapter: (status, headers, body)."""
    return request.node.stash[_FETCH_URL]


@pytest.fixture
def send_upload(blobstore: BlobStore, request: pytest.FixtureRequest) -> SendUpload:
    """Sends bytes to an upload target of the current adapter, as a client would: the status."""
    return request.node.stash[_SEND_UPLOAD]


def _key(name: str) -> str:
    return f"assets/{os.urandom(2).hex()}/{name}"


async def test_implements_the_protocol(blobstore: BlobStore) -> None:
    assert isinstance(blobstore, BlobStore)
    await blobstore.ping()


async def test_put_then_get_round_trips_bytes_and_reports_size_and_sha256(blobstore: BlobStore) -> None:
    data = bytes(range(256)) * 40
    key = _key("abcdef.png")

    stored = await blobstore.put(key, data, "image/png", {"job": "j1"})

    assert stored == StoredBlob(
        key=key, size=len(data), sha256=hashlib.sha256(data).hexdigest(), content_type="image/png"
    )
    assert await blobstore.get(key) == data


async def test_empty_object(blobstore: BlobStore) -> None:
    key = _key("empty.txt")
    stored = await blobstore.put(key, b"", "text/plain")
    assert (stored.size, stored.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert await blobstore.get(key) == b""


async def test_exists_and_delete_is_idempotent(blobstore: BlobStore) -> None:
    key = _key("clip.mp4")
    assert not await blobstore.exists(key)
    await blobstore.put(key, b"video", "video/mp4")
    assert await blobstore.exists(key)

    await blobstore.delete(key)
    await blobstore.delete(key)
    await blobstore.delete(_key("never-stored.bin"))

    assert not await blobstore.exists(key)


async def test_missing_object_raises_blob_not_found(blobstore: BlobStore) -> None:
    key = _key("gone.png")
    with pytest.raises(BlobNotFound):
        await blobstore.get(key)
    await blobstore.put(key, b"x", "image/png")
    await blobstore.delete(key)
    with pytest.raises(BlobNotFound):
        await blobstore.get(key)


async def test_put_replaces_previous_object(blobstore: BlobStore) -> None:
    key = _key("doc.txt")
    await blobstore.put(key, b"first version", "text/plain")
    second = await blobstore.put(key, b"second", "application/json")

    assert second.sha256 == hashlib.sha256(b"second").hexdigest()
    assert second.size == 6
    assert await blobstore.get(key) == b"second"


async def test_keys_are_independent(blobstore: BlobStore) -> None:
    prefix = _key("")
    await blobstore.put(prefix + "a.png", b"A", "image/png")
    await blobstore.put(prefix + "b.png", b"B", "image/png")
    await blobstore.delete(prefix + "a.png")

    assert await blobstore.get(prefix + "b.png") == b"B"
    assert not await blobstore.exists(prefix + "a.png")


async def test_signed_url_downloads_the_same_bytes(blobstore: BlobStore, fetch_url: FetchUrl) -> None:
    data = os.urandom(700_000)
    key = _key("large.png")
    await blobstore.put(key, data, "image/png")

    before = datetime.now(UTC)
    signed = await blobstore.signed_url(key, expires_in=timedelta(minutes=15))
    status, headers, body = await fetch_url(signed.url)

    assert status == 200
    assert body == data
    assert headers["content-type"] == "image/png"
    assert signed.expires_at.tzinfo is not None
    assert before + timedelta(minutes=14) < signed.expires_at <= before + timedelta(minutes=16)


async def test_signed_url_with_download_name(blobstore: BlobStore, fetch_url: FetchUrl) -> None:
    key = _key("f00d.mp4")
    await blobstore.put(key, b"\x00\x00\x00\x18ftypmp42", "video/mp4")

    signed = await blobstore.signed_url(key, expires_in=timedelta(minutes=5), download_name="sunset clip.mp4")
    status, headers, body = await fetch_url(signed.url)

    assert status == 200
    assert body == b"\x00\x00\x00\x18ftypmp42"
    assert "sunset clip.mp4" in headers["content-disposition"]


async def test_signed_url_of_a_deleted_object_is_not_found(blobstore: BlobStore, fetch_url: FetchUrl) -> None:
    key = _key("removed.png")
    await blobstore.put(key, b"soon gone", "image/png")
    signed = await blobstore.signed_url(key, expires_in=timedelta(minutes=5))
    await blobstore.delete(key)

    status, _, _ = await fetch_url(signed.url)

    assert status == 404


# ---------------------------------------------------------------- uploads


async def test_upload_target_stores_what_the_client_sends(
    blobstore: BlobStore, send_upload: SendUpload
) -> None:
    data = b"\x89PNG\r\n\x1a\n" + os.urandom(300_000)
    key = _key("upload.png")
    before = datetime.now(UTC)

    target = await blobstore.upload_url(
        key, content_type="image/png", max_bytes=len(data), expires_in=timedelta(minutes=10)
    )
    status = await send_upload(target, data)

    assert 200 <= status < 300
    assert before + timedelta(minutes=9) < target.expires_at <= before + timedelta(minutes=11)
    stat = await blobstore.stat(key)
    assert (stat.key, stat.size, stat.content_type) == (key, len(data), "image/png")
    assert stat.sha256 in ("", hashlib.sha256(data).hexdigest())
    assert await blobstore.read_prefix(key, 8) == data[:8]
    assert await blobstore.get(key) == data


async def test_an_upload_over_the_cap_is_refused_and_nothing_is_kept(
    blobstore: BlobStore, send_upload: SendUpload
) -> None:
    key = _key("too-big.mp4")
    target = await blobstore.upload_url(
        key, content_type="video/mp4", max_bytes=1000, expires_in=timedelta(minutes=5)
    )

    status = await send_upload(target, os.urandom(1001))

    assert status in (400, 413)
    assert not await blobstore.exists(key)


async def test_a_tampered_upload_target_is_refused(blobstore: BlobStore, send_upload: SendUpload) -> None:
    key = _key("mine.png")
    target = await blobstore.upload_url(
        key, content_type="image/png", max_bytes=100, expires_in=timedelta(minutes=5)
    )
    elsewhere = UploadTarget(
        target.url.replace("mine.png", "theirs.png"), target.method, target.headers, target.expires_at
    )

    assert await send_upload(elsewhere, b"x" * 10) == 403
    assert not await blobstore.exists(key.replace("mine.png", "theirs.png"))


async def test_stat_and_read_prefix_of_stored_objects(blobstore: BlobStore) -> None:
    key = _key("short.txt")
    stored = await blobstore.put(key, b"abc", "text/plain")
    empty = _key("empty.txt")
    await blobstore.put(empty, b"", "text/plain")

    stat = await blobstore.stat(key)

    assert (stat.size, stat.content_type, stat.sha256) == (3, "text/plain", stored.sha256)
    assert await blobstore.read_prefix(key, 64) == b"abc"
    assert await blobstore.read_prefix(key, 2) == b"ab"
    assert await blobstore.read_prefix(empty, 64) == b""
    assert (await blobstore.stat(empty)).size == 0


async def test_stat_and_read_prefix_of_a_missing_object_raise_blob_not_found(blobstore: BlobStore) -> None:
    key = _key("nothing.png")
    with pytest.raises(BlobNotFound):
        await blobstore.stat(key)
    with pytest.raises(BlobNotFound):
        await blobstore.read_prefix(key, 16)
