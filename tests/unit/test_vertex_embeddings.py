"""Embeddings from a Vertex embedding model through the Vertex generator, against the stand-in."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from domain.embeddings import AssetEmbedder
from domain.errors import StudioError
from domain.relevance import cosine, decode_vector
from tests.support.vertex_standin import VertexStandIn, vertex_standin


@pytest.fixture(scope="module")
def standin() -> Iterator[VertexStandIn]:
    with vertex_standin() as server:
        yield server


async def test_the_vertex_generator_embeds_texts_with_its_embedding_model(standin: VertexStandIn) -> None:
    standin.reset()
    generator = standin.generator()
    try:
        vectors = await generator.embed(["a red fox in snow", "a fox in the snow", "a bowl of noodles"])
        (call,) = standin.calls_to("predict")
        assert call.model == "text-embedding-005"
        assert [instance["content"] for instance in call.body["instances"]] == [
            "a red fox in snow",
            "a fox in the snow",
            "a bowl of noodles",
        ]
        assert len(vectors) == 3 and all(len(vector) == 64 for vector in vectors)
        embed = AssetEmbedder(generator)
        fox = decode_vector(await embed({"prompt": "a red fox in snow"}) or "")
        snow_fox = decode_vector(await embed({"prompt": "a fox in the snow"}) or "")
        noodles = decode_vector(await embed({"prompt": "a bowl of noodles"}) or "")
        assert fox is not None and snow_fox is not None and noodles is not None
        assert cosine(fox, snow_fox) > cosine(fox, noodles)
    finally:
        await generator.close()


async def test_a_failing_embedding_model_is_an_error_the_asset_embedder_absorbs(
    standin: VertexStandIn,
) -> None:
    standin.reset()
    generator = standin.generator()
    try:
        standin.fail_next(10, 500, "predict")
        with pytest.raises(StudioError):
            await generator.embed(["harbour"])
        assert await AssetEmbedder(generator)({"prompt": "harbour"}) is None
    finally:
        await generator.close()


def test_vertex_embeddings_need_the_vertex_generator_and_off_makes_none(standin: VertexStandIn) -> None:
    from backends.generators.local import LocalGenerator
    from config import Settings, SettingsError
    from wiring import build_asset_embedder

    with pytest.raises(SettingsError, match="GENMEDIA_GENERATOR=vertex"):
        build_asset_embedder(Settings(embeddings="vertex"), LocalGenerator())
    assert build_asset_embedder(Settings(embeddings="vertex"), standin.generator()) is not None
    assert build_asset_embedder(Settings(), LocalGenerator()) is None
