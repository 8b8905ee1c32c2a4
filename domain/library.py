"""The library: finding, reading and editing assets the caller may see."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from domain.access import Actor, can_edit, can_read, require_active
from domain.assets import (
    ASSETS,
    MAX_TAG_CHARS,
    MAX_TAGS,
    MAX_TITLE_CHARS,
    normalise_tags,
    query_terms,
    search_terms,
)
from domain.clock import now_iso
from domain.collection_rules import membership_term, readable_collection
from domain.errors import bad_input, forbidden, not_found
from domain.pages import Page, PageRequest, paginate
from domain.ports import DocStore, Document, Filter, Order
from domain.ranked import SEARCH_CAP, SIMILAR_CAP, ranked_page, relevance_scorer, similarity_scorer
from domain.visibility import library_scope

SORT_FIELDS = {"CREATED_AT": "created_at", "UPDATED_AT": "updated_at", "BYTES": "bytes"}
KINDS = ("IMAGE", "VIDEO", "TEXT")


@dataclass(frozen=True)
class AssetFilter:
    kinds: Sequence[str] | None = None
    search: str | None = None
    created_after: str | None = None
    created_before: str | None = None
    model: str | None = None
    tags: Sequence[str] | None = None
    favorite: bool | None = None
    deleted: bool = False
    team_id: str | None = None  # a team's assets instead of the caller's own
    shared_with_me: bool = False  # assets others shared with the caller
    collection_id: str | None = None
    similar_to: str | None = None  # an asset id: rank by likeness to it


@dataclass(frozen=True)
class AssetSort:
    field: str = "CREATED_AT"
    descending: bool = True


class Library:
    """Reads and edits of assets, always through the caller's visibility."""

    def __init__(
        self,
        docs: DocStore,
        *,
        max_page_size: int = 100,
        vectors: bool = False,
        embed_asset: Callable[[dict[str, Any]], Awaitable[str | None]] | None = None,
    ) -> None:
        self._docs = docs
        self._max_page_size = max_page_size
        self._vectors = vectors  # similarTo compares stored embeddings (GENMEDIA_EMBEDDINGS on)
        self._embed_asset = embed_asset  # remakes an asset's embedding when its title or tags change

    async def get(self, actor: Actor | None, asset_id: str) -> Document:
        """An asset the caller may see; NOT_FOUND otherwise (never a hint that it exists)."""
        who = require_active(actor)
        doc = await self._docs.get(ASSETS, asset_id)
        if doc is None or not can_read(who, doc.data) or doc.data.get("deleted_at"):
            raise not_found("asset", asset_id)
        return doc

    async def list(
        self, actor: Actor | None, filters: AssetFilter, sort: AssetSort, page: PageRequest
    ) -> Page:
        """The caller's own assets (or a team's, or those shared with the caller), filtered, sorted and paged."""
        who = require_active(actor)
        conditions: list[Filter] = [
            *library_scope(who, team_id=filters.team_id, shared_with_me=filters.shared_with_me),
            Filter("deleted", "==", filters.deleted),
        ]
        if filters.kinds is not None:
            kinds = list(dict.fromkeys(filters.kinds))
            if not kinds:
                raise bad_input("filter.kinds", "kinds must not be empty")
            if len(kinds) < len(KINDS):
                conditions.append(Filter("kind", "in", kinds))
        if filters.model:
            conditions.append(Filter("model", "==", filters.model))
        if filters.created_after:
            conditions.append(Filter("created_at", ">", filters.created_after))
        if filters.created_before:
            conditions.append(Filter("created_at", "<", filters.created_before))
        if (
            filters.created_after
            and filters.created_before
            and filters.created_after >= filters.created_before
        ):
            raise bad_input("filter.createdBefore", "createdBefore must be later than createdAfter")
        terms: list[str] = []
        if filters.search is not None:
            if len(filters.search) > 200:
                raise bad_input("filter.search", "search is longer than 200 characters")
            terms = query_terms(filters.search)
        if filters.tags:
            terms += [f"tag:{tag}" for tag in normalise_tags(filters.tags)]
        if filters.favorite:
            terms.append(f"fav:{who.id}")
        if filters.collection_id is not None:
            await readable_collection(self._docs, who, filters.collection_id)
            terms.append(membership_term(filters.collection_id))
        if terms:
            conditions.append(Filter("search_terms", "array_contains_all", sorted(set(terms))))
        field = SORT_FIELDS.get(sort.field)
        if field is None and sort.field != "RELEVANCE":
            raise bad_input("sort.field", f"unknown sort field {sort.field}")
        keep = total = None
        if filters.favorite is False:
            # No store can filter "array lacks x": drop favorites after reading, and count them apart.
            base = [c for c in conditions if c.field != "search_terms"]
            with_favorites = [
                *base,
                Filter("search_terms", "array_contains_all", sorted({*terms, f"fav:{who.id}"})),
            ]

            def keep(doc: Document) -> bool:
                return who.id not in (doc.data.get("favorited_by") or ())

            async def total() -> int:
                everything = await self._docs.count(ASSETS, conditions)
                return everything - await self._docs.count(ASSETS, with_favorites)

        if filters.similar_to is not None or field is None:
            return await self._ranked(actor, filters, sort, page, conditions, keep, total)
        return await paginate(
            self._docs,
            ASSETS,
            conditions,
            Order(str(field), sort.descending),
            page,
            max_size=self._max_page_size,
            keep=keep,
            total=total,
        )

    async def _ranked(
        self,
        actor: Actor | None,
        filters: AssetFilter,
        sort: AssetSort,
        page: PageRequest,
        conditions: Sequence[Filter],
        keep: Callable[[Document], bool] | None,
        total: Callable[[], Awaitable[int]] | None,
    ) -> Page:
        """similarTo (always most similar first) or RELEVANCE (best match first when descending)."""
        settings: dict[str, Any] = {"max_size": self._max_page_size, "keep": keep}
        if total is None:

            async def total() -> int:
                return await self._docs.count(ASSETS, conditions)

        if filters.similar_to is not None:
            target = await self.get(actor, filters.similar_to)  # NOT_FOUND unless the caller may see it
            score = similarity_scorer(target, vectors=self._vectors)
            return await ranked_page(
                self._docs, conditions, page, score, cap=SIMILAR_CAP, exclude=target.id,
                positive_only=True, total=total, **settings,
            )  # fmt: skip
        score = relevance_scorer(filters.search)
        return await ranked_page(
            self._docs, conditions, page, score, cap=SEARCH_CAP, descending=sort.descending,
            total=total, **settings,
        )  # fmt: skip

    async def update(
        self,
        actor: Actor | None,
        asset_id: str,
        *,
        title: str | None = None,
        tags: Sequence[str] | None = None,
        favorite: bool | None = None,
    ) -> Document:
        """Change the title or tags (editors) and the caller's own favorite mark (readers)."""
        doc = await self.get(actor, asset_id)
        who = require_active(actor)
        changes: dict[str, Any] = {}
        data = dict(doc.data)
        if title is not None or tags is not None:
            if not can_edit(who, doc.data):
                raise forbidden("Only the owner may change this asset's title or tags.")
        if title is not None:
            title = title.strip()
            if len(title) > MAX_TITLE_CHARS:
                raise bad_input("title", f"title is longer than {MAX_TITLE_CHARS} characters")
            data["title"] = changes["title"] = title or None
        if tags is not None:
            cleaned = normalise_tags(tags)
            if len(cleaned) > MAX_TAGS:
                raise bad_input("tags", f"at most {MAX_TAGS} tags are allowed")
            if any(len(tag) > MAX_TAG_CHARS for tag in cleaned):
                raise bad_input("tags", f"a tag is longer than {MAX_TAG_CHARS} characters")
            data["tags"] = changes["tags"] = cleaned
        favorited = list(data.get("favorited_by") or [])
        if favorite is True and who.id not in favorited:
            favorited.append(who.id)
        elif favorite is False and who.id in favorited:
            favorited.remove(who.id)
        if favorited != list(data.get("favorited_by") or []):
            data["favorited_by"] = changes["favorited_by"] = favorited
        if not changes:
            return doc
        changes["search_terms"] = asset_terms(data)
        changes["updated_at"] = now_iso()
        if self._embed_asset is not None and ("title" in changes or "tags" in changes):
            vector = await self._embed_asset(data)
            if vector is not None:  # on failure the old vector stays: a little stale, never none
                changes["embedding"] = vector
        return await self._docs.update(ASSETS, asset_id, changes, if_version=doc.version)


def asset_terms(data: dict[str, Any]) -> list[str]:
    """Search terms for an asset: words and prefixes of prompt/title/tags, plus tag and favorite markers."""
    tags = data.get("tags") or []
    terms = search_terms(data.get("prompt"), data.get("title"), tags=tags)
    terms += [f"tag:{tag}" for tag in tags]
    terms += [f"fav:{user_id}" for user_id in data.get("favorited_by") or []]
    terms += [membership_term(collection_id) for collection_id in data.get("collection_ids") or []]
    return terms
