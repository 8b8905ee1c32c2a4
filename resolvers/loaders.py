"""Per-request DataLoaders: every document read by id in one request is batched into one call."""

from __future__ import annotations

from collections.abc import Sequence

from aiodataloader import DataLoader

from domain.ports import DocStore, Document
from schema.context import Loaders


def _loader(docs: DocStore, collection: str) -> DataLoader[str, Document | None]:
    async def batch(ids: Sequence[str]) -> list[Document | None]:
        return await docs.get_many(collection, list(ids))

    return DataLoader(batch, max_batch_size=300)


def make_loaders(docs: DocStore) -> Loaders:
    return Loaders(lambda collection: _loader(docs, collection))
