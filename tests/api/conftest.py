"""Fixtures shared by API test modules beyond the session server of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import StudioProcess, serving
from tests.support.webhook_receiver import SECRET, TIMEOUT_SECONDS, Receiver, receiving


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    """A webhook receiver in this process, for the module's tests."""
    with receiving() as running:
        yield running


@pytest.fixture(scope="module")
def hooks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("webhooks") / "data"


@pytest.fixture(scope="module")
def hooks_studio(hooks_dir: Path) -> Iterator[StudioProcess]:
    """A server that may call webhooks on 127.0.0.1 (the receiver): three fast retries, a short
    timeout, signing with SECRET."""
    with serving(
        hooks_dir,
        {
            "GENMEDIA_WORKERS": "2",
            "GENMEDIA_WEBHOOK_ALLOW_PRIVATE": "true",
            "GENMEDIA_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2,0.2",
            "GENMEDIA_WEBHOOK_SECRET": SECRET,
            "GENMEDIA_WEBHOOK_TIMEOUT_SECONDS": str(TIMEOUT_SECONDS),
            "GENMEDIA_WEBHOOK_POLL_SECONDS": "0.05",
        },
    ) as server:
        yield server
