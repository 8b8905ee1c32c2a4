"""Moderation before generation: prompts are checked against the studio's policy before any cost.

The policy is a list of blocked terms (GENMEDIA_MODERATION_BLOCKED_TERMS) and built-in categories
of terms switched on by name (GENMEDIA_MODERATION_CATEGORIES). A term matches as whole words, case-
and accent-insensitively ("Gore" and "GÔRE" match "gore"; "gored" does not); a term
of several words matches those words in a row. A refused prompt is CONTENT_BLOCKED with the
category and the field in the error's extensions; the matched term is never echoed back, so the
answer does not teach anyone the list. The refusal creates no job, books no quota, and is counted
as `refused` in the caller's usage.

On Vertex the model's own safety filters are a second line: what they refuse during generation
fails the job with CONTENT_BLOCKED, also counted as refused.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping, Sequence

from domain.access import Actor
from domain.assets import words
from domain.clock import now_iso
from domain.errors import ErrorCode, StudioError
from domain.ports import DocStore, Transaction
from domain.usage import book_usage

log = logging.getLogger("genmedia.moderation")

BLOCKED_TERM = "blocked_term"  # the category of the configured GENMEDIA_MODERATION_BLOCKED_TERMS

# Deliberately short lists of unambiguous words: a starting point a deployment extends with its
# own blocked terms, not a classifier.
CATEGORIES: dict[str, tuple[str, ...]] = {
    "violence": (
        "behead",
        "beheading",
        "decapitated",
        "dismembered",
        "gore",
        "gory",
        "massacre",
        "mutilated",
        "torture",
    ),
    "sexual": ("nude", "nudity", "naked", "porn", "pornographic", "explicit sex"),
    "self-harm": ("suicide", "self-harm", "self harm", "kill myself", "cut myself"),
}

# The request fields a prompt may sit in, and the input path an error names.
PROMPT_FIELDS = {
    "prompt": "input.prompt",
    "negativePrompt": "input.negativePrompt",
    "systemPrompt": "input.systemPrompt",
}

# Told the category of every refusal (for metrics).
RefusalHook = Callable[[str], None]


class ModerationPolicy:
    """Blocked terms and enabled categories; `screen` refuses a request whose prompts use one."""

    def __init__(
        self,
        blocked_terms: Iterable[str] = (),
        categories: Iterable[str] = (),
        *,
        on_refused: RefusalHook | None = None,
    ) -> None:
        unknown = [name for name in categories if name not in CATEGORIES]
        if unknown:
            raise ValueError(f"unknown moderation categories: {', '.join(unknown)}")
        rules: list[tuple[tuple[str, ...], str]] = [
            (tuple(words(term)), category) for category in categories for term in CATEGORIES[category]
        ]
        rules += [(tuple(words(term)), BLOCKED_TERM) for term in blocked_terms]
        self._rules = [(term, category) for term, category in rules if term]
        self._on_refused = on_refused

    @property
    def active(self) -> bool:
        return bool(self._rules)

    def judge(self, text: str | None) -> str | None:
        """The category of the first term `text` uses, or None when it uses none."""
        if not text or not self._rules:
            return None
        said = words(text)
        for term, category in self._rules:
            if _contains(said, term):
                return category
        return None

    async def screen(
        self,
        docs: DocStore,
        who: Actor,
        *,
        kind: str,
        model: str,
        inputs: Mapping[str, object],
        team_id: str | None = None,
    ) -> None:
        """Refuse (CONTENT_BLOCKED, after counting it as refused usage) a request whose prompt,
        negative prompt or system prompt uses a blocked term; return quietly otherwise."""
        for key, field in PROMPT_FIELDS.items():
            text = inputs.get(key)
            category = self.judge(text) if isinstance(text, str) else None
            if category is not None:
                await _count_refusal(docs, who.id, team_id, model, kind)
                self._observe(category)
                log.info("prompt refused", extra={"user_id": who.id, "category": category, "field": field})
                raise StudioError(
                    ErrorCode.CONTENT_BLOCKED,
                    "The prompt was refused by the studio's content policy.",
                    retryable=False,
                    category=category,
                    field=field,
                )

    def _observe(self, category: str) -> None:
        if self._on_refused is not None:
            try:
                self._on_refused(category)
            except Exception:  # observing must never change the answer
                log.warning("the refusal observer failed", exc_info=True)


def _contains(said: Sequence[str], term: Sequence[str]) -> bool:
    """Whether `term`'s words appear in a row in `said`."""
    size = len(term)
    return any(tuple(said[start : start + size]) == tuple(term) for start in range(len(said) - size + 1))


async def _count_refusal(docs: DocStore, user_id: str, team_id: str | None, model: str, kind: str) -> None:
    """A refusal is usage too (no job, no cost): `refused` on the day's counter."""

    async def book(tx: Transaction) -> None:
        await book_usage(
            tx,
            user_id=user_id,
            team_id=team_id,
            day=now_iso()[:10],
            model=model,
            kind=kind,
            counts={"refused": 1},
        )

    await docs.run_transaction(book)
