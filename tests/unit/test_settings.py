"""Settings: every one documented, bad values refused with one line naming the setting."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from config import Settings, SettingsError, load_settings

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def env_names() -> list[str]:
    names = []
    for name, info in Settings.model_fields.items():
        alias = info.validation_alias
        choices = getattr(alias, "choices", None)
        names.append(str(choices[0]) if choices else f"GENMEDIA_{name.upper()}")
    return names


@pytest.mark.parametrize("name", env_names())
def test_every_setting_is_in_the_readme_table(name: str) -> None:
    assert re.search(rf"^\| `{name}` \|", README, re.MULTILINE), (
        f"{name} is missing from README's configuration table"
    )


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("GENMEDIA_PORT", "abc"),
        ("GENMEDIA_WORKERS", "-1"),
        ("GENMEDIA_DOCSTORE", "mongo"),
        ("GENMEDIA_LOCAL_FAIL_RATE", "2"),
    ],
)
def test_a_bad_value_stops_with_one_line_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.count("\n") == 0 and name in message and value in message


def test_lists_are_comma_separated_and_emails_lower_cased(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENMEDIA_ADMIN_EMAILS", " Ada@Example.com, bob@example.com ")
    assert load_settings().admin_emails == ["ada@example.com", "bob@example.com"]


def test_extra_models_are_offered_with_their_price(monkeypatch: pytest.MonkeyPatch) -> None:
    from wiring import build_catalog

    monkeypatch.setenv("GENMEDIA_MODELS_EXTRA", "IMAGE:imagen-4.0-generate-001:0.04, text:gemini-3-pro:0.01")
    catalog = build_catalog(load_settings())
    imagen = catalog.resolve("IMAGE", "imagen-4.0-generate-001", "input.model")
    assert imagen.unit_cost_usd == 0.04 and imagen.max_count == 4 and not imagen.default
    assert catalog.resolve("TEXT", "gemini-3-pro", "input.model").cost_unit == "1k_tokens"
    assert catalog.resolve("IMAGE", None, "input.model").id == load_settings().model_image


@pytest.mark.parametrize("entry", ["IMAGE:x", "SOUND:x:1", "IMAGE:x:free", "VIDEO::1", "TEXT:x:-1"])
def test_a_malformed_extra_model_stops_start_up(monkeypatch: pytest.MonkeyPatch, entry: str) -> None:
    monkeypatch.setenv("GENMEDIA_MODELS_EXTRA", entry)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "GENMEDIA_MODELS_EXTRA" in str(caught.value)


def test_moderation_lists_are_comma_separated_and_categories_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENMEDIA_MODERATION_BLOCKED_TERMS", " crème brûlée , spoiler ")
    monkeypatch.setenv("GENMEDIA_MODERATION_CATEGORIES", "Violence,self-harm")
    settings = load_settings()
    assert settings.moderation_blocked_terms == ["crème brûlée", "spoiler"]
    assert settings.moderation_categories == ["violence", "self-harm"]

    monkeypatch.setenv("GENMEDIA_MODERATION_CATEGORIES", "violence,gossip")
    with pytest.raises(SettingsError, match="GENMEDIA_MODERATION_CATEGORIES"):
        load_settings()
