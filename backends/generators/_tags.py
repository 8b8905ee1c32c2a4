"""Tags the offline way: the prompt's key words and the colours that cover most of the picture."""

from __future__ import annotations

from backends.media_colours import dominant_colours, still_of

from ._prompt import keywords


def local_tags(media: bytes, mime_type: str, prompt: str | None) -> list[str]:
    """Key words of the prompt, then the dominant colours of the media (no repeats)."""
    tags = dict.fromkeys(keywords(prompt, limit=8))
    still = still_of(media, mime_type)
    if still is not None:
        tags.update(dict.fromkeys(dominant_colours(still)))
    return list(tags)
