"""Terms of service over HTTP: anyone reads them, generating needs the current version accepted."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from domain.terms import DEFAULT_TERMS_PUBLISHED_AT, DEFAULT_TERMS_VERSION
from tests.api.helpers import job_count
from tests.conftest import assert_error
from tests.support.client import StudioClient
from tests.support.server import StudioProcess, mint_token, serving

TERMS = "{ currentTerms { version url publishedAt } }"
ACCEPT = "mutation($version: String!) { acceptTerms(version: $version) { id acceptedTermsVersion } }"
ME = "{ me { acceptedTermsVersion } }"
GENERATE = {
    "generateImage": 'mutation { generateImage(input: {prompt: "a lighthouse"}) { id } }',
    "generateVideo": 'mutation { generateVideo(input: {prompt: "waves", durationSeconds: 4}) { id } }',
    "generateText": 'mutation { generateText(input: {prompt: "a haiku", maxOutputTokens: 16}) { id } }',
    "upscaleImage": 'mutation { upscaleImage(input: {assetId: "QXNzZXQ6bm9uZQ=="}) { id } }',
}
NEW_VERSION = "2027-01-15"


async def newcomer(server: StudioProcess, data_dir: Path, terms: str | None = None) -> StudioClient:
    """An approved user who has accepted `terms` (None: no terms at all)."""
    email = f"newcomer-{uuid.uuid4().hex[:12]}@example.com"
    return StudioClient(server.base_url, await mint_token(data_dir, email, terms=terms))


@pytest.fixture
async def newbie(studio: StudioProcess, studio_dir: Path) -> StudioClient:
    return await newcomer(studio, studio_dir)


@pytest.fixture(scope="module")
def revised_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("revised") / "data"


@pytest.fixture(scope="module")
def revised(revised_dir: Path) -> Iterator[StudioProcess]:
    """A studio that has published a newer version of the terms, with a link to them."""
    with serving(
        revised_dir,
        {
            "GENMEDIA_WORKERS": "0",
            "GENMEDIA_TERMS_VERSION": NEW_VERSION,
            "GENMEDIA_TERMS_URL": "https://studio.example.com/terms/2027-01-15",
            "GENMEDIA_TERMS_PUBLISHED_AT": "2027-01-15T09:00:00Z",
        },
    ) as server:
        yield server


async def test_anyone_may_read_the_current_terms(anonymous: StudioClient) -> None:
    terms = (await anonymous.data(TERMS))["currentTerms"]
    assert terms["version"] == DEFAULT_TERMS_VERSION and terms["url"] is None
    assert datetime.fromisoformat(terms["publishedAt"]) == DEFAULT_TERMS_PUBLISHED_AT


@pytest.mark.parametrize("field", list(GENERATE))
async def test_generating_without_accepting_the_terms_is_forbidden_and_says_which(
    newbie: StudioClient, field: str
) -> None:
    error = await newbie.error(GENERATE[field])
    assert_error(error, "FORBIDDEN")
    assert "accept the terms" in str(error["message"]).lower()
    assert error["extensions"]["currentTermsVersion"] == DEFAULT_TERMS_VERSION
    assert await job_count(newbie) == 0


async def test_accepting_the_current_terms_is_recorded_and_lets_the_user_generate(
    newbie: StudioClient,
) -> None:
    assert (await newbie.data(ME))["me"]["acceptedTermsVersion"] is None
    assert await newbie.error(GENERATE["generateText"])  # refused, and the refusal is not remembered
    accepted = (await newbie.data(ACCEPT, {"version": DEFAULT_TERMS_VERSION}))["acceptTerms"]
    assert accepted["acceptedTermsVersion"] == DEFAULT_TERMS_VERSION
    assert (await newbie.data(ME))["me"]["acceptedTermsVersion"] == DEFAULT_TERMS_VERSION
    assert (await newbie.data(GENERATE["generateText"]))["generateText"]["id"]


async def test_accepting_another_version_is_refused_naming_the_current_one(newbie: StudioClient) -> None:
    error = await newbie.error(ACCEPT, {"version": "1999-01-01"})
    assert_error(error, "CONFLICT")
    assert DEFAULT_TERMS_VERSION in str(error["message"])
    assert error["extensions"]["currentTermsVersion"] == DEFAULT_TERMS_VERSION
    assert (await newbie.data(ME))["me"]["acceptedTermsVersion"] is None


async def test_signed_out_callers_cannot_accept_terms(anonymous: StudioClient) -> None:
    assert_error(await anonymous.error(ACCEPT, {"version": DEFAULT_TERMS_VERSION}), "UNAUTHENTICATED")


async def test_terms_come_from_settings(revised: StudioProcess) -> None:
    terms = (await StudioClient(revised.base_url).data(TERMS))["currentTerms"]
    assert terms == {
        "version": NEW_VERSION,
        "url": "https://studio.example.com/terms/2027-01-15",
        "publishedAt": terms["publishedAt"],
    }
    assert datetime.fromisoformat(terms["publishedAt"]).isoformat() == "2027-01-15T09:00:00+00:00"


async def test_a_new_version_makes_earlier_acceptances_no_longer_count(
    revised: StudioProcess, revised_dir: Path
) -> None:
    veteran = await newcomer(revised, revised_dir, terms=DEFAULT_TERMS_VERSION)
    error = await veteran.error(GENERATE["generateImage"])
    assert_error(error, "FORBIDDEN")
    assert error["extensions"]["currentTermsVersion"] == NEW_VERSION
    assert error["extensions"]["termsUrl"] == "https://studio.example.com/terms/2027-01-15"
    await veteran.data(ACCEPT, {"version": NEW_VERSION})
    assert (await veteran.data(GENERATE["generateImage"]))["generateImage"]["id"]
