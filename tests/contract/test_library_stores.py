"""Collections, the trash and versions on every docstore adapter: the embedded default and Firestore.

The API tests run on the embedded store; this runs the same domain code on each adapter of the
shared docstore suite, so the queries, transactions and conditions it relies on hold on Firestore too.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backends.blobs.localfs import LocalBlobStore
from domain.access import Actor
from domain.admin import AuditLog, RequestInfo
from domain.assets import ASSETS, blob_key
from domain.clock import new_id, now_iso
from domain.collections import Collections
from domain.errors import ErrorCode, StudioError
from domain.library import AssetFilter, AssetSort, Library, asset_terms
from domain.pages import PageRequest
from domain.ports import DocStore, Document
from domain.trash import Trash
from domain.users import Directory, Role, UserStatus
from domain.versions import derivatives_of
from tests.contract.test_docstore import DOC_BACKENDS

REQUEST = RequestInfo("contract")


@pytest.fixture(params=sorted(DOC_BACKENDS))
async def docs(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[DocStore]:
    backend = DOC_BACKENDS[request.param]
    for name in backend.fixtures:
        request.getfixturevalue(name)
    database = backend.new_database(tmp_path)
    store = backend.connect(database)
    try:
        yield store
    finally:
        await store.close()
        if backend.drop_database is not None:
            backend.drop_database(database)


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:1", secret=b"s" * 32)


async def person(docs: DocStore, name: str, role: Role = Role.USER) -> Actor:
    return Actor(await Directory(docs).put(f"{name}@example.com", role=role, status=UserStatus.ACTIVE))


async def an_asset(
    docs: DocStore, blobs: LocalBlobStore, owner: Actor, prompt: str, parents: list[str] | None = None
) -> str:
    asset_id = new_id()
    key = blob_key(asset_id, "image/png")
    await blobs.put(key, b"\x89PNG\r\n\x1a\n" + prompt.encode(), "image/png")
    now = now_iso()
    data: dict[str, Any] = {
        "kind": "IMAGE",
        "prompt": prompt,
        "title": None,
        "tags": [],
        "favorited_by": [],
        "model": "m",
        "mime_type": "image/png",
        "bytes": 10,
        "blob_key": key,
        "owner_id": owner.id,
        "readers": [f"user:{owner.id}"],
        "parent_id": (parents or [None])[0],
        "parent_ids": parents or [],
        "created_at": now,
        "updated_at": now,
        "deleted": False,
        "deleted_at": None,
    }
    data["search_terms"] = asset_terms(data)
    await docs.create(ASSETS, asset_id, data)
    return asset_id


async def listed(library: Library, who: Actor, **filters: Any) -> list[str]:
    page = await library.list(who, AssetFilter(**filters), AssetSort(), PageRequest(first=50))
    return [doc.id for doc in page.items]


async def test_collections_keep_order_filter_the_library_and_leave_assets_when_deleted(
    docs: DocStore, blobs: LocalBlobStore
) -> None:
    owner, stranger = await person(docs, "owner"), await person(docs, "stranger")
    a, b, c = [await an_asset(docs, blobs, owner, f"tide {i}") for i in range(3)]
    theirs = await an_asset(docs, blobs, stranger, "elsewhere")
    collections = Collections(docs)
    made = await collections.create(owner, "Tides", "the sea", None)

    await collections.add(owner, made.id, [c, a])
    await collections.add(owner, made.id, [a, b])
    with pytest.raises(StudioError) as refused:
        await collections.add(owner, made.id, [theirs])
    assert refused.value.code is ErrorCode.NOT_FOUND

    async def load(ids: list[str]) -> list[Document | None]:
        return await docs.get_many(ASSETS, ids)

    page = await collections.assets_page(owner, made, PageRequest(first=10), load)
    assert [doc.id for doc in page.items] == [c, a, b] and await page.total() == 3
    library = Library(docs)
    assert set(await listed(library, owner, collection_id=made.id)) == {a, b, c}
    assert await listed(library, owner, collection_id=made.id, search="tide") != []

    await collections.remove(owner, made.id, [a])
    assert set(await listed(library, owner, collection_id=made.id)) == {b, c}
    assert await collections.delete(owner, made.id)
    assert set(await listed(library, owner)) == {a, b, c}
    for doc in await docs.get_many(ASSETS, [a, b, c]):
        assert doc is not None and doc.data["collection_ids"] == []


async def test_trash_restore_and_a_purge_finished_by_a_second_run(
    docs: DocStore, blobs: LocalBlobStore
) -> None:
    owner, admin = await person(docs, "owner"), await person(docs, "admin", Role.ADMIN)
    doomed, saved, crashed = [await an_asset(docs, blobs, owner, f"drift {i}") for i in range(3)]
    collections = Collections(docs)
    made = await collections.create(owner, "Drift", None, None)
    await collections.add(owner, made.id, [doomed, saved])
    trash = Trash(docs, blobs, AuditLog(docs))
    for asset_id in (doomed, saved, crashed):
        await trash.delete(owner, asset_id, REQUEST)
    await trash.restore(owner, saved, REQUEST)
    # A purge that stopped after the tombstone and the blob: the next run must finish it.
    crashed_doc = await docs.update(ASSETS, crashed, {"purging": True})
    await blobs.delete(crashed_doc.data["blob_key"])
    with pytest.raises(StudioError):
        await trash.restore(owner, crashed, REQUEST)

    assert await trash.purge(admin, 30, REQUEST) == 0
    assert await trash.purge(admin, 0, REQUEST, dry_run=True) == 2
    assert await trash.purge(admin, 0, REQUEST) == 2
    assert await trash.purge(admin, 0, REQUEST) == 0

    assert await docs.get(ASSETS, doomed) is None and await docs.get(ASSETS, crashed) is None
    kept = await docs.get(ASSETS, saved)
    assert kept is not None and await blobs.exists(kept.data["blob_key"])
    assert not await blobs.exists(blob_key(doomed, "image/png"))

    async def load(ids: list[str]) -> list[Document | None]:
        return await docs.get_many(ASSETS, ids)

    page = await collections.assets_page(owner, made, PageRequest(first=10), load)
    assert [doc.id for doc in page.items] == [saved] and await page.total() == 1


async def test_derivatives_are_found_by_any_of_their_parents(docs: DocStore, blobs: LocalBlobStore) -> None:
    owner, stranger = await person(docs, "owner"), await person(docs, "stranger")
    first, last, other = [await an_asset(docs, blobs, owner, f"frame {i}") for i in range(3)]
    video = await an_asset(docs, blobs, owner, "between", parents=[first, last])
    upscale = await an_asset(docs, blobs, owner, "bigger", parents=[first])

    found = await derivatives_of(docs, owner, [first, last, other])
    assert [[doc.id for doc in group] for group in found] == [[video, upscale], [video], []]
    assert await derivatives_of(docs, stranger, [first]) == [[]]
