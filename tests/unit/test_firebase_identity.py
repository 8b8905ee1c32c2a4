"""FirebaseIdentity against a local certificates server: every bad token is UNAUTHENTICATED with a safe
reason, certificate trouble is UPSTREAM_UNAVAILABLE, certificates are cached per max-age and fetched
once however many verifications wait, and the event loop never waits on the network."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import jwt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

import backends.identity.firebase as firebase
import backends.identity.google_keys as google_keys
from backends.identity.firebase import FirebaseIdentity
from domain.errors import ErrorCode, StudioError
from domain.ports import IdentityProvider
from tests.support.certs_server import CertKey, CertsServer, certs_server, make_key

PROJECT = "genmedia-test"
ISSUER = f"https://securetoken.google.com/{PROJECT}"
MIN_REFETCH = 5.0


class FakeClock:
    """Stands in for the monotonic clock of the certificate cache (token times stay real)."""

    def __init__(self) -> None:
        self.now = time.monotonic()

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture(scope="module")
def key_a() -> CertKey:
    return make_key("kid-a")


@pytest.fixture(scope="module")
def key_b() -> CertKey:
    return make_key("kid-b")


@pytest.fixture(scope="module")
def intruder() -> CertKey:
    """A key Google never published."""
    return make_key("kid-x")


@pytest.fixture(scope="module")
def running_server(key_a: CertKey) -> Iterator[CertsServer]:
    with certs_server(key_a) as running:
        yield running


@pytest.fixture
def server(running_server: CertsServer, key_a: CertKey) -> CertsServer:
    """The module's server, healthy and publishing key A only, its counter at zero."""
    running_server.reset(key_a)
    return running_server


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    monkeypatch.setattr(google_keys, "_monotonic", fake)
    return fake


@pytest.fixture
def identity(server: CertsServer, clock: FakeClock) -> FirebaseIdentity:
    return FirebaseIdentity(
        PROJECT, certs_url=server.url, min_refetch_seconds=MIN_REFETCH, fetch_timeout_seconds=2.0
    )


def _claims(**changes: Any) -> dict[str, Any]:
    """A Firebase ID token's claims, as Firebase Authentication mints them; None removes a claim."""
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "aud": PROJECT,
        "auth_time": now - 300,
        "user_id": "uid-1",
        "sub": "uid-1",
        "iat": now,
        "exp": now + 3600,
        "email": "ada@example.com",
        "email_verified": True,
        "firebase": {"identities": {"email": ["ada@example.com"]}, "sign_in_provider": "password"},
    }
    claims.update(changes)
    return {k: v for k, v in claims.items() if v is not None}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unsigned(header: dict[str, Any], claims: dict[str, Any], signature: bytes = b"") -> str:
    return f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}.{_b64(signature)}"


async def _rejection(identity: FirebaseIdentity, token: Any) -> str:
    with pytest.raises(StudioError) as caught:
        await identity.verify(token)
    assert caught.value.code is ErrorCode.UNAUTHENTICATED
    assert not caught.value.retryable
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None or caught.value.__suppress_context__
    return caught.value.message


async def _unavailable(identity: FirebaseIdentity, token: str) -> StudioError:
    with pytest.raises(StudioError) as caught:
        await identity.verify(token)
    error = caught.value
    assert error.code is ErrorCode.UPSTREAM_UNAVAILABLE
    assert error.retryable
    assert error.retry_after is not None and error.retry_after > 0
    assert error.__cause__ is None
    assert "127.0.0.1" not in error.message and "http" not in error.message
    return error


# ---------------------------------------------------------------- good tokens


async def test_good_token(identity: FirebaseIdentity, server: CertsServer) -> None:
    assert isinstance(identity, IdentityProvider)
    claims = _claims()

    verified = await identity.verify(server.sign(claims))

    assert (verified.subject, verified.email, verified.email_verified) == ("uid-1", "ada@example.com", True)
    assert verified.issued_at == datetime.fromtimestamp(claims["iat"], UTC)
    assert verified.expires_at == datetime.fromtimestamp(claims["exp"], UTC)
    assert verified.expires_at - verified.issued_at == timedelta(hours=1)
    assert verified.issued_at.tzinfo is not None
    assert server.requests == 1


@pytest.mark.parametrize("flag", [False, None, "true", 1])
async def test_unverified_email_is_reported(
    identity: FirebaseIdentity, server: CertsServer, flag: Any
) -> None:
    verified = await identity.verify(server.sign(_claims(email_verified=flag)))
    assert verified.email_verified is False


async def test_clock_skew_within_tolerance_is_accepted(
    identity: FirebaseIdentity, server: CertsServer
) -> None:
    now = int(time.time())
    late = server.sign(_claims(iat=now - 3600, auth_time=now - 3600, exp=now - 20))
    early = server.sign(_claims(iat=now + 20, auth_time=now + 20, nbf=now + 20))
    assert (await identity.verify(late)).subject == "uid-1"
    assert (await identity.verify(early)).subject == "uid-1"


async def test_skew_is_configurable(server: CertsServer, clock: FakeClock) -> None:
    strict = FirebaseIdentity(PROJECT, certs_url=server.url, clock_skew_seconds=0)
    now = int(time.time())
    assert await _rejection(strict, server.sign(_claims(iat=now + 10))) == "token not yet valid"
    with pytest.raises(ValueError):
        FirebaseIdentity(PROJECT, certs_url=server.url, clock_skew_seconds=3600)


# ---------------------------------------------------------------- time window


async def test_expired(identity: FirebaseIdentity, server: CertsServer) -> None:
    now = int(time.time())
    token = server.sign(_claims(iat=now - 7200, auth_time=now - 7200, exp=now - 31))
    assert await _rejection(identity, token) == "token expired"


async def test_not_yet_valid(identity: FirebaseIdentity, server: CertsServer) -> None:
    now = int(time.time())
    assert await _rejection(identity, server.sign(_claims(iat=now + 120))) == "token not yet valid"
    assert await _rejection(identity, server.sign(_claims(nbf=now + 120))) == "token not yet valid"


async def test_auth_time_in_the_future(identity: FirebaseIdentity, server: CertsServer) -> None:
    now = int(time.time())
    token = server.sign(_claims(auth_time=now + 120))
    assert await _rejection(identity, token) == "token has an auth_time in the future"


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"exp": None}, "token lacks the exp claim"),
        ({"iat": None}, "token lacks the iat claim"),
        ({"auth_time": None}, "token lacks the auth_time claim"),
        ({"exp": "tomorrow"}, "token has an invalid exp claim"),
        ({"exp": True}, "token has an invalid exp claim"),
        ({"exp": float("inf")}, "token has an invalid exp claim"),
        ({"iat": [1]}, "token has an invalid iat claim"),
        ({"auth_time": False}, "token has an invalid auth_time claim"),
        ({"auth_time": "0"}, "token has an invalid auth_time claim"),
        ({"nbf": "now"}, "token has an invalid nbf claim"),
        ({"exp": 10**30}, "invalid token"),
    ],
)
async def test_missing_or_bad_time_claims(
    identity: FirebaseIdentity, server: CertsServer, changes: dict[str, Any], message: str
) -> None:
    assert await _rejection(identity, server.sign(_claims(**changes))) == message


# ---------------------------------------------------------------- audience, issuer, subject, email


@pytest.mark.parametrize(
    ("aud", "message"),
    [
        ("other-project", "token has the wrong audience"),
        (PROJECT.upper(), "token has the wrong audience"),
        ([PROJECT], "token has the wrong audience"),
        ([PROJECT, "other-project"], "token has the wrong audience"),
        ("", "token has the wrong audience"),
        (None, "token lacks the aud claim"),
    ],
)
async def test_wrong_audience(
    identity: FirebaseIdentity, server: CertsServer, aud: Any, message: str
) -> None:
    assert await _rejection(identity, server.sign(_claims(aud=aud))) == message


@pytest.mark.parametrize(
    ("iss", "message"),
    [
        ("https://securetoken.google.com/other-project", "token has the wrong issuer"),
        (ISSUER + "/", "token has the wrong issuer"),
        ("http://securetoken.google.com/" + PROJECT, "token has the wrong issuer"),
        ("https://accounts.google.com", "token has the wrong issuer"),
        (PROJECT, "token has the wrong issuer"),
        (None, "token lacks the iss claim"),
    ],
)
async def test_wrong_issuer(identity: FirebaseIdentity, server: CertsServer, iss: Any, message: str) -> None:
    assert await _rejection(identity, server.sign(_claims(iss=iss))) == message


@pytest.mark.parametrize(
    ("sub", "message"),
    [
        (None, "token lacks the sub claim"),
        ("", "token lacks the sub claim"),
        (42, "token lacks the sub claim"),
        (["uid-1"], "token lacks the sub claim"),
        ("u" * 129, "token has an invalid sub claim"),
    ],
)
async def test_missing_or_bad_sub(
    identity: FirebaseIdentity, server: CertsServer, sub: Any, message: str
) -> None:
    assert await _rejection(identity, server.sign(_claims(sub=sub))) == message


async def test_longest_uid_is_accepted(identity: FirebaseIdentity, server: CertsServer) -> None:
    assert (await identity.verify(server.sign(_claims(sub="u" * 128)))).subject == "u" * 128


@pytest.mark.parametrize("email", [None, "", "ada", ["ada@example.com"], 7])
async def test_missing_email(identity: FirebaseIdentity, server: CertsServer, email: Any) -> None:
    assert await _rejection(identity, server.sign(_claims(email=email))) == "token lacks the email claim"


async def test_claims_are_checked_before_any_fetch(identity: FirebaseIdentity, server: CertsServer) -> None:
    now = int(time.time())
    for token in (
        server.sign(_claims(aud="other-project")),
        server.sign(_claims(iss="https://evil.example")),
        server.sign(_claims(exp=now - 600)),
        server.sign(_claims(email=None)),
    ):
        await _rejection(identity, token)
    assert server.requests == 0


# ---------------------------------------------------------------- keys and signatures


async def test_unknown_kid(identity: FirebaseIdentity, server: CertsServer, intruder: CertKey) -> None:
    await identity.verify(server.sign(_claims()))  # warm cache
    assert server.requests == 1

    token = server.sign(_claims(), key=intruder)
    assert await _rejection(identity, token) == "token signed by an unknown key"
    assert server.requests == 1  # looked moments ago: no refetch for a kid Google never had

    no_kid = jwt.encode(_claims(), server.keys["kid-a"].private_key, algorithm="RS256")
    empty_kid = server.sign(_claims(), kid="")
    numeric_kid = _unsigned({"alg": "RS256", "kid": 7}, _claims(), b"x" * 256)
    for token in (no_kid, empty_kid):
        assert await _rejection(identity, token) == "token signed by an unknown key"
    assert await _rejection(identity, numeric_kid) == "malformed token"  # PyJWT refuses it as it parses
    assert server.requests == 1


async def test_unknown_kid_refetches_at_most_once_per_interval(
    identity: FirebaseIdentity, server: CertsServer, intruder: CertKey, clock: FakeClock
) -> None:
    await identity.verify(server.sign(_claims()))
    forged = [server.sign(_claims(), key=intruder, kid=f"made-up-{i}") for i in range(20)]

    clock.advance(MIN_REFETCH + 0.1)
    results = await asyncio.gather(*(_rejection(identity, t) for t in forged))
    assert set(results) == {"token signed by an unknown key"}
    assert server.requests == 2  # one look for all twenty

    clock.advance(1)
    assert await _rejection(identity, forged[0]) == "token signed by an unknown key"
    assert server.requests == 2


async def test_rotated_in_key_is_accepted_after_refetch(
    identity: FirebaseIdentity, server: CertsServer, key_b: CertKey, clock: FakeClock
) -> None:
    assert (await identity.verify(server.sign(_claims()))).subject == "uid-1"

    server.rotate(key_b)
    clock.advance(MIN_REFETCH + 0.1)  # long since the last fetch, far from the cache's expiry
    rotated = server.sign(_claims(sub="uid-2"), key=key_b)
    assert (await identity.verify(rotated)).subject == "uid-2"
    assert server.requests == 2
    assert (await identity.verify(server.sign(_claims(), key=server.keys["kid-a"]))).subject == "uid-1"
    assert server.requests == 2


async def test_retired_key_is_refused_once_the_cache_expires(
    identity: FirebaseIdentity, server: CertsServer, key_a: CertKey, key_b: CertKey, clock: FakeClock
) -> None:
    old = server.sign(_claims(), key=key_a)
    assert (await identity.verify(old)).subject == "uid-1"

    server.rotate(key_b, retire="kid-a")
    clock.advance(server.max_age or 0)
    assert await _rejection(identity, old) == "token signed by an unknown key"
    assert (await identity.verify(server.sign(_claims(), key=key_b))).subject == "uid-1"
    assert server.requests == 2


async def test_wrong_signature(identity: FirebaseIdentity, server: CertsServer, intruder: CertKey) -> None:
    forged = server.sign(_claims(), key=intruder, kid="kid-a")  # claims Google's key id
    assert await _rejection(identity, forged) == "token signature is invalid"


async def test_tampered_payload(identity: FirebaseIdentity, server: CertsServer) -> None:
    header, _, signature = server.sign(_claims()).split(".")
    payload = _b64(json.dumps(_claims(email="admin@example.com")).encode())
    assert await _rejection(identity, f"{header}.{payload}.{signature}") == "token signature is invalid"


async def test_stripped_signature(identity: FirebaseIdentity, server: CertsServer) -> None:
    header, payload, _ = server.sign(_claims()).split(".")
    assert await _rejection(identity, f"{header}.{payload}.") in {
        "token signature is invalid",
        "malformed token",
    }


async def test_alg_none(identity: FirebaseIdentity, server: CertsServer) -> None:
    token = jwt.encode(_claims(), "", algorithm="none", headers={"kid": "kid-a"})
    assert await _rejection(identity, token) == "unsupported token algorithm"
    for alg in ("None", "NONE", "", None):
        header = {"alg": alg, "kid": "kid-a", "typ": "JWT"}
        assert await _rejection(identity, _unsigned(header, _claims())) == "unsupported token algorithm"
    assert server.requests == 0


async def test_hs256_signed_with_the_public_cert_as_secret(
    identity: FirebaseIdentity, server: CertsServer
) -> None:
    key = server.keys["kid-a"]
    secrets = [key.certificate_pem.encode(), key.public_pem()]
    for secret in secrets:
        header = {"alg": "HS256", "kid": "kid-a", "typ": "JWT"}
        signing_input = _unsigned(header, _claims()).rsplit(".", 1)[0]
        signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
        assert (
            await _rejection(identity, f"{signing_input}.{_b64(signature)}") == "unsupported token algorithm"
        )
    await identity.verify(server.sign(_claims()))  # with the certificates cached, still refused
    signing_input = _unsigned({"alg": "HS256", "kid": "kid-a"}, _claims()).rsplit(".", 1)[0]
    signature = hmac.new(secrets[0], signing_input.encode(), hashlib.sha256).digest()
    assert await _rejection(identity, f"{signing_input}.{_b64(signature)}") == "unsupported token algorithm"


@pytest.mark.parametrize("alg", ["RS512", "PS256", "ES256", "rs256"])
async def test_other_algorithms_are_refused(
    identity: FirebaseIdentity, server: CertsServer, alg: str
) -> None:
    header = {"alg": alg, "kid": "kid-a", "typ": "JWT"}
    signing_input = _unsigned(header, _claims()).rsplit(".", 1)[0]
    assert await _rejection(identity, f"{signing_input}.{_b64(b'x' * 256)}") == "unsupported token algorithm"


async def test_critical_header_extensions_are_refused(
    identity: FirebaseIdentity, server: CertsServer
) -> None:
    token = server.sign(_claims(), headers={"crit": ["exp"], "exp": 1})
    assert await _rejection(identity, token) == "malformed token"


@pytest.mark.parametrize(
    "token",
    [
        "",
        "garbage",
        "a.b.c",
        "...",
        "eyJhbGciOiJSUzI1NiJ9.e30",
        "eyJhbGciOiJSUzI1NiJ9.W10.c2ln",  # payload is a JSON array
        "W10.e30.c2ln",  # header is a JSON array
        "é.é.é",
        "x" * 20_000,
        None,
        b"bytes.not.str",
        12345,
    ],
)
async def test_garbage(identity: FirebaseIdentity, server: CertsServer, token: Any) -> None:
    assert await _rejection(identity, token) in {"malformed token", "unsupported token algorithm"}
    assert server.requests == 0


# ---------------------------------------------------------------- certificate cache


async def test_certificates_are_cached_per_max_age(
    identity: FirebaseIdentity, server: CertsServer, clock: FakeClock
) -> None:
    server.max_age = 600
    tokens = [server.sign(_claims(sub=f"uid-{i}")) for i in range(50)]
    for token in tokens:
        await identity.verify(token)
    assert server.requests == 1

    clock.advance(599)
    await identity.verify(tokens[0])
    assert server.requests == 1

    clock.advance(2)  # expired
    for token in tokens[:10]:
        await identity.verify(token)
    assert server.requests == 2


async def test_age_header_shortens_freshness(
    identity: FirebaseIdentity, server: CertsServer, clock: FakeClock
) -> None:
    server.max_age, server.age = 600, 580  # a cache in front already held it for 580 s
    token = server.sign(_claims())
    await identity.verify(token)
    clock.advance(19)
    await identity.verify(token)
    assert server.requests == 1
    clock.advance(2)
    await identity.verify(token)
    assert server.requests == 2


@pytest.mark.parametrize("max_age", [None, 0])
async def test_uncacheable_answers_are_still_reused_briefly(
    identity: FirebaseIdentity, server: CertsServer, clock: FakeClock, max_age: int | None
) -> None:
    server.max_age = max_age
    token = server.sign(_claims())
    for _ in range(10):
        await identity.verify(token)
    assert server.requests == 1  # not a fetch per verification
    clock.advance(MIN_REFETCH)
    await identity.verify(token)
    assert server.requests == 2


async def test_huge_max_age_is_capped(
    identity: FirebaseIdentity, server: CertsServer, clock: FakeClock
) -> None:
    server.max_age = 10 * 365 * 86400
    token = server.sign(_claims())
    await identity.verify(token)
    clock.advance(firebase.MAX_CACHE_SECONDS + 1)
    await identity.verify(token)
    assert server.requests == 2


async def test_concurrent_verifications_on_a_cold_cache_share_one_fetch(
    identity: FirebaseIdentity, server: CertsServer
) -> None:
    server.delay = 0.3
    tokens = [server.sign(_claims(sub=f"uid-{i}")) for i in range(25)]
    verified = await asyncio.gather(*(identity.verify(t) for t in tokens))
    assert [v.subject for v in verified] == [f"uid-{i}" for i in range(25)]
    assert server.requests == 1


async def test_a_caller_giving_up_does_not_cancel_the_shared_fetch(
    identity: FirebaseIdentity, server: CertsServer
) -> None:
    server.delay = 0.3
    token = server.sign(_claims())
    impatient = asyncio.create_task(identity.verify(token))
    patient = asyncio.create_task(identity.verify(token))
    await asyncio.sleep(0.05)
    impatient.cancel()
    assert (await patient).subject == "uid-1"
    assert impatient.cancelled()
    assert server.requests == 1


async def test_an_injected_client_is_used_and_left_open(server: CertsServer, clock: FakeClock) -> None:
    seen: list[str] = []

    async def record(request: httpx.Request) -> None:
        seen.append(str(request.url))

    async with httpx.AsyncClient(event_hooks={"request": [record]}) as client:
        identity = FirebaseIdentity(PROJECT, certs_url=server.url, http=client)
        assert (await identity.verify(server.sign(_claims()))).subject == "uid-1"
        assert seen == [server.url]
        assert not client.is_closed


# ---------------------------------------------------------------- certificate failures


async def test_certificate_server_down(key_a: CertKey, clock: FakeClock) -> None:
    with certs_server(key_a) as gone:
        url, token = gone.url, gone.sign(_claims())
    identity = FirebaseIdentity(PROJECT, certs_url=url, min_refetch_seconds=MIN_REFETCH)
    error = await _unavailable(identity, token)
    assert "try again" in error.message


def _certificate_pem(private: Any, public: Any) -> str:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "test")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(public)
        .serial_number(1)
        .not_valid_before(now - timedelta(days=1))
        .not_valid_after(now + timedelta(days=1))
        .sign(private, hashes.SHA256())
    )
    return certificate.public_bytes(serialization.Encoding.PEM).decode()


def _bad_documents(key_a: CertKey) -> dict[str, bytes]:
    ec_key = ec.generate_private_key(ec.SECP256R1())
    good = {"kid-a": key_a.certificate_pem}
    return {
        "html": b"<html>Service Unavailable</html>",
        "empty": b"",
        "json-list": json.dumps([key_a.certificate_pem]).encode(),
        "json-empty-object": b"{}",
        "json-string": b'"hello"',
        "not-pem": json.dumps(
            {**good, "kid-b": "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----"}
        ).encode(),
        "public-key-not-cert": json.dumps({"kid-a": key_a.public_pem().decode()}).encode(),
        "pem-not-string": json.dumps({"kid-a": {"pem": key_a.certificate_pem}}).encode(),
        "ec-key": json.dumps({**good, "kid-e": _certificate_pem(ec_key, ec_key.public_key())}).encode(),
        "too-large": json.dumps({**good, "padding": "x" * (firebase.MAX_CERTS_BYTES + 1)}).encode(),
        "too-many": json.dumps(
            {f"kid-{i}": key_a.certificate_pem for i in range(firebase.MAX_CERTS + 1)}
        ).encode(),
        "invalid-utf8": b"\xff\xfe{}",
    }


@pytest.mark.parametrize(
    "case",
    [
        "html",
        "empty",
        "json-list",
        "json-empty-object",
        "json-string",
        "not-pem",
        "public-key-not-cert",
        "pem-not-string",
        "ec-key",
        "too-large",
        "too-many",
        "invalid-utf8",
    ],
)
async def test_garbage_certificates_are_upstream_failures(
    identity: FirebaseIdentity, server: CertsServer, key_a: CertKey, case: str
) -> None:
    server.fail("garbage")
    server.garbage = _bad_documents(key_a)[case]
    await _unavailable(identity, server.sign(_claims()))
    assert server.requests == 1


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
async def test_small_rsa_keys_are_refused(identity: FirebaseIdentity, server: CertsServer) -> None:
    weak = make_key("kid-weak", key_size=1024)
    server.publish(weak)
    await _unavailable(identity, server.sign(_claims(), key=weak))


@pytest.mark.parametrize("status", [500, 503, 404, 403, 302])
async def test_error_statuses_are_upstream_failures(
    identity: FirebaseIdentity, server: CertsServer, status: int
) -> None:
    server.fail("error", status=status)
    await _unavailable(identity, server.sign(_claims()))


async def test_failures_are_not_hammered_and_recovery_follows(
    identity: FirebaseIdentity, server: CertsServer, clock: FakeClock
) -> None:
    token = server.sign(_claims())
    server.fail("error", status=503)
    await asyncio.gather(*(_unavailable(identity, token) for _ in range(10)))
    assert server.requests == 1

    clock.advance(1)
    await _unavailable(identity, token)  # fails fast: no request within the interval
    assert server.requests == 1

    server.recover()
    clock.advance(MIN_REFETCH)
    assert (await identity.verify(token)).subject == "uid-1"
    assert server.requests == 2


async def test_expired_certificates_are_not_used_when_the_refresh_fails(
    identity: FirebaseIdentity, server: CertsServer, clock: FakeClock
) -> None:
    token = server.sign(_claims())
    await identity.verify(token)
    server.fail("error")
    clock.advance((server.max_age or 0) + 1)
    await _unavailable(identity, token)


async def test_refresh_failure_for_a_new_kid_is_upstream(
    identity: FirebaseIdentity, server: CertsServer, key_b: CertKey, clock: FakeClock
) -> None:
    await identity.verify(server.sign(_claims()))
    server.rotate(key_b)
    server.fail("error")
    clock.advance(MIN_REFETCH)
    await _unavailable(identity, server.sign(_claims(), key=key_b))  # may be a genuine new key
    assert (await identity.verify(server.sign(_claims()))).subject == "uid-1"  # known keys still work


async def test_slow_server_times_out(server: CertsServer, clock: FakeClock) -> None:
    identity = FirebaseIdentity(PROJECT, certs_url=server.url, fetch_timeout_seconds=0.3)
    server.delay = 5.0
    started = time.perf_counter()
    await _unavailable(identity, server.sign(_claims()))
    assert time.perf_counter() - started < 1.5


async def test_verification_does_not_block_the_event_loop(
    identity: FirebaseIdentity, server: CertsServer
) -> None:
    server.delay = 0.5
    ticks: list[float] = []

    async def ticker() -> None:
        while True:
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    ticking = asyncio.create_task(ticker())
    try:
        await asyncio.sleep(0)
        started = time.perf_counter()
        verified = await asyncio.gather(*(identity.verify(server.sign(_claims())) for _ in range(5)))
        elapsed = time.perf_counter() - started
    finally:
        ticking.cancel()
    assert len(verified) == 5 and elapsed >= 0.5
    during = [t for t in ticks if started <= t <= started + elapsed]
    assert len(during) >= 10  # ~50 at 10 ms intervals; a blocked loop would manage one or two
    gaps = [b - a for a, b in itertools.pairwise(during)]
    assert max(gaps) < 0.25  # the fetch alone takes 0.5 s


# ---------------------------------------------------------------- construction


@pytest.mark.parametrize("project", ["", "  ", " padded "])
def test_bad_project_is_refused(project: str) -> None:
    with pytest.raises(ValueError):
        FirebaseIdentity(project, certs_url=firebase.GOOGLE_CERTS_URL)


def test_bad_certs_url_is_refused() -> None:
    with pytest.raises(ValueError):
        FirebaseIdentity(PROJECT, certs_url="file:///etc/passwd")


def test_issuer_follows_the_project() -> None:
    identity = FirebaseIdentity("my-proj", certs_url=firebase.GOOGLE_CERTS_URL)
    assert identity.issuer == "https://securetoken.google.com/my-proj"
