"""How a new state of a document changes the matches of a watched query: the one rule both stores follow."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from domain.ports import Change, Document


def track(
    current: dict[str, Document],
    doc_id: str,
    doc: Document | None,
    matches: Callable[[Mapping[str, Any]], bool],
) -> Change | None:
    """The change a new state (`doc`, None when deleted) makes to `current` (updated in place): added,
    modified, removed, or None when nothing a watcher sees changed (the same version again)."""
    old = current.get(doc_id)
    if doc is not None and matches(doc.data):
        if old is not None and old.version == doc.version:
            return None
        current[doc_id] = doc
        return Change("added" if old is None else "modified", doc)
    if old is not None:
        del current[doc_id]
        return Change("removed", old)  # like Firestore, the last state that matched
    return None
