"""API keys at the domain: the secret's shape, the input rules, the scope rule, and sign-in by key
(cache, forgetting, lastUsedAt at most once per interval) on the embedded store."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from backends.docstore.sqlite import SqliteDocStore
from domain.access import Actor, require_scopes, scope_for
from domain.admin import AuditLog, RequestInfo
from domain.apikey_signin import ApiKeySignIn
from domain.apikeys import (
    API_KEYS,
    ApiKeys,
    check_expiry,
    check_name,
    check_scopes,
    hash_secret,
    key_id_of,
    new_secret,
)
from domain.clock import new_id
from domain.errors import ErrorCode, StudioError
from domain.limits import caller_key, key_caller
from domain.users import Directory, Role, UserStatus

NOW = datetime(2026, 1, 1, tzinfo=UTC)
YEAR = timedelta(days=365)


def test_a_secret_names_its_key_and_carries_256_random_bits() -> None:
    key_id = new_id()
    first, second = new_secret(key_id), new_secret(key_id)
    assert first != second and first.startswith(f"gms_{key_id}_")
    assert key_id_of(first) == key_id
    assert len(first.split("_", 2)[2]) >= 43


@pytest.mark.parametrize(
    "secret",
    [
        "",
        "gms_",
        "gms_abc",
        "gms_abc_short",
        "xyz_0123abcd_" + "A" * 43,
        "gms_NOTHEX_" + "A" * 43,
        "gms_" + "a" * 300,
    ],
)
def test_anything_not_shaped_like_a_secret_names_no_key(secret: str) -> None:
    assert key_id_of(secret) is None


def test_the_store_keeps_the_sha256_of_the_secret() -> None:
    assert hash_secret("gms_x") == hashlib.sha256(b"gms_x").hexdigest()


@pytest.mark.parametrize(
    ("name", "ok"), [("ci", True), ("  renders  ", True), ("", False), ("n" * 101, False), ("a\tb", False)]
)
def test_names_are_trimmed_short_and_printable(name: str, ok: bool) -> None:
    if ok:
        assert check_name(name) == name.strip()
    else:
        with pytest.raises(StudioError) as refused:
            check_name(name)
        assert refused.value.details["field"] == "name"


def test_scopes_default_by_role_and_keep_a_fixed_order() -> None:
    assert check_scopes(None, Role.USER) == ("read", "generate")
    assert check_scopes(None, Role.VIEWER) == ("read",)
    assert check_scopes(["generate", "read", "write", "read"], Role.ADMIN) == ("read", "write", "generate")


@pytest.mark.parametrize(
    ("scopes", "role"),
    [(["admin"], Role.ADMIN), ([], Role.USER), (["read", "generate"], Role.VIEWER), (["write"], Role.VIEWER)],
)
def test_unknown_empty_or_too_wide_scopes_are_bad_input(scopes: list[str], role: Role) -> None:
    with pytest.raises(StudioError) as refused:
        check_scopes(scopes, role)
    assert refused.value.code is ErrorCode.BAD_USER_INPUT and refused.value.details["field"] == "scopes"


def test_expiry_defaults_to_the_longest_lifetime_and_must_lie_ahead_within_it() -> None:
    assert check_expiry(None, NOW, YEAR) == NOW + YEAR
    assert check_expiry(NOW + YEAR, NOW, YEAR) == NOW + YEAR
    for bad in (NOW, NOW - timedelta(seconds=1), NOW + YEAR + timedelta(seconds=1), datetime(2026, 6, 1)):
        with pytest.raises(StudioError) as refused:
            check_expiry(bad, NOW, YEAR)
        assert refused.value.details["field"] == "expiresAt"


@pytest.mark.parametrize(
    ("operation", "field", "scope"),
    [
        ("query", "assets", "read"),
        ("subscription", "myJobs", "read"),
        ("mutation", "generateImage", "generate"),
        ("mutation", "upscaleImage", "generate"),
        ("mutation", "updateAsset", "write"),
        ("mutation", "cancelJob", "write"),
        ("query", "__schema", None),
    ],
)
def test_each_class_of_operation_needs_one_scope(operation: str, field: str, scope: str | None) -> None:
    assert scope_for(operation, field) == scope


def _actor(scopes: frozenset[str] | None, key_id: str | None = "k1") -> Actor:
    from domain.users import User

    user = User("u1", "a@example.com", Role.USER, UserStatus.ACTIVE, None, "2026-01-01T00:00:00.000000Z")
    return Actor(user, via="api_key" if scopes is not None else "token", scopes=scopes, api_key_id=key_id)


def test_missing_scopes_are_named_and_tokens_carry_every_scope() -> None:
    require_scopes(_actor(None, None), "mutation", ["generateImage", "updateAsset"])
    require_scopes(_actor(frozenset({"read"})), "query", ["me", "__typename"])
    with pytest.raises(StudioError) as refused:
        require_scopes(_actor(frozenset({"read"})), "mutation", ["generateText", "updateAsset"])
    assert refused.value.code is ErrorCode.FORBIDDEN
    assert refused.value.details["missingScopes"] == ["generate", "write"]


def test_a_key_is_counted_as_itself_and_as_its_owner() -> None:
    keyed = _actor(frozenset({"read"}))
    assert key_caller(keyed) == "key:k1" and caller_key(keyed, "10.0.0.1") == "user:u1"
    assert key_caller(_actor(None, None)) is None and key_caller(None) is None


# ------------------------------------------------------------------ on the embedded store


@pytest.fixture
async def docs(tmp_path: Path) -> AsyncIterator[SqliteDocStore]:
    store = SqliteDocStore(tmp_path / "keys.db")
    try:
        yield store
    finally:
        await store.close()


async def _owner(docs: SqliteDocStore) -> Actor:
    return Actor(await Directory(docs).put("owner@example.com", role=Role.USER, status=UserStatus.ACTIVE))


async def test_a_key_signs_in_with_its_scopes_and_use_is_recorded_once_per_interval(
    docs: SqliteDocStore,
) -> None:
    owner = await _owner(docs)
    keys = ApiKeys(docs, AuditLog(docs))
    key, secret = await keys.create(owner, "ci", ["read"], None, RequestInfo())
    sign_in = ApiKeySignIn(docs, Directory(docs), cache_seconds=0, touch_seconds=3600)
    actor, expires_at = await sign_in.session(secret)
    assert (actor.id, actor.via, actor.scopes, actor.api_key_id) == (
        owner.id,
        "api_key",
        frozenset({"read"}),
        key.id,
    )
    assert expires_at > datetime.now(UTC) + timedelta(days=364)
    first = (await docs.get(API_KEYS, key.id)).data["last_used_at"]  # type: ignore[union-attr]
    assert first is not None
    await sign_in.session(secret)  # no cache: read again, but not written again
    assert (await docs.get(API_KEYS, key.id)).data["last_used_at"] == first  # type: ignore[union-attr]
    other_process = ApiKeySignIn(docs, Directory(docs), cache_seconds=0, touch_seconds=3600)
    await other_process.session(secret)  # sees the fresh record and leaves it
    assert (await docs.get(API_KEYS, key.id)).data["last_used_at"] == first  # type: ignore[union-attr]


async def test_a_revoked_key_is_forgotten_at_once_by_the_process_that_revoked_it(
    docs: SqliteDocStore,
) -> None:
    owner = await _owner(docs)
    keys = ApiKeys(docs, AuditLog(docs))
    sign_in = ApiKeySignIn(docs, Directory(docs), cache_seconds=3600)
    keys.on_revoked(sign_in.forget_key)
    key, secret = await keys.create(owner, "ci", None, None, RequestInfo())
    await sign_in.session(secret)
    other_process = ApiKeySignIn(docs, Directory(docs), cache_seconds=3600)
    await other_process.session(secret)
    await keys.revoke(owner, key.id, RequestInfo())
    with pytest.raises(StudioError, match="revoked") as refused:
        await sign_in.session(secret)
    assert refused.value.code is ErrorCode.UNAUTHENTICATED
    assert (await other_process.session(secret))[0].api_key_id == key.id  # until its cache entry ends
    other_process.forget(owner.id)
    with pytest.raises(StudioError, match="revoked"):
        await other_process.session(secret)


async def test_keys_cannot_manage_keys(docs: SqliteDocStore) -> None:
    owner = await _owner(docs)
    keys = ApiKeys(docs, AuditLog(docs))
    key, secret = await keys.create(owner, "ci", ["read", "write", "generate"], None, RequestInfo())
    keyed, _ = await ApiKeySignIn(docs, Directory(docs)).session(secret)
    for attempt in (
        keys.create(keyed, "wider", None, None, RequestInfo()),
        keys.revoke(keyed, key.id, RequestInfo()),
    ):
        with pytest.raises(StudioError) as refused:
            await attempt
        assert refused.value.code is ErrorCode.FORBIDDEN
