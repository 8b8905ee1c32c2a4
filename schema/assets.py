"""Assets (finished media) in the schema."""

from __future__ import annotations

from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Annotated, Any, cast

import strawberry
from strawberry.types import Info

from domain.ports import Document, SignedUrl
from schema.context import StudioContext
from schema.nodes import Node, PageInfo, encode_id
from schema.scalars import JSON, MediaKind, moment

if TYPE_CHECKING:
    from schema.collections import CollectionConnection
    from schema.jobs import Job
    from schema.teams import Team
    from schema.users import User


@strawberry.type(description="A generated or uploaded media file in the library.")
class Asset(Node):
    _doc: strawberry.Private[Document]
    _signed: strawberry.Private[dict[str, SignedUrl]]

    @classmethod
    def from_doc(cls, doc: Document) -> Asset:
        return cls(id=encode_id("Asset", doc.id), _doc=doc, _signed={})

    def _get(self, name: str) -> Any:
        return self._doc.data.get(name)

    @strawberry.field
    def kind(self) -> MediaKind:
        return MediaKind(self._get("kind"))

    @strawberry.field
    def title(self) -> str | None:
        return self._get("title")

    @strawberry.field
    def prompt(self) -> str | None:
        return self._get("prompt")

    @strawberry.field
    def negative_prompt(self) -> str | None:
        return self._get("negative_prompt")

    @strawberry.field
    def model(self) -> str:
        return self._get("model") or ""

    @strawberry.field(description="Aspect ratio, seed, duration, ... as sent to the model.")
    def parameters(self) -> JSON:
        return cast(JSON, self._get("parameters") or {})

    @strawberry.field
    def mime_type(self) -> str:
        return self._get("mime_type")

    @strawberry.field
    def bytes(self) -> int:
        return int(self._get("bytes") or 0)

    @strawberry.field
    def width(self) -> int | None:
        return self._get("width")

    @strawberry.field
    def height(self) -> int | None:
        return self._get("height")

    @strawberry.field
    def duration_seconds(self) -> float | None:
        return self._get("duration_seconds")

    @strawberry.field(description="The text of TEXT assets.")
    def text(self) -> str | None:
        return self._get("text")

    async def _signed_url(self, info: Info[StudioContext, None]) -> SignedUrl:
        signed = self._signed.get("url")
        if signed is None:
            services = info.context.services
            ttl = timedelta(seconds=services.settings.signed_url_ttl_seconds)
            signed = await services.blobs.signed_url(self._get("blob_key"), expires_in=ttl)
            self._signed["url"] = signed
        return signed

    @strawberry.field(description="A time-limited signed URL; never a public object.")
    async def url(self, info: Info[StudioContext, None]) -> str:
        return (await self._signed_url(info)).url

    @strawberry.field
    async def url_expires_at(self, info: Info[StudioContext, None]) -> datetime:
        return (await self._signed_url(info)).expires_at

    @strawberry.field(description="Images are their own thumbnail; other kinds have none yet.")
    async def thumbnail_url(self, info: Info[StudioContext, None]) -> str | None:
        if str(self._get("mime_type") or "").startswith("image/"):
            return (await self._signed_url(info)).url
        return None

    @strawberry.field
    def content_sha256(self) -> str:
        return self._get("content_sha256") or ""

    @strawberry.field
    async def owner(
        self, info: Info[StudioContext, None]
    ) -> Annotated[User, strawberry.lazy("schema.users")]:
        from schema.users import User

        doc = await info.context.loaders.users.load(self._get("owner_id"))
        if doc is None:
            raise RuntimeError("asset owner is missing")
        return User.from_doc(doc)

    @strawberry.field(description="The team the asset was made in; null for personal assets.")
    async def team(
        self, info: Info[StudioContext, None]
    ) -> Annotated[Team, strawberry.lazy("schema.teams")] | None:
        from schema.teams import team_of

        return await team_of(info, self._get("team_id"))

    @strawberry.field
    def tags(self) -> list[str]:
        return list(self._get("tags") or [])

    @strawberry.field(description="Whether the caller marked it as a favorite.")
    def favorite(self, info: Info[StudioContext, None]) -> bool:
        actor = info.context.actor
        return actor is not None and actor.id in (self._get("favorited_by") or ())

    @strawberry.field
    async def job(
        self, info: Info[StudioContext, None]
    ) -> Annotated[Job, strawberry.lazy("schema.jobs")] | None:
        from schema.jobs import Job

        job_id = self._get("job_id")
        if not job_id:
            return None
        doc = await info.context.loaders.jobs.load(job_id)
        return Job.from_doc(doc) if doc else None

    @strawberry.field(description="The source of an upscale or edit, or a video's first frame.")
    async def parent(self, info: Info[StudioContext, None]) -> Asset | None:
        parent_id = self._get("parent_id")
        if not parent_id:
            return None
        doc = await info.context.loaders.assets.load(parent_id)
        return Asset.from_doc(doc) if doc and not doc.data.get("deleted_at") else None

    @strawberry.field(
        description="The collections it is in that the caller may see, in the order it joined them."
    )
    async def collections(
        self, info: Info[StudioContext, None], first: int | None = 20, after: str | None = None
    ) -> Annotated[CollectionConnection, strawberry.lazy("schema.collections")]:
        from resolvers.collections import asset_collections

        return await asset_collections(info, self._doc, first, after)

    @strawberry.field(description="Versions made from this one (upscales, edits, videos from it as a frame).")
    async def derivatives(self, info: Info[StudioContext, None]) -> list[Asset]:
        from resolvers.versions import derivatives

        return [Asset.from_doc(doc) for doc in await derivatives(info, self._doc.id)]

    @strawberry.field
    def cost_usd(self) -> float:
        return float(self._get("cost_usd") or 0.0)

    @strawberry.field
    def created_at(self) -> datetime:
        return moment(self._get("created_at"))  # type: ignore[return-value]

    @strawberry.field
    def updated_at(self) -> datetime:
        return moment(self._get("updated_at") or self._get("created_at"))  # type: ignore[return-value]

    @strawberry.field(description="Soft-deleted: restorable until purgeAt.")
    def deleted_at(self) -> datetime | None:
        return moment(self._get("deleted_at"))

    @strawberry.field
    def purge_at(self) -> datetime | None:
        return moment(self._get("purge_at"))


@strawberry.type
class AssetEdge:
    node: Asset
    cursor: str


@strawberry.type
class AssetConnection:
    edges: list[AssetEdge]
    page_info: PageInfo
    _total: strawberry.Private[Any]

    @strawberry.field(description="How many assets match the filter, over all pages.")
    async def total_count(self) -> int:
        return int(await self._total())


@strawberry.input
class AssetFilter:
    kinds: list[MediaKind] | None = None
    tags: list[str] | None = strawberry.field(default=None, description="All of these.")
    favorite: bool | None = None
    search: str | None = strawberry.field(
        default=None,
        description="Words (or word prefixes) of prompt, title, tags; sort by RELEVANCE for the best first.",
    )
    similar_to: strawberry.ID | None = strawberry.field(
        default=None,
        description="Assets like this one (which the caller must be able to see), most similar first; "
        "the asset itself is left out. The sort is ignored.",
    )
    created_after: datetime | None = None
    created_before: datetime | None = None
    model: str | None = None
    deleted: bool = strawberry.field(default=False, description="true: the caller's trash.")
    team_id: strawberry.ID | None = strawberry.field(
        default=None, description="A team's assets (made in it or shared with it); its members only."
    )
    shared_with_me: bool | None = strawberry.field(
        default=None,
        description="true: assets other people shared with the caller directly (shareAsset withUserEmail), "
        "instead of the caller's own. Not with teamId.",
    )
    collection_id: strawberry.ID | None = strawberry.field(
        default=None, description="Only this collection's assets."
    )


@strawberry.enum
class AssetSortField(Enum):
    CREATED_AT = "CREATED_AT"
    UPDATED_AT = "UPDATED_AT"
    BYTES = "BYTES"
    RELEVANCE = strawberry.enum_value(
        "RELEVANCE", description="Best matches of filter.search first (DESC); needs filter.search."
    )


@strawberry.enum
class SortDirection(Enum):
    ASC = "ASC"
    DESC = "DESC"


@strawberry.input
class AssetSort:
    field: AssetSortField = AssetSortField.CREATED_AT
    direction: SortDirection = SortDirection.DESC
