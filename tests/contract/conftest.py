"""Fixtures for the contract suites: external services some adapters need, one per test session."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.firestore_emulator import (
    EmulatorMissing,
    FirestoreEmulator,
    find_emulator,
    in_ci,
    java_available,
    running_emulator,
)


@pytest.fixture(scope="session")
def firestore_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FirestoreEmulator]:
    """Google's Firestore emulator, with FIRESTORE_EMULATOR_HOST set for this session.

    A missing emulator (or Java) fails the run in CI, where it must be there, and skips elsewhere.
    """
    try:
        script = find_emulator()
        java_available()
    except EmulatorMissing as exc:
        message = (
            f"{exc}. Install the Debian package google-cloud-cli-firestore-emulator "
            "(and Java 17+), or set FIRESTORE_EMULATOR_BIN to its cloud_firestore_emulator script."
        )
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    with running_emulator(tmp_path_factory.mktemp("firestore"), script) as emulator:
        yield emulator
