"""Reading prompts for the local generator: words, key words, and stable hashes of them."""

from __future__ import annotations

import hashlib
import re

_WORD = re.compile(r"[a-z0-9][a-z0-9'-]*")

STOPWORDS = frozenset(
    """a an the and or but of in on at to for with without from by as is are was were be been being
    it its this that these those there here into onto over under about above below between through
    very really just some any all each every no not nor so than too can could should would will shall
    may might must do does did done have has had i me my we our you your he she they them his her their
    what which who whom whose when where why how please make create generate show give write tell me
    image picture photo video clip text style like using use one two three into up down out off""".split()
)


def words(text: str | None) -> list[str]:
    """Lower-case words of `text`, in order (apostrophes and hyphens kept inside words)."""
    return _WORD.findall((text or "").lower())


def keywords(text: str | None, limit: int = 8) -> list[str]:
    """The distinct content words of `text`, in order of first appearance."""
    seen: dict[str, None] = {}
    for word in words(text):
        if word not in STOPWORDS and len(word) > 1 and not word.isdigit():
            seen.setdefault(word, None)
    return list(seen)[:limit]


def stable_int(*parts: object) -> int:
    """A 64-bit integer that depends only on `parts` (unlike `hash()`, stable across processes)."""
    digest = hashlib.sha256("\x1f".join(repr(p) for p in parts).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big")


def count_tokens(text: str | None) -> int:
    """A rough token count: whitespace-separated words, as the local model bills them."""
    return len((text or "").split())
