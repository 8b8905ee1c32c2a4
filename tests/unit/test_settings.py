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
