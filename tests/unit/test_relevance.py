"""Scoring a search, comparing assets, the stored vector's encoding and the ranked cursors."""

from __future__ import annotations

import math

import pytest

from domain.embeddings import AssetEmbedder
from domain.errors import ErrorCode, StudioError
from domain.relevance import (
    cosine,
    decode_vector,
    embedding_text,
    encode_vector,
    jaccard,
    prefix_fingerprints,
    rank_cursor,
    read_rank_cursor,
    search_score,
    word_set,
)


def test_title_and_tag_matches_count_more_than_prompt_ones_and_whole_words_more_than_prefixes() -> None:
    title = search_score(["fox"], {"title": "Fox", "prompt": "something"})
    tag_prefix = search_score(["fox"], {"tags": ["foxes"], "prompt": "x"})
    prompt = search_score(["fox"], {"prompt": "a fox"})
    prompt_prefix = search_score(["fox"], {"prompt": "foxglove"})
    assert title > tag_prefix > prompt > prompt_prefix > 0
    assert search_score(["fox"], {"prompt": "a dog"}) == 0


def test_more_query_words_matched_score_higher_and_accents_fold() -> None:
    both = search_score(["creme", "brulee"], {"prompt": "Crème Brûlée"})
    one = search_score(["creme", "brulee"], {"prompt": "crème anglaise"})
    assert both > one > 0


def test_word_overlap_ignores_the_commonest_words() -> None:
    fox = word_set({"prompt": "a red fox in snow", "tags": ["winter"]})
    assert fox == {"red", "fox", "snow", "winter"}
    assert jaccard(fox, word_set({"prompt": "a fox in the winter forest"})) == pytest.approx(2 / 5)
    assert jaccard(fox, word_set({"prompt": "a bowl of noodles"})) == 0
    assert jaccard(set(), set()) == 0


def test_the_embedding_reads_title_tags_and_prompt() -> None:
    assert embedding_text({"title": "Dusk", "tags": ["sea", "boats"], "prompt": "harbour"}) == (
        "Dusk. sea, boats. harbour"
    )
    assert embedding_text({"prompt": None}) == ""


def test_a_vector_survives_its_encoding_as_a_unit_vector_in_float16() -> None:
    vector = [3.0, 4.0, 0.0] + [0.0] * 381
    text = encode_vector(vector)
    assert len(text) == 1024  # 384 float16 values, base64
    decoded = decode_vector(text)
    assert decoded is not None and decoded.shape == (384,)
    assert decoded[0] == pytest.approx(0.6, abs=1e-3) and decoded[1] == pytest.approx(0.8, abs=1e-3)
    assert cosine(decoded, decoded) == pytest.approx(1.0, abs=1e-3)


def test_damaged_or_foreign_vectors_compare_as_nothing() -> None:
    assert decode_vector("not base64!") is None
    assert decode_vector("") is None
    short, long = decode_vector(encode_vector([1.0, 0.0])), decode_vector(encode_vector([1.0, 0.0, 0.0]))
    assert short is not None and long is not None
    assert cosine(short, long) == 0.0
    zero = decode_vector(encode_vector([0.0, 0.0]))
    assert zero is not None and cosine(zero, short) == 0.0
    assert not math.isnan(cosine(zero, zero))


def test_a_ranked_cursor_holds_while_the_ranking_up_to_it_keeps_the_same_members() -> None:
    marks = prefix_fingerprints(["a", "b", "c"])
    cursor = rank_cursor(1, marks[1])
    assert read_rank_cursor(cursor, "after", marks) == 1
    assert read_rank_cursor(cursor, "after", prefix_fingerprints(["b", "a", "c", "d"])) == 1  # reordered

    for changed in (["a", "x", "b", "c"], ["a"], ["x", "b"]):
        with pytest.raises(StudioError) as refused:
            read_rank_cursor(cursor, "after", prefix_fingerprints(changed))
        assert refused.value.code is ErrorCode.BAD_USER_INPUT


@pytest.mark.parametrize("cursor", ["garbage", rank_cursor(-1, "0"), "WyJ4IiwiMCJd"])
def test_cursors_we_never_handed_out_are_bad_input(cursor: str) -> None:
    with pytest.raises(StudioError) as refused:
        read_rank_cursor(cursor, "after", prefix_fingerprints(["a"]))
    assert refused.value.code is ErrorCode.BAD_USER_INPUT


class _BrokenModel:
    """An embedding model that fails, as one out of memory would."""

    async def embed(self, texts: list[str]) -> list[list[float]]:
        raise MemoryError("no room")


class _CountingModel:
    def __init__(self) -> None:
        self.texts: list[str] = []

    async def embed(self, texts: list[str]) -> list[list[float]]:
        self.texts += texts
        return [[1.0, 2.0, 2.0] for _ in texts]


async def test_a_new_asset_gets_the_vector_of_its_words_and_a_failing_model_leaves_it_without() -> None:
    model = _CountingModel()
    vector = await AssetEmbedder(model)({"title": "Dusk", "prompt": "harbour", "tags": []})
    assert model.texts == ["Dusk. harbour"]
    decoded = decode_vector(vector or "")
    assert decoded is not None and decoded.tolist() == pytest.approx([1 / 3, 2 / 3, 2 / 3], abs=1e-3)

    assert await AssetEmbedder(model)({"prompt": "  ", "tags": []}) is None  # nothing to embed
    assert await AssetEmbedder(_BrokenModel())({"prompt": "harbour"}) is None
