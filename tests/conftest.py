"""Fixtures shared by every test: a real studio process and clients per actor."""

from __future__ import annotations

import itertools
import os
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import pytest

from tests.support.client import StudioClient
from tests.support.server import StudioProcess, mint_token, serving

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
_emails = itertools.count()


@pytest.fixture(scope="session")
def studio_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("studio") / "data"


@pytest.fixture(scope="session")
def studio(studio_dir: Path) -> Iterator[StudioProcess]:
    """One `genmedia serve` for the API tests (fast local generator, 2 workers).

    Reads are allowed ten times the default rate: a test drives one account far harder than a person
    would (the bad-input table sends hundreds of requests as one caller). Limits themselves are
    tested on servers of their own (test_limits, test_api_key_limits).
    """
    with serving(
        studio_dir,
        {
            "GENMEDIA_WORKERS": "2",
            "GENMEDIA_MODELS_EXTRA": "IMAGE:imagen-4.0-generate-001:0.04",
            "GENMEDIA_RATE_READ": "6000/minute",
        },
    ) as server:
        yield server


MakeClient = Callable[..., Awaitable[StudioClient]]


@pytest.fixture
def make_client(studio: StudioProcess, studio_dir: Path) -> MakeClient:
    """A client acting as a fresh user (unique email) with the given role and status."""

    async def make(role: str = "USER", status: str = "ACTIVE", email: str | None = None) -> StudioClient:
        address = email or f"{role.lower()}-{os.getpid()}-{next(_emails)}@example.com"
        token = await mint_token(studio_dir, address, role, status)
        return StudioClient(studio.base_url, token)

    return make


@pytest.fixture
async def user(make_client: MakeClient) -> StudioClient:
    return await make_client("USER")


@pytest.fixture
async def stranger(make_client: MakeClient) -> StudioClient:
    return await make_client("USER")


@pytest.fixture
async def viewer(make_client: MakeClient) -> StudioClient:
    return await make_client("VIEWER")


@pytest.fixture
async def admin(make_client: MakeClient) -> StudioClient:
    return await make_client("ADMIN")


@pytest.fixture
def anonymous(studio: StudioProcess) -> StudioClient:
    return StudioClient(studio.base_url)


def assert_error(error: dict[str, object], code: str) -> None:
    """The one check for a coded error: code, requestId, retryable present; no internals leaked."""
    extensions = error.get("extensions")
    assert isinstance(extensions, dict), error
    assert extensions.get("code") == code, error
    assert extensions.get("requestId"), error
    assert isinstance(extensions.get("retryable"), bool), error
    assert "Traceback" not in str(error.get("message")), error
