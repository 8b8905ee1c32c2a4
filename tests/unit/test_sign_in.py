"""First sign-in: pending by default, active for auto-approved domains, admin for bootstrap addresses."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backends.docstore.sqlite import SqliteDocStore
from domain.users import Directory, Role, UserStatus


@pytest.fixture
async def docs(tmp_path: Path) -> AsyncIterator[SqliteDocStore]:
    store = SqliteDocStore(tmp_path / "users.db")
    try:
        yield store
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("email", "role", "status"),
    [
        ("stranger@elsewhere.org", Role.USER, UserStatus.PENDING),
        ("Ann@Studio.Example", Role.USER, UserStatus.ACTIVE),
        ("boss@elsewhere.org", Role.ADMIN, UserStatus.ACTIVE),
        ("sub@mail.studio.example", Role.USER, UserStatus.PENDING),
    ],
)
async def test_first_sign_in_sets_role_and_status(
    docs: SqliteDocStore, email: str, role: Role, status: UserStatus
) -> None:
    directory = Directory(
        docs,
        admin_emails=frozenset({"boss@elsewhere.org"}),
        auto_approve_domains=frozenset({"studio.example"}),
    )
    user = await directory.sign_in(email)
    assert (user.role, user.status) == (role, status)
    assert (await directory.sign_in(email)).id == user.id, "a second sign-in finds the same user"
