"""Who may see and change a collection, and how membership is written down.

A collection's visibility is denormalised onto it as `readers` (`user:<owner>` for a personal one,
`team:<id>` for a team's). Membership lives in `collection_items` documents (`<collection>:<asset>`,
with a `position` that keeps the order of addition) and, for filtering the library in one query,
as `collection_ids` on the asset, whose search terms then hold `col:<collection id>`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.access import Actor, can_read
from domain.errors import bad_input, forbidden, not_found
from domain.ports import DocStore, Document
from domain.users import Role

COLLECTIONS = "collections"
COLLECTION_ITEMS = "collection_items"
MAX_COLLECTIONS_PER_ASSET = 100  # each one is a search term on the asset, an entry in every index holding it
EDITING_TEAM_ROLES = ("OWNER", "EDITOR")


def item_id(collection_id: str, asset_id: str) -> str:
    return f"{collection_id}:{asset_id}"


def membership_term(collection_id: str) -> str:
    """The search term that puts an asset in a collection's filtered listing."""
    return f"col:{collection_id}"


def collection_readers(owner_id: str, team_id: str | None) -> list[str]:
    return [f"team:{team_id}"] if team_id else [f"user:{owner_id}"]


def can_read_collection(actor: Actor, data: Mapping[str, Any]) -> bool:
    """Owner, admin, or a member of the owning team (any role)."""
    return can_read(actor, data)


def can_edit_collection(actor: Actor, data: Mapping[str, Any]) -> bool:
    """A personal collection: its owner; a team's: the team's owners and editors. Admins always."""
    if actor.user.role is Role.VIEWER:
        return False
    if actor.user.is_admin:
        return True
    team_id = data.get("team_id")
    if team_id:
        return actor.team_role(str(team_id)) in EDITING_TEAM_ROLES
    return data.get("owner_id") == actor.id


async def readable_collection(docs: DocStore, actor: Actor, collection_id: str) -> Document:
    """The collection if the caller may see it; NOT_FOUND otherwise (never a hint that it exists)."""
    doc = await docs.get(COLLECTIONS, collection_id)
    if doc is None or not can_read_collection(actor, doc.data):
        raise not_found("collection", collection_id)
    return doc


async def check_filing(docs: DocStore, actor: Actor, collection_id: str) -> None:
    """A generation's `collectionId`, checked at submit: it must exist and be editable by the caller."""
    doc = await docs.get(COLLECTIONS, collection_id)
    if doc is None or not can_read_collection(actor, doc.data):
        raise bad_input("input.collectionId", f"collection {collection_id} not found")
    if not can_edit_collection(actor, doc.data):
        raise forbidden("Only the collection's owner (or its team's editors) may file results into it.")
