"""Text embeddings of assets: the port an embedding model sits behind, and the vector a new asset
keeps so similarTo can compare meanings instead of words."""

from __future__ import annotations

import logging
from typing import Any, Protocol, runtime_checkable

from domain.relevance import embedding_text, encode_vector

log = logging.getLogger(__name__)


@runtime_checkable
class Embedder(Protocol):
    """A model that turns texts into vectors (one per text, all of one size)."""

    async def embed(self, texts: list[str]) -> list[list[float]]: ...


class AssetEmbedder:
    """Makes the stored vector of a new asset from its title, tags and prompt."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder

    async def __call__(self, asset: dict[str, Any]) -> str | None:
        """The encoded vector, or None when there is nothing to embed or the model failed: an asset
        without a vector is still found by word overlap, so a failure never fails the job."""
        text = embedding_text(asset)
        if not text:
            return None
        try:
            (vector,) = await self._embedder.embed([text])
        except Exception:
            log.exception("embedding a new asset failed; it will be compared by its words")
            return None
        return encode_vector(vector)
