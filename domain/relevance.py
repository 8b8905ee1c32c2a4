"""Ranking assets: how well an asset answers a search, how alike two assets are, and the vectors
that carry the meaning of their words.

Ranked lists cannot page on a stored field, so they are read whole (up to a cap), ranked in memory
and paged by position. Each cursor carries its position and a fingerprint of the ids ranked up to
it: if that set changes between pages (an asset made, deleted or re-worded so it ranks earlier),
the cursor is refused instead of silently skipping or repeating assets.
"""

from __future__ import annotations

import base64
import hashlib
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

from domain.assets import words
from domain.errors import bad_input
from domain.pages import decode_cursor, encode_cursor

# Weights of one query word: found in the title or a tag beats found in the prompt; a whole word
# beats a prefix. A title word that is also in the prompt counts once, at the higher weight.
WHOLE_PRIMARY, PREFIX_PRIMARY, WHOLE_PROMPT, PREFIX_PROMPT = 4.0, 3.0, 2.0, 1.0
_PREFIX_MAX = 20  # as domain/assets.py stores words
_STOP = frozenset({"a", "an", "the", "of", "in", "on", "at", "to", "and", "or", "with", "for", "by", "is"})


def _primary_words(data: dict[str, Any]) -> set[str]:
    found = set(words(data.get("title") or ""))
    for tag in data.get("tags") or ():
        found.update(words(tag))
    return {word[:_PREFIX_MAX] for word in found}


def _word_weight(query: str, primary: set[str], prompt: set[str]) -> float:
    if query in primary:
        return WHOLE_PRIMARY
    if any(word.startswith(query) for word in primary):
        return PREFIX_PRIMARY
    if query in prompt:
        return WHOLE_PROMPT
    if any(word.startswith(query) for word in prompt):
        return PREFIX_PROMPT
    return 0.0


def search_score(query_words: Sequence[str], data: dict[str, Any]) -> float:
    """The sum over the query's words of their best weight in the asset (0 when none is found)."""
    primary = _primary_words(data)
    prompt = {word[:_PREFIX_MAX] for word in words(data.get("prompt") or "")}
    return sum(_word_weight(word, primary, prompt) for word in query_words)


def word_set(data: dict[str, Any]) -> set[str]:
    """The asset's words (prompt, title, tags) without the commonest short ones, for overlap."""
    found = _primary_words(data) | {word[:_PREFIX_MAX] for word in words(data.get("prompt") or "")}
    return {word for word in found if word not in _STOP}


def jaccard(left: set[str], right: set[str]) -> float:
    """Shared words over all words: 0 (nothing shared) to 1 (the same words)."""
    union = left | right
    return len(left & right) / len(union) if union else 0.0


def embedding_text(data: dict[str, Any]) -> str:
    """What the embedding model reads for an asset: its title, tags and prompt."""
    parts = [data.get("title") or "", ", ".join(data.get("tags") or ()), data.get("prompt") or ""]
    return ". ".join(part.strip() for part in parts if part and part.strip())


def encode_vector(vector: Iterable[float]) -> str:
    """A unit vector as base64 float16: 384 dimensions take 1,024 characters on the document."""
    values = np.asarray(list(vector), dtype=np.float32)
    norm = float(np.linalg.norm(values))
    if norm > 0:
        values = values / norm
    return base64.b64encode(values.astype("<f2").tobytes()).decode()


def decode_vector(text: str) -> np.ndarray[Any, np.dtype[np.float32]] | None:
    """The vector `encode_vector` wrote; None for anything else (an old or damaged value)."""
    try:
        raw = base64.b64decode(text.encode(), validate=True)
    except (ValueError, AttributeError):
        return None
    if not raw or len(raw) % 2:
        return None
    return np.frombuffer(raw, dtype="<f2").astype(np.float32)


def cosine(
    left: np.ndarray[Any, np.dtype[np.float32]], right: np.ndarray[Any, np.dtype[np.float32]]
) -> float:
    """Cosine similarity; 0 for vectors of different sizes (made by different models) or zero length."""
    if left.shape != right.shape:
        return 0.0
    norms = float(np.linalg.norm(left)) * float(np.linalg.norm(right))
    if norms == 0 or math.isnan(norms):
        return 0.0
    return float(np.dot(left, right)) / norms


def _id_mark(doc_id: str) -> int:
    return int.from_bytes(hashlib.sha256(doc_id.encode()).digest()[:8], "big")


def prefix_fingerprints(ids: Sequence[str]) -> list[str]:
    """For each position, a fingerprint of the set of ids ranked up to and including it (XOR of
    hashes: order within the prefix does not matter, membership does)."""
    marks: list[str] = []
    running = 0
    for doc_id in ids:
        running ^= _id_mark(doc_id)
        marks.append(f"{running:016x}")
    return marks


def rank_cursor(position: int, fingerprint: str) -> str:
    return encode_cursor([position, fingerprint])


def read_rank_cursor(cursor: str, field_name: str, fingerprints: Sequence[str]) -> int:
    """The position a ranked cursor points at, checked against today's ranking."""
    position, fingerprint = decode_cursor(cursor, field_name, 2)
    if not isinstance(position, int) or isinstance(position, bool) or position < 0:
        raise bad_input(field_name, "not a valid cursor for this list")
    if position >= len(fingerprints) or fingerprints[position] != fingerprint:
        raise bad_input(
            field_name,
            "the ranked results changed since this cursor was made; start again from the first page",
        )
    return position
