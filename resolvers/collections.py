"""Collection resolvers: thin mappings onto domain.collections."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.errors import ErrorCode, StudioError
from domain.pages import PageRequest
from domain.ports import Document
from schema.collections import Collection, CollectionConnection, collection_connection
from schema.context import StudioContext
from schema.nodes import decode_id, split_id

Ctx = Info[StudioContext, None]


def _asset_ids(values: list[strawberry.ID]) -> list[str | None]:
    """Raw asset ids; None for a well-formed id of another type (it names no asset)."""
    decoded: list[str | None] = []
    for value in values:
        type_name, raw = split_id(value, "assetIds")
        decoded.append(raw if type_name == "Asset" else None)
    return decoded


def _team(team_id: strawberry.ID | None) -> str | None:
    return decode_id(team_id, "Team", "teamId") if team_id is not None else None


async def collection(info: Ctx, id: strawberry.ID) -> Collection | None:
    doc = await info.context.services.collections.get(info.context.actor, decode_id(id, "Collection"))
    return Collection.from_doc(doc)


async def collections(
    info: Ctx, team_id: strawberry.ID | None = None, first: int | None = 20, after: str | None = None
) -> CollectionConnection:
    team = _team(team_id)
    page = await info.context.services.collections.list(
        info.context.actor, team, PageRequest(first=first, after=after)
    )
    return collection_connection(page)


async def create_collection(
    info: Ctx, name: str, description: str | None = None, team_id: strawberry.ID | None = None
) -> Collection:
    team = _team(team_id)
    doc = await info.context.services.collections.create(info.context.actor, name, description, team)
    return Collection.from_doc(doc)


async def update_collection(
    info: Ctx, id: strawberry.ID, name: str | None = None, description: str | None = None
) -> Collection:
    doc = await info.context.services.collections.update(
        info.context.actor, decode_id(id, "Collection"), name=name, description=description
    )
    return Collection.from_doc(doc)


async def delete_collection(info: Ctx, id: strawberry.ID) -> bool:
    return await info.context.services.collections.delete(info.context.actor, decode_id(id, "Collection"))


async def add_to_collection(
    info: Ctx, collection_id: strawberry.ID, asset_ids: list[strawberry.ID]
) -> Collection:
    raw = decode_id(collection_id, "Collection", "collectionId")
    ids = _asset_ids(asset_ids)
    if any(asset_id is None for asset_id in ids):
        raise StudioError(ErrorCode.NOT_FOUND, "Some of these assets were not found.", field="assetIds")
    doc = await info.context.services.collections.add(
        info.context.actor, raw, [asset_id for asset_id in ids if asset_id]
    )
    return Collection.from_doc(doc)


async def remove_from_collection(
    info: Ctx, collection_id: strawberry.ID, asset_ids: list[strawberry.ID]
) -> Collection:
    raw = decode_id(collection_id, "Collection", "collectionId")
    ids = [split_id(value, "assetIds")[1] for value in asset_ids]  # another type's id is simply not in it
    doc = await info.context.services.collections.remove(info.context.actor, raw, ids)
    return Collection.from_doc(doc)


async def asset_collections(
    info: Ctx, asset: Document, first: int | None, after: str | None
) -> CollectionConnection:
    page = await info.context.services.collections.of_asset(
        info.context.actor,
        asset,
        PageRequest(first=first, after=after),
        info.context.loaders.collections.load_many,
    )
    return collection_connection(page)
