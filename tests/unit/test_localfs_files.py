"""LocalBlobStore specifics: key safety, the sidecar, and the signed `/files` route (signatures, ranges)."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import httpx
import pytest
from starlette.applications import Starlette
from starlette.types import Message

from backends.blobs.localfs import CHUNK_SIZE, LocalBlobStore, files_route

SECRET = b"unit-test-secret-0123456789abcdef"
DATA = bytes(range(256)) * 4  # 1024 bytes, every byte value
KEY = "assets/ab/abcdef.png"


@pytest.fixture
def store(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", base_url="http://files.test/", secret=SECRET)


@pytest.fixture
def app(store: LocalBlobStore) -> Starlette:
    return Starlette(routes=[files_route(store)])


@pytest.fixture
async def client(app: Starlette) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://files.test") as http:
        yield http


@pytest.fixture
async def url(store: LocalBlobStore) -> str:
    await store.put(KEY, DATA, "image/png")
    return (await store.signed_url(KEY, expires_in=timedelta(minutes=10))).url


def _manual_url(store: LocalBlobStore, key: str, expires: int, name: str | None = None) -> str:
    query = f"expires={expires}&sig={store.sign(key, expires, name)}"
    if name is not None:
        query += f"&name={quote(name)}"
    return f"/files/{quote(key)}?{query}"


def _with_query(url: str, **changes: str) -> str:
    parts = urlsplit(url)
    query = {k: v[0] for k, v in parse_qs(parts.query).items()} | changes
    return f"{parts.path}?" + "&".join(f"{k}={quote(v)}" for k, v in query.items())


# ---------------------------------------------------------------- keys and storage


@pytest.mark.parametrize(
    "key",
    [
        "../escape",
        "a/../../b",
        "a/..",
        "/etc/passwd",
        "a\\b",
        "",
        "a//b",
        "./a",
        "a/",
        "x.png.meta.json",
        "a\x00b",
        "a\nb",
    ],
)
async def test_unsafe_keys_are_rejected(store: LocalBlobStore, key: str) -> None:
    with pytest.raises(ValueError):
        await store.put(key, b"x", "image/png")
    with pytest.raises(ValueError):
        await store.get(key)
    with pytest.raises(ValueError):
        await store.exists(key)
    with pytest.raises(ValueError):
        await store.delete(key)
    with pytest.raises(ValueError):
        await store.signed_url(key, expires_in=timedelta(minutes=1))


async def test_symlink_out_of_the_root_is_rejected(store: LocalBlobStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "assets").symlink_to(outside, target_is_directory=True)
    with pytest.raises(ValueError):
        await store.put("assets/x.png", b"x", "image/png")


async def test_bad_content_type_is_rejected(store: LocalBlobStore) -> None:
    with pytest.raises(ValueError):
        await store.put(KEY, b"x", "image/png\r\nSet-Cookie: a=b")


def test_short_secret_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        LocalBlobStore(tmp_path, base_url="http://x", secret=b"short")


async def test_put_writes_file_and_sidecar_without_leftovers(store: LocalBlobStore) -> None:
    await store.put(KEY, DATA, "image/png", {"job": "j1"})
    await store.put(KEY, DATA[:10], "image/png", {"job": "j2"})

    folder = store.root / "assets" / "ab"
    assert sorted(p.name for p in folder.iterdir()) == ["abcdef.png", "abcdef.png.meta.json"]
    meta = json.loads((folder / "abcdef.png.meta.json").read_text())
    assert meta["content_type"] == "image/png"
    assert meta["metadata"] == {"job": "j2"}
    assert meta["sha256"] == hashlib.sha256(DATA[:10]).hexdigest()
    assert meta["size"] == 10


async def test_delete_removes_the_sidecar(store: LocalBlobStore) -> None:
    await store.put(KEY, DATA, "image/png")
    await store.delete(KEY)
    assert list((store.root / "assets" / "ab").iterdir()) == []


# ---------------------------------------------------------------- signed URLs


async def test_signed_url_shape(store: LocalBlobStore) -> None:
    signed = await store.signed_url(
        "assets/a b/c.png", expires_in=timedelta(seconds=90), download_name="x y.png"
    )
    parts = urlsplit(signed.url)
    query = parse_qs(parts.query)

    assert f"{parts.scheme}://{parts.netloc}{parts.path}" == "http://files.test/files/assets/a%20b/c.png"
    assert int(query["expires"][0]) == int(signed.expires_at.timestamp())
    assert signed.expires_at.tzinfo == UTC
    assert query["name"] == ["x y.png"]
    assert store.verify("assets/a b/c.png", query["expires"][0], query["sig"][0], "x y.png")
    assert not store.verify("assets/a b/c.png", query["expires"][0], query["sig"][0], None)


@pytest.mark.parametrize("expires_in", [timedelta(0), timedelta(seconds=-5), timedelta(days=8)])
async def test_signed_url_lifetime_is_bounded(store: LocalBlobStore, expires_in: timedelta) -> None:
    with pytest.raises(ValueError):
        await store.signed_url(KEY, expires_in=expires_in)


async def test_valid_link_serves_the_file_with_headers(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(url)

    assert response.status_code == 200
    assert response.content == DATA
    assert response.headers["content-type"] == "image/png"
    assert response.headers["content-length"] == str(len(DATA))
    assert response.headers["etag"] == f'"{hashlib.sha256(DATA).hexdigest()}"'
    assert response.headers["accept-ranges"] == "bytes"
    assert response.headers["x-content-type-options"] == "nosniff"
    assert "content-disposition" not in response.headers
    directive, max_age = response.headers["cache-control"].split(", max-age=")
    assert directive == "private"
    assert 590 <= int(max_age) <= 600


async def test_tampered_signature_is_forbidden(client: httpx.AsyncClient, url: str) -> None:
    sig = parse_qs(urlsplit(url).query)["sig"][0]
    flipped = ("0" if sig[0] != "0" else "1") + sig[1:]

    response = await client.get(_with_query(url, sig=flipped))

    assert response.status_code == 403
    assert response.json() == {"error": {"code": "FORBIDDEN", "message": "This link is invalid."}}


@pytest.mark.parametrize("sig", ["", "zz", "é" * 64, "A" * 64])
async def test_malformed_signature_is_forbidden(client: httpx.AsyncClient, url: str, sig: str) -> None:
    assert (await client.get(_with_query(url, sig=sig))).status_code == 403


async def test_changed_key_is_forbidden(store: LocalBlobStore, client: httpx.AsyncClient, url: str) -> None:
    await store.put("assets/ab/other.png", b"secret", "image/png")
    other = url.replace("abcdef.png", "other.png")
    assert (await client.get(other)).status_code == 403


async def test_changed_expiry_is_forbidden(client: httpx.AsyncClient, url: str) -> None:
    expires = int(parse_qs(urlsplit(url).query)["expires"][0])
    assert (await client.get(_with_query(url, expires=str(expires + 3600)))).status_code == 403


async def test_added_download_name_is_forbidden(client: httpx.AsyncClient, url: str) -> None:
    assert (await client.get(_with_query(url, name="evil.html"))).status_code == 403


@pytest.mark.parametrize("drop", ["sig", "expires"])
async def test_missing_signature_parts_are_forbidden(client: httpx.AsyncClient, url: str, drop: str) -> None:
    parts = urlsplit(url)
    query = "&".join(p for p in parts.query.split("&") if not p.startswith(drop + "="))
    response = await client.get(f"{parts.path}?{query}")
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "FORBIDDEN"


async def test_expired_link_is_forbidden(store: LocalBlobStore, client: httpx.AsyncClient, url: str) -> None:
    expired = _manual_url(store, KEY, int(time.time()) - 5)

    response = await client.get(expired)

    assert response.status_code == 403
    assert response.json()["error"] == {"code": "FORBIDDEN", "message": "This link has expired."}
    assert not store.verify(KEY, int(time.time()) - 5, store.sign(KEY, int(time.time()) - 5), None)


async def test_traversal_in_the_url_path_is_forbidden(client: httpx.AsyncClient, url: str) -> None:
    response = await client.get(
        _with_query(url).replace("/files/assets/ab/", "/files/assets/ab%2F..%2F..%2F")
    )
    assert response.status_code == 403


async def test_deleted_object_is_not_found(
    store: LocalBlobStore, client: httpx.AsyncClient, url: str
) -> None:
    await store.delete(KEY)
    response = await client.get(url)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


async def test_download_name_sets_content_disposition(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    await store.put(KEY, DATA, "image/png")
    plain = await store.signed_url(KEY, expires_in=timedelta(minutes=1), download_name="cat.png")
    fancy = await store.signed_url(KEY, expires_in=timedelta(minutes=1), download_name='chat "noir" é.png')

    plain_disposition = (await client.get(plain.url)).headers["content-disposition"]
    fancy_disposition = (await client.get(fancy.url)).headers["content-disposition"]

    assert plain_disposition == 'inline; filename="cat.png"'
    assert (
        fancy_disposition
        == "inline; filename=\"chat _noir_ _.png\"; filename*=UTF-8''chat%20%22noir%22%20%C3%A9.png"
    )


@pytest.mark.parametrize(
    ("key", "content_type"), [("assets/cd/clip.mp4", "video/mp4"), ("assets/cd/pic.png", "image/png")]
)
async def test_content_type_is_the_stored_one(
    store: LocalBlobStore, client: httpx.AsyncClient, key: str, content_type: str
) -> None:
    await store.put(key, b"media", content_type)
    response = await client.get((await store.signed_url(key, expires_in=timedelta(minutes=1))).url)
    assert response.headers["content-type"] == content_type


async def test_missing_sidecar_falls_back_to_the_file_itself(
    store: LocalBlobStore, client: httpx.AsyncClient
) -> None:
    key = "assets/cd/clip.mp4"
    await store.put(key, b"moov", "video/mp4")
    (store.root / "assets" / "cd" / "clip.mp4.meta.json").unlink()

    response = await client.get((await store.signed_url(key, expires_in=timedelta(minutes=1))).url)

    assert response.status_code == 200
    assert response.headers["content-type"] == "video/mp4"
    assert response.headers["etag"] == f'"{hashlib.sha256(b"moov").hexdigest()}"'


async def test_if_none_match_gives_304(client: httpx.AsyncClient, url: str) -> None:
    etag = f'"{hashlib.sha256(DATA).hexdigest()}"'
    response = await client.get(url, headers={"If-None-Match": f'"other", W/{etag}'})
    assert response.status_code == 304
    assert response.content == b""
    assert response.headers["etag"] == etag


# ---------------------------------------------------------------- ranges and HEAD


@pytest.mark.parametrize(
    ("header", "first", "last"),
    [
        ("bytes=0-9", 0, 9),
        ("bytes=1000-", 1000, 1023),
        ("bytes=-5", 1019, 1023),
        ("bytes=-5000", 0, 1023),
        ("bytes=1020-99999", 1020, 1023),
        ("Bytes=7-7", 7, 7),
    ],
)
async def test_single_range_gives_206(
    client: httpx.AsyncClient, url: str, header: str, first: int, last: int
) -> None:
    response = await client.get(url, headers={"Range": header})

    assert response.status_code == 206
    assert response.content == DATA[first : last + 1]
    assert response.headers["content-range"] == f"bytes {first}-{last}/{len(DATA)}"
    assert response.headers["content-length"] == str(last - first + 1)
    assert response.headers["content-type"] == "image/png"


@pytest.mark.parametrize("header", ["bytes=1024-", "bytes=5000-6000", "bytes=-0"])
async def test_unsatisfiable_range_gives_416(client: httpx.AsyncClient, url: str, header: str) -> None:
    response = await client.get(url, headers={"Range": header})

    assert response.status_code == 416
    assert response.headers["content-range"] == f"bytes */{len(DATA)}"


@pytest.mark.parametrize("header", ["bytes=0-1,5-6", "bytes=9-3", "bytes=-", "items=0-1", "bytes=a-b"])
async def test_multi_or_malformed_range_serves_everything(
    client: httpx.AsyncClient, url: str, header: str
) -> None:
    response = await client.get(url, headers={"Range": header})

    assert response.status_code == 200
    assert response.content == DATA
    assert "content-range" not in response.headers


async def test_if_range_with_a_stale_etag_serves_everything(client: httpx.AsyncClient, url: str) -> None:
    stale = await client.get(url, headers={"Range": "bytes=0-9", "If-Range": '"stale"'})
    fresh = await client.get(
        url, headers={"Range": "bytes=0-9", "If-Range": f'"{hashlib.sha256(DATA).hexdigest()}"'}
    )
    assert (stale.status_code, len(stale.content)) == (200, len(DATA))
    assert (fresh.status_code, fresh.content) == (206, DATA[:10])


async def test_head_gives_headers_only(client: httpx.AsyncClient, url: str) -> None:
    full = await client.head(url)
    part = await client.head(url, headers={"Range": "bytes=-10"})

    assert (full.status_code, full.content, full.headers["content-length"]) == (200, b"", str(len(DATA)))
    assert full.headers["content-type"] == "image/png"
    assert (part.status_code, part.content, part.headers["content-length"]) == (206, b"", "10")
    assert part.headers["content-range"] == f"bytes 1014-1023/{len(DATA)}"


async def test_head_with_a_bad_signature_is_forbidden(client: httpx.AsyncClient, url: str) -> None:
    assert (await client.head(_with_query(url, sig="0" * 64))).status_code == 403


async def test_large_file_is_streamed_in_chunks(store: LocalBlobStore, app: Starlette) -> None:
    data = bytes(range(256)) * (CHUNK_SIZE // 256 * 3 + 7)
    await store.put("assets/ef/big.mp4", data, "video/mp4")
    url = urlsplit((await store.signed_url("assets/ef/big.mp4", expires_in=timedelta(minutes=1))).url)
    sent: list[Message] = []

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: Message) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": url.path,
        "raw_path": url.path.encode(),
        "query_string": url.query.encode(),
        "headers": [(b"host", b"files.test")],
        "server": ("files.test", 80),
        "client": ("127.0.0.1", 1234),
        "root_path": "",
    }
    await app(scope, receive, send)

    bodies = [m["body"] for m in sent if m["type"] == "http.response.body"]
    assert sent[0]["status"] == 200
    assert len(bodies) >= 4
    assert max(len(b) for b in bodies) <= CHUNK_SIZE
    assert b"".join(bodies) == data


async def test_expires_at_is_timezone_aware_utc(store: LocalBlobStore) -> None:
    signed = await store.signed_url(KEY, expires_in=timedelta(hours=1))
    assert signed.expires_at.utcoffset() == timedelta(0)
    assert signed.expires_at > datetime.now(UTC) + timedelta(minutes=59)
