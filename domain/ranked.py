"""Listings ordered by how well assets answer a search (RELEVANCE) or resemble one (similarTo).

Both read the matching set in ONE docstore query (newest first, up to a cap), score it in memory
and page by position (see domain/relevance.py for the cursors). So a page costs the same number of
docstore calls whichever page it is; past the cap only the newest matches are ranked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any

from domain.assets import ASSETS, query_terms
from domain.errors import bad_input
from domain.pages import Page, PageRequest, check_page_size
from domain.ports import DocStore, Document, Filter, Order, Query
from domain.relevance import (
    cosine,
    decode_vector,
    jaccard,
    prefix_fingerprints,
    rank_cursor,
    read_rank_cursor,
    search_score,
    word_set,
)

SEARCH_CAP = 1000  # matches ranked by RELEVANCE: the newest this many
SIMILAR_CAP = 2000  # candidates compared for similarTo: the newest this many
EMBEDDING_FIELD = "embedding"

Scorer = Callable[[Document], float]


def relevance_scorer(search: str | None) -> Scorer:
    """Scores a document against the search's words (RELEVANCE needs a search or similarTo)."""
    if search is None:
        raise bad_input(
            "sort.field", "RELEVANCE ranks by filter.search or filter.similarTo: pass one of them"
        )
    query = query_terms(search)
    return lambda doc: search_score(query, doc.data)


def similarity_scorer(target: Document, *, vectors: bool) -> Scorer:
    """Cosine of the stored embeddings when both assets have one (and embeddings are on), else the
    overlap of their words and tags."""
    target_words = word_set(target.data)
    stored = target.data.get(EMBEDDING_FIELD)
    target_vector = decode_vector(stored) if vectors and isinstance(stored, str) else None

    def score(doc: Document) -> float:
        if target_vector is not None:
            other = doc.data.get(EMBEDDING_FIELD)
            vector = decode_vector(other) if isinstance(other, str) else None
            if vector is not None and vector.shape == target_vector.shape:
                return cosine(target_vector, vector)
        return jaccard(target_words, word_set(doc.data))

    return score


async def ranked_page(
    docs: DocStore,
    conditions: Sequence[Filter],
    page: PageRequest,
    score: Scorer,
    *,
    max_size: int,
    cap: int,
    descending: bool = True,
    keep: Callable[[Document], bool] | None = None,
    exclude: str | None = None,
    positive_only: bool = False,
    total: Callable[[], Awaitable[int]] | None = None,
    default_size: int = 20,
) -> Page:
    """One page of the matches ranked by `score` (best first when `descending`); ties: newest first."""
    check_page_size(page, max_size)
    rows = await docs.query(Query(ASSETS, tuple(conditions), (Order("created_at", True),), limit=cap))
    scored: list[tuple[float, Document]] = []
    for row in rows:
        if row.id == exclude or (keep is not None and not keep(row)):
            continue
        value = score(row)
        if positive_only and value <= 0:
            continue
        scored.append((round(value, 6), row))
    scored.sort(key=lambda item: (item[0], _created(item[1]), item[1].id), reverse=descending)
    ranked = [doc for _, doc in scored]
    marks = prefix_fingerprints([doc.id for doc in ranked])
    backward = page.last is not None or (page.before is not None and page.first is None)
    requested = page.last if backward else page.first
    size = default_size if requested is None else requested
    if backward:
        end = read_rank_cursor(page.before, "before", marks) if page.before else len(ranked)
        start = max(0, end - size)
        has_previous, has_next = start > 0, page.before is not None
    else:
        start = read_rank_cursor(page.after, "after", marks) + 1 if page.after else 0
        end = min(len(ranked), start + size)
        has_previous, has_next = page.after is not None, end < len(ranked)
    items = ranked[start:end]
    count = len(ranked)

    async def counted() -> int:
        return count

    return Page(
        items=items,
        cursors=[rank_cursor(position, marks[position]) for position in range(start, end)],
        has_next=has_next,
        has_previous=has_previous,
        total=total if total is not None and len(rows) >= cap and not positive_only else counted,
    )


def _created(doc: Document) -> Any:
    return doc.data.get("created_at") or ""
