"""Assets: finished media in the library, and the words that make them findable."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable
from typing import Any

ASSETS = "assets"
MAX_TAGS = 30
MAX_TAG_CHARS = 40
MAX_TITLE_CHARS = 200
_PREFIX_MIN = 2
_PREFIX_MAX = 20
MAX_SEARCH_TERMS = 400
_WORD = re.compile(r"[a-z0-9]+")


def fold(text: str) -> str:
    """Lower-case and strip accents, so 'Crème' finds 'creme'."""
    decomposed = unicodedata.normalize("NFKD", text.lower())
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


def words(text: str) -> list[str]:
    return _WORD.findall(fold(text))


def search_terms(*texts: str | None, tags: Iterable[str] = ()) -> list[str]:
    """Words of the texts and tags, then the words' prefixes, for prefix search with one array filter.

    Capped at MAX_SEARCH_TERMS: every term is an index entry in each composite index that holds the
    array, and Firestore allows 40,000 entries per document. Tags and title (words, then prefixes)
    come before the prompt, so what a very long prompt loses is its own prefixes.
    """
    primary = [word for text in (*tags, *texts[1:]) for word in words(text or "")]
    prompt = [word for word in words(texts[0] or "")] if texts else []
    terms: dict[str, None] = {}
    for group in (primary, prompt):
        for word in group:
            terms.setdefault(word[:_PREFIX_MAX])
        for word in group:
            for end in range(_PREFIX_MIN, min(len(word), _PREFIX_MAX)):
                terms.setdefault(word[:end])
    return sorted(list(terms)[:MAX_SEARCH_TERMS])


def query_terms(search: str) -> list[str]:
    """The terms a search string must all match (words truncated like the stored prefixes)."""
    return sorted({word[:_PREFIX_MAX] for word in words(search)})


def normalise_tags(tags: Iterable[str]) -> list[str]:
    cleaned: list[str] = []
    for tag in tags:
        value = " ".join(tag.split()).lower()
        if value and value not in cleaned:
            cleaned.append(value)
    return cleaned


def blob_key(asset_id: str, mime_type: str) -> str:
    extension = {
        "image/png": "png",
        "image/jpeg": "jpg",
        "image/webp": "webp",
        "video/mp4": "mp4",
    }.get(mime_type.split(";")[0], "txt")
    return f"assets/{asset_id[-2:]}/{asset_id}.{extension}"


def visible_fields(data: dict[str, Any]) -> dict[str, Any]:
    """The document minus internal bookkeeping, as stored in exports."""
    return {key: value for key, value in data.items() if key not in {"search_terms", "readers", "embedding"}}


def sniff_mime(data: bytes) -> str | None:
    """The media type the bytes are, by their signature: PNG, JPEG, WebP or MP4; None otherwise."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] != b"qt  ":
        return "video/mp4"
    return None
