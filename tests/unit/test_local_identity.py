"""LocalIssuer: RS256 tokens from a local key; every bad token is UNAUTHENTICATED with a safe reason."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import stat
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

import backends.identity.local as local_identity
from backends.identity.local import LocalIssuer
from domain.errors import ErrorCode, StudioError
from domain.ports import IdentityProvider

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def key_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One key for the module: RSA generation is the slow part."""
    path = tmp_path_factory.mktemp("identity") / "keys" / "local-issuer.pem"
    LocalIssuer(path).jwks()
    return path


@pytest.fixture(scope="module")
def other_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def issuer(key_path: Path) -> LocalIssuer:
    return LocalIssuer(key_path)


def _private(key_path: Path) -> rsa.RSAPrivateKey:
    key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
    assert isinstance(key, rsa.RSAPrivateKey)
    return key


def _claims(**changes: Any) -> dict[str, Any]:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": "genmedia-local",
        "aud": "genmedia",
        "sub": "user-1",
        "email": "ada@example.com",
        "email_verified": True,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _forge(issuer: LocalIssuer, key: rsa.RSAPrivateKey, **changes: Any) -> str:
    return jwt.encode(_claims(**changes), key, algorithm="RS256", headers={"kid": issuer.kid})


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def _rejection(issuer: LocalIssuer, token: Any) -> str:
    with pytest.raises(StudioError) as caught:
        await issuer.verify(token)
    assert caught.value.code is ErrorCode.UNAUTHENTICATED
    assert not caught.value.retryable
    assert caught.value.__cause__ is None
    return caught.value.message


async def test_issued_token_verifies(issuer: LocalIssuer) -> None:
    assert isinstance(issuer, IdentityProvider)
    before = datetime.now(UTC).replace(microsecond=0)

    identity = await issuer.verify(issuer.issue("user-1", "ada@example.com", timedelta(hours=1)))

    assert (identity.subject, identity.email, identity.email_verified) == ("user-1", "ada@example.com", True)
    assert before <= identity.issued_at <= datetime.now(UTC)
    assert identity.expires_at - identity.issued_at == timedelta(hours=1)
    assert identity.expires_at.tzinfo is not None


async def test_token_shape(issuer: LocalIssuer) -> None:
    token = issuer.issue("user-1", "ada@example.com")
    header = jwt.get_unverified_header(token)
    claims = jwt.decode(token, options={"verify_signature": False})

    assert header == {"alg": "RS256", "kid": issuer.kid, "typ": "JWT"}
    assert set(claims) == {"iss", "aud", "sub", "email", "email_verified", "iat", "nbf", "exp"}
    assert claims["exp"] - claims["iat"] == 12 * 3600


def test_issue_refuses_bad_arguments(issuer: LocalIssuer) -> None:
    with pytest.raises(ValueError):
        issuer.issue("", "ada@example.com")
    with pytest.raises(ValueError):
        issuer.issue("user-1", "ada@example.com", timedelta(0))


async def test_expired_token(issuer: LocalIssuer, key_path: Path) -> None:
    now = int(time.time())
    token = _forge(issuer, _private(key_path), iat=now - 3600, nbf=now - 3600, exp=now - 31)
    assert await _rejection(issuer, token) == "token expired"


async def test_clock_skew_within_leeway_is_tolerated(issuer: LocalIssuer, key_path: Path) -> None:
    now = int(time.time())
    late = _forge(issuer, _private(key_path), iat=now - 600, nbf=now - 600, exp=now - 20)
    early = _forge(issuer, _private(key_path), iat=now + 20, nbf=now + 20)
    assert (await issuer.verify(late)).subject == "user-1"
    assert (await issuer.verify(early)).subject == "user-1"


async def test_not_yet_valid_token(issuer: LocalIssuer, key_path: Path) -> None:
    now = int(time.time())
    token = _forge(issuer, _private(key_path), iat=now, nbf=now + 120)
    assert await _rejection(issuer, token) == "token not yet valid"


async def test_wrong_audience(issuer: LocalIssuer, key_path: Path) -> None:
    assert await _rejection(issuer, _forge(issuer, _private(key_path), aud="other-app")) == (
        "token has the wrong audience"
    )


async def test_wrong_issuer(issuer: LocalIssuer, key_path: Path) -> None:
    token = _forge(issuer, _private(key_path), iss="https://evil.example")
    assert await _rejection(issuer, token) == "token has the wrong issuer"


async def test_issuer_and_audience_are_configurable(key_path: Path) -> None:
    custom = LocalIssuer(key_path, issuer="studio-dev", audience="studio-api")
    token = custom.issue("user-2", "bob@example.com")
    assert (await custom.verify(token)).subject == "user-2"
    assert await _rejection(LocalIssuer(key_path), token) == "token has the wrong issuer"


async def test_unknown_kid(issuer: LocalIssuer, key_path: Path) -> None:
    token = jwt.encode(_claims(), _private(key_path), algorithm="RS256", headers={"kid": "someone-else"})
    no_kid = jwt.encode(_claims(), _private(key_path), algorithm="RS256")
    assert await _rejection(issuer, token) == "token signed by an unknown key"
    assert await _rejection(issuer, no_kid) == "token signed by an unknown key"


async def test_signature_by_another_key(issuer: LocalIssuer, other_key: rsa.RSAPrivateKey) -> None:
    assert await _rejection(issuer, _forge(issuer, other_key)) == "token signature is invalid"


async def test_tampered_payload(issuer: LocalIssuer) -> None:
    header, _, signature = issuer.issue("user-1", "ada@example.com").split(".")
    payload = _b64(json.dumps(_claims(email="admin@example.com")).encode())
    assert await _rejection(issuer, f"{header}.{payload}.{signature}") == "token signature is invalid"


async def test_alg_none_is_rejected(issuer: LocalIssuer) -> None:
    token = jwt.encode(_claims(), "", algorithm="none", headers={"kid": issuer.kid})
    assert await _rejection(issuer, token) == "unsupported token algorithm"


async def test_hs256_signed_with_the_public_key_is_rejected(issuer: LocalIssuer, key_path: Path) -> None:
    public_pem = (
        _private(key_path)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = (
        _b64(json.dumps({"alg": "HS256", "kid": issuer.kid, "typ": "JWT"}).encode())
        + "."
        + _b64(json.dumps(_claims()).encode())
    )
    signature = _b64(hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest())
    assert await _rejection(issuer, f"{signing_input}.{signature}") == "unsupported token algorithm"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "...",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "é.é.é",
        "x" * 20_000,
        None,
        b"bytes.not.str",
    ],
)
async def test_garbage_is_rejected(issuer: LocalIssuer, token: Any) -> None:
    assert await _rejection(issuer, token) in {"malformed token", "unsupported token algorithm"}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"email": None}, "token lacks the email claim"),
        ({"email": ""}, "token lacks the email claim"),
        ({"email": ["ada@example.com"]}, "token lacks the email claim"),
        ({"sub": None}, "token lacks the sub claim"),
        ({"exp": None}, "token lacks the exp claim"),
        ({"aud": None}, "token lacks the aud claim"),
    ],
)
async def test_missing_or_bad_claims(
    issuer: LocalIssuer, key_path: Path, changes: dict[str, Any], message: str
) -> None:
    assert await _rejection(issuer, _forge(issuer, _private(key_path), **changes)) == message


async def test_unverified_email_is_reported(issuer: LocalIssuer, key_path: Path) -> None:
    identity = await issuer.verify(_forge(issuer, _private(key_path), email_verified=None))
    assert identity.email_verified is False


async def test_key_persists_across_instances(key_path: Path) -> None:
    token = LocalIssuer(key_path).issue("user-1", "ada@example.com")
    again = LocalIssuer(key_path)
    assert (await again.verify(token)).email == "ada@example.com"


def test_key_file_is_private(key_path: Path) -> None:
    assert stat.S_IMODE(key_path.stat().st_mode) == 0o600
    assert key_path.read_bytes().startswith(b"-----BEGIN PRIVATE KEY-----")


async def test_no_file_io_after_first_use(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "dir" / "key.pem"
    issuer = LocalIssuer(path)
    token = issuer.issue("user-1", "ada@example.com")
    path.unlink()
    assert (await issuer.verify(token)).subject == "user-1"
    assert not path.exists()


async def test_first_use_from_verify_creates_the_key(tmp_path: Path) -> None:
    path = tmp_path / "fresh.pem"
    assert await _rejection(LocalIssuer(path), "a.b.c") == "malformed token"
    assert path.exists()


def test_jwks_verifies_issued_tokens(issuer: LocalIssuer) -> None:
    jwks = issuer.jwks()
    (jwk,) = jwks["keys"]
    assert {k: jwk[k] for k in ("kty", "alg", "use", "kid")} == {
        "kty": "RSA",
        "alg": "RS256",
        "use": "sig",
        "kid": issuer.kid,
    }
    assert "d" not in jwk
    public = jwt.PyJWK(jwk).key
    claims = jwt.decode(issuer.issue("user-1", "a@b.c"), public, algorithms=["RS256"], audience="genmedia")
    assert claims["sub"] == "user-1"


def test_loser_of_a_creation_race_uses_the_winners_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "key.pem"
    winner = LocalIssuer(path)
    real_generate = local_identity._generate_private_key
    raced: list[bool] = []

    def generate_while_winner_writes() -> rsa.RSAPrivateKey:
        if not raced:
            raced.append(True)
            winner.jwks()  # the other process finishes first, between our check and our link
        return real_generate()

    loser = LocalIssuer(path)
    monkeypatch.setattr(local_identity, "_generate_private_key", generate_while_winner_writes)

    assert loser.kid == winner.kid
    assert [p.name for p in tmp_path.iterdir()] == ["key.pem"]


_RACE_SCRIPT = """
import sys, time
from pathlib import Path
from backends.identity.local import LocalIssuer
key_path, go = Path(sys.argv[1]), Path(sys.argv[2])
print("ready", flush=True)
while not go.exists():
    time.sleep(0.001)
issuer = LocalIssuer(key_path)
print(issuer.kid, issuer.issue("user-1", "ada@example.com"), flush=True)
"""


def test_concurrent_first_use_from_processes_yields_one_key(tmp_path: Path) -> None:
    key_path, go = tmp_path / "shared" / "key.pem", tmp_path / "go"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _RACE_SCRIPT, str(key_path), str(go)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    try:
        for proc in procs:
            assert proc.stdout is not None
            assert proc.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [proc.communicate(timeout=30)[0].split() for proc in procs]
    finally:
        for proc in procs:
            proc.kill()
            proc.wait()

    issuer = LocalIssuer(key_path)
    assert {kid for kid, _ in outputs} == {issuer.kid}
    for _, token in outputs:
        assert asyncio.run(issuer.verify(token)).subject == "user-1"
    assert [p.name for p in key_path.parent.iterdir()] == ["key.pem"]
