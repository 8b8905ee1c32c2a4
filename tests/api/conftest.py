"""Fixtures shared by API test modules beyond the session server of tests/conftest.py."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api.test_webhooks import SECRET
from tests.support.server import StudioProcess, serving


@pytest.fixture(scope="module")
def hooks_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("batch-hooks") / "data"


@pytest.fixture(scope="module")
def hooks_studio(hooks_dir: Path) -> Iterator[StudioProcess]:
    """A server that may call webhooks on 127.0.0.1 (a test receiver), retrying fast."""
    with serving(
        hooks_dir,
        {
            "GENMEDIA_WORKERS": "2",
            "GENMEDIA_WEBHOOK_ALLOW_PRIVATE": "true",
            "GENMEDIA_WEBHOOK_RETRY_SCHEDULE": "0.2,0.2",
            "GENMEDIA_WEBHOOK_SECRET": SECRET,
            "GENMEDIA_WEBHOOK_POLL_SECONDS": "0.05",
        },
    ) as server:
        yield server
