"""Collections in the schema: named, ordered sets of assets."""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

import strawberry
from strawberry.types import Info

from domain.pages import Page, PageRequest
from domain.ports import Document
from schema.context import StudioContext
from schema.nodes import Node, PageInfo, encode_id
from schema.scalars import moment

if TYPE_CHECKING:
    from schema.assets import AssetConnection
    from schema.teams import Team
    from schema.users import User


@strawberry.type(
    description="A named, ordered set of assets; personal or a team's. Deleting it keeps its assets."
)
class Collection(Node):
    _doc: strawberry.Private[Document]

    @classmethod
    def from_doc(cls, doc: Document) -> Collection:
        return cls(id=encode_id("Collection", doc.id), _doc=doc)

    @strawberry.field
    def name(self) -> str:
        return str(self._doc.data.get("name") or "")

    @strawberry.field
    def description(self) -> str | None:
        return self._doc.data.get("description")

    @strawberry.field
    async def owner(
        self, info: Info[StudioContext, None]
    ) -> Annotated[User, strawberry.lazy("schema.users")]:
        from schema.users import User

        doc = await info.context.loaders.users.load(str(self._doc.data.get("owner_id")))
        if doc is None:
            raise RuntimeError("collection owner is missing")
        return User.from_doc(doc)

    @strawberry.field(description="The team that owns it; null for a personal collection.")
    async def team(
        self, info: Info[StudioContext, None]
    ) -> Annotated[Team, strawberry.lazy("schema.teams")] | None:
        from schema.teams import team_of

        return await team_of(info, self._doc.data.get("team_id"))

    @strawberry.field(
        description="The collection's assets in the order they were added (trashed ones left out)."
    )
    async def assets(
        self, info: Info[StudioContext, None], first: int | None = 20, after: str | None = None
    ) -> Annotated[AssetConnection, strawberry.lazy("schema.assets")]:
        from resolvers.pages import asset_connection

        loader = info.context.loaders.assets
        page = await info.context.services.collections.assets_page(
            info.context.actor, self._doc, PageRequest(first=first, after=after), loader.load_many
        )
        return asset_connection(page)

    @strawberry.field
    def created_at(self) -> datetime:
        return moment(self._doc.data.get("created_at"))  # type: ignore[return-value]

    @strawberry.field
    def updated_at(self) -> datetime:
        return moment(self._doc.data.get("updated_at") or self._doc.data.get("created_at"))  # type: ignore[return-value]


@strawberry.type
class CollectionEdge:
    node: Collection
    cursor: str


@strawberry.type
class CollectionConnection:
    edges: list[CollectionEdge]
    page_info: PageInfo
    _total: strawberry.Private[Any]

    @strawberry.field(description="How many collections there are, over all pages.")
    async def total_count(self) -> int:
        return int(await self._total())


def collection_connection(page: Page) -> CollectionConnection:
    edges = [
        CollectionEdge(node=Collection.from_doc(doc), cursor=cursor)
        for doc, cursor in zip(page.items, page.cursors, strict=True)
    ]
    return CollectionConnection(edges=edges, page_info=PageInfo.of(page), _total=page.total)
