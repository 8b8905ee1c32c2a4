"""Search terms: what makes an asset findable, and the cap that keeps index entries bounded."""

from __future__ import annotations

from domain.assets import MAX_SEARCH_TERMS, query_terms, search_terms


def test_words_and_their_prefixes_are_findable_without_case_or_accents() -> None:
    terms = search_terms("Crème BRÛLÉE recipe", "Dessert")
    for query in ("creme", "bru", "brulee", "rec", "dessert", "des"):
        assert set(query_terms(query)) <= set(terms)


def test_a_huge_prompt_is_capped_but_keeps_tags_title_and_whole_words_first() -> None:
    prompt = " ".join(f"word{i}xyzabcdefgh" for i in range(700))
    terms = search_terms(prompt, "Lighthouse at dawn", tags=["seascape"])
    assert len(terms) == MAX_SEARCH_TERMS
    assert {"seascape", "lighthouse", "dawn", "word0xyzabcdefgh"} <= set(terms)
    assert {"sea", "light", "da"} <= set(terms), "prefixes of tags and title survive the cap"
