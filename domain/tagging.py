"""Tags for new media, made automatically: best effort, bounded in time, never failing the job.

The generator's `describe` (domain.ports.MediaDescriber) says what an image or video shows. The
tags it gives are kept twice on the asset: in `auto_tags` (what the studio suggested, never edited)
and merged into `tags` (what people see, search and filter by, and may edit with updateAsset).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from domain.assets import MAX_TAG_CHARS, MAX_TAGS, normalise_tags
from domain.errors import ErrorCode, StudioError
from domain.ports import GeneratedMedia, Generator, MediaDescriber

log = logging.getLogger("genmedia.tagging")

TAGGED_TYPES = ("image/png", "image/jpeg", "image/webp", "video/mp4")
MAX_AUTO_TAGS = 12

# Told how each tagging attempt ended: "tagged", "empty", "refused", "failed", "timeout", "skipped".
TaggingOutcome = Callable[[str], None]


class Tagger:
    """Asks the generator for tags of each new image and video, within `timeout_seconds`.

    Off (or with a generator that cannot describe) it tags nothing. A refusal, an error or the time
    running out gives no tags, is logged and counted through `on_outcome`, and never raises.
    """

    def __init__(
        self,
        generator: Generator | MediaDescriber | None,
        *,
        enabled: bool = True,
        timeout_seconds: float = 10.0,
        on_outcome: TaggingOutcome | None = None,
    ) -> None:
        describer = generator if isinstance(generator, MediaDescriber) else None
        self._describer = describer if enabled else None
        self._timeout = timeout_seconds
        self._on_outcome = on_outcome

    @classmethod
    def off(cls) -> Tagger:
        """A tagger that tags nothing."""
        return cls(None, enabled=False)

    async def tag_all(self, media: Sequence[GeneratedMedia], prompt: str | None) -> list[list[str]]:
        """Tags for each of `media`, in order (empty lists for text and for anything that failed)."""
        return list(
            await asyncio.gather(*(self.tags_for(item.data, item.mime_type, prompt) for item in media))
        )

    async def tags_for(self, data: bytes, mime_type: str, prompt: str | None) -> list[str]:
        """Tags for one image or video; [] when it is neither, tagging is off, or it did not work."""
        if self._describer is None or mime_type.split(";")[0].strip() not in TAGGED_TYPES:
            return []
        try:
            async with asyncio.timeout(self._timeout):
                found = await self._describer.describe(data, mime_type, prompt)
        except TimeoutError:
            self._count("timeout")
            log.warning("tagging timed out", extra={"seconds": self._timeout})
            return []
        except StudioError as error:
            self._count("refused" if error.code is ErrorCode.CONTENT_BLOCKED else "failed")
            log.warning("tagging failed", extra={"code": error.code.value})
            return []
        except Exception:  # tags are a nicety: nothing here may fail the job they describe
            self._count("failed")
            log.warning("tagging failed unexpectedly", exc_info=True)
            return []
        tags = [tag[:MAX_TAG_CHARS].strip() for tag in normalise_tags(found)][:MAX_AUTO_TAGS]
        tags = [tag for tag in tags if tag]
        self._count("tagged" if tags else "empty")
        return tags

    def _count(self, outcome: str) -> None:
        if self._on_outcome is not None:
            try:
                self._on_outcome(outcome)
            except Exception:  # observing must never break what it observes
                log.warning("the tagging observer failed", exc_info=True)


def tag_fields(auto_tags: Sequence[str], data: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The asset fields for `auto_tags`: kept apart as `auto_tags`, and merged after any tags the
    asset already has (within MAX_TAGS)."""
    existing = list((data or {}).get("tags") or [])
    return {"auto_tags": list(auto_tags), "tags": normalise_tags([*existing, *auto_tags])[:MAX_TAGS]}
