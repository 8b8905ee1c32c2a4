"""The moderation matcher: whole words, case and accents folded, phrases in a row, categories by name."""

from __future__ import annotations

import pytest

from domain.moderation import BLOCKED_TERM, CATEGORIES, ModerationPolicy

POLICY = ModerationPolicy(["Crème Brûlée", "spoiler", "red  herring"], ["violence", "sexual"])


@pytest.mark.parametrize(
    ("text", "category"),
    [
        ("a crème brûlée", BLOCKED_TERM),
        ("A CREME BRULEE!", BLOCKED_TERM),
        ("creme-brulee with berries", BLOCKED_TERM),
        ("no SPOILER please", BLOCKED_TERM),
        ("spóiler", BLOCKED_TERM),
        ("a red herring, again", BLOCKED_TERM),
        ("the Massacre of the innocents", "violence"),
        ("a nude figure study", "sexual"),
    ],
)
def test_blocked_words_are_found_whatever_their_case_and_accents(text: str, category: str) -> None:
    assert POLICY.judge(text) == category


@pytest.mark.parametrize(
    "text",
    [
        "spoilers and spoilt milk",  # a blocked term inside a longer word is another word
        "crème brûlées",
        "a creme caramel, a brulee torch",  # the words of a phrase must come in a row
        "herring, red",
        "gorgeous allegory",
        "massacred",
        "",
        None,
    ],
)
def test_other_words_pass(text: str | None) -> None:
    assert POLICY.judge(text) is None


def test_categories_are_only_checked_when_enabled() -> None:
    assert ModerationPolicy([], ["violence"]).judge("a self-harm warning") is None
    assert ModerationPolicy([], ["self-harm"]).judge("a self-harm warning") == "self-harm"


def test_an_empty_policy_lets_everything_through() -> None:
    policy = ModerationPolicy()

    assert not policy.active
    assert policy.judge("massacre") is None


def test_an_unknown_category_is_refused_at_start_up() -> None:
    with pytest.raises(ValueError, match="hate"):
        ModerationPolicy([], ["hate"])


def test_every_built_in_term_matches_itself() -> None:
    for category, terms in CATEGORIES.items():
        policy = ModerationPolicy([], [category])
        assert all(policy.judge(term.upper()) == category for term in terms)
