"""Automatic tagging is best effort: refusals, failures and slow answers give no tags, never an error."""

from __future__ import annotations

import io
from collections.abc import AsyncIterator, Iterator

import pytest
from PIL import Image

from backends.generators.local import LocalGenerator
from backends.generators.vertex import VertexGenerator, VertexModels
from domain.errors import ErrorCode, StudioError
from domain.ports import GeneratedMedia
from domain.tagging import Tagger, tag_fields
from tests.support.vertex_standin import VertexStandIn, vertex_standin


def png(colour: tuple[int, int, int]) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), colour).save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture(scope="module")
def standin_server() -> Iterator[VertexStandIn]:
    with vertex_standin() as standin:
        yield standin


@pytest.fixture
async def vertex(standin_server: VertexStandIn) -> AsyncIterator[VertexGenerator]:
    standin_server.reset()
    generator: VertexGenerator = standin_server.generator()
    yield generator
    await generator.close()
    standin_server.reset()


async def test_vertex_tags_come_from_one_gemini_call_on_the_tagging_model(
    standin_server: VertexStandIn,
) -> None:
    generator = standin_server.generator(
        models=VertexModels(
            "image-model", "video-model", "text-model", "upscale-model", tagging="tagging-model"
        )
    )
    try:
        tags = await generator.describe(png((30, 60, 220)), "image/png", "a whale")
    finally:
        await generator.close()

    assert "whale" in tags and "blue" in tags
    [call] = standin_server.calls_to("generateContent")
    assert call.model == "tagging-model"
    assert call.generation_config["responseMimeType"] == "application/json"
    assert call.system_instruction()


async def test_a_refused_describe_is_content_blocked(
    standin_server: VertexStandIn, vertex: VertexGenerator
) -> None:
    standin_server.refuse_next("finish_safety")

    with pytest.raises(StudioError) as caught:
        await vertex.describe(png((0, 0, 0)), "image/png", "a cat")
    assert caught.value.code is ErrorCode.CONTENT_BLOCKED


async def test_a_refusal_gives_no_tags_and_is_counted(
    standin_server: VertexStandIn, vertex: VertexGenerator
) -> None:
    outcomes: list[str] = []
    tagger = Tagger(vertex, on_outcome=outcomes.append)
    standin_server.refuse_next("prompt_blocked")

    assert await tagger.tags_for(png((0, 0, 0)), "image/png", "a cat") == []
    assert outcomes == ["refused"]


async def test_a_failing_upstream_gives_no_tags(
    standin_server: VertexStandIn, vertex: VertexGenerator
) -> None:
    outcomes: list[str] = []
    standin_server.fail_next(10, 400, "generateContent")

    assert await Tagger(vertex, on_outcome=outcomes.append).tags_for(png((9, 9, 9)), "image/png", None) == []
    assert outcomes == ["failed"]


async def test_a_slow_answer_is_given_up(standin_server: VertexStandIn, vertex: VertexGenerator) -> None:
    outcomes: list[str] = []
    standin_server.delay_next(5, 1, "generateContent")

    tagger = Tagger(vertex, timeout_seconds=0.2, on_outcome=outcomes.append)
    assert await tagger.tags_for(png((9, 9, 9)), "image/png", None) == []
    assert outcomes == ["timeout"]


async def test_text_and_a_switched_off_tagger_make_no_tags() -> None:
    local = LocalGenerator(speed=0)
    text = GeneratedMedia(b"a fox", "text/plain; charset=utf-8", text="a fox")
    image = GeneratedMedia(png((200, 30, 30)), "image/png", 32, 32)

    assert await Tagger(local).tag_all([text, image], "a fox") == [[], ["fox", "red"]]
    assert await Tagger(local, enabled=False).tag_all([image], "a fox") == [[]]
    assert await Tagger.off().tag_all([image], "a fox") == [[]]


def test_automatic_tags_join_the_tags_an_asset_has() -> None:
    assert tag_fields(["fox", "red"], {"tags": ["Mine", "fox"]}) == {
        "auto_tags": ["fox", "red"],
        "tags": ["mine", "fox", "red"],
    }
