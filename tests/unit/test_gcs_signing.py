"""GcsBlobStore signing, checked the way GCS checks it: recompute the V4 canonical request and
string-to-sign from the URL and verify the RSA-SHA256 signature with the signer's public key.

Key-file signing and IAM `signBlob` (against a local stand-in) are both covered, offline. A few
tests at the end check on the emulator what the contract suite cannot see (metadata, no ACLs).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import pytest

from backends.blobs.gcs import GcsBlobStore, iam_signer, key_file_signer
from tests.support.gcs_emulator import (
    SignedUrlRejected,
    SigningKey,
    gcs_emulator,
    require_gcs_packages,
    signing_key,
    verify_v4_signed_url,
)
from tests.support.iam_standin import IamStandIn, iam_standin

BUCKET = "genmedia-media"
KEY = "assets/ab12/sunset image.png"
RUNTIME_SA = "genmedia-run@genmedia-test.iam.gserviceaccount.com"


@pytest.fixture(scope="module", autouse=True)
def _packages() -> None:
    require_gcs_packages(emulator=False)  # the emulator tests ask for the emulator themselves


@pytest.fixture
def key() -> SigningKey:
    return signing_key()


def offline_client() -> Any:
    """An anonymous storage client: building and using it for signing makes no network call."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import storage

    return storage.Client(project="genmedia-test", credentials=AnonymousCredentials())


@pytest.fixture
def store(key: SigningKey) -> GcsBlobStore:
    return GcsBlobStore(BUCKET, signer=key.signing_credentials(), client=offline_client())


@pytest.fixture
def standin() -> Iterator[IamStandIn]:
    with iam_standin(signing_key(RUNTIME_SA)) as running:
        yield running


def static_token(token: str = "runtime-access-token") -> Any:
    from google.oauth2.credentials import Credentials

    return Credentials(token=token)


def query_of(url: str) -> dict[str, str]:
    return {name: values[0] for name, values in parse_qs(urlsplit(url).query).items()}


# ---------------------------------------------------------------- key-file signing


async def test_signed_get_url_verifies_with_the_public_key(store: GcsBlobStore, key: SigningKey) -> None:
    before = datetime.now(UTC).replace(microsecond=0)
    signed = await store.signed_url(KEY, expires_in=timedelta(minutes=15))

    checked = verify_v4_signed_url(signed.url, key.public_key)

    assert signed.url.startswith(f"https://storage.googleapis.com/{BUCKET}/assets/ab12/sunset%20image.png?")
    assert (checked.bucket, checked.key, checked.method) == (BUCKET, KEY, "GET")
    assert checked.signer_email == key.email
    assert checked.signed_headers == ("host",)
    assert before <= checked.issued_at <= datetime.now(UTC)
    assert "response-content-disposition" not in checked.params


@pytest.mark.parametrize("expires_in", [timedelta(seconds=1), timedelta(minutes=15), timedelta(days=7)])
async def test_expiry_in_the_url_equals_the_setting(
    store: GcsBlobStore, key: SigningKey, expires_in: timedelta
) -> None:
    signed = await store.signed_url(KEY, expires_in=expires_in)

    checked = verify_v4_signed_url(signed.url, key.public_key, now=signed.expires_at - timedelta(seconds=1))

    assert query_of(signed.url)["X-Goog-Expires"] == str(int(expires_in.total_seconds()))
    assert checked.expires_in == expires_in.total_seconds()
    assert signed.expires_at == checked.expires_at == checked.issued_at + expires_in


async def test_url_is_refused_once_expired(store: GcsBlobStore, key: SigningKey) -> None:
    signed = await store.signed_url(KEY, expires_in=timedelta(minutes=5))

    with pytest.raises(SignedUrlRejected, match="expired"):
        verify_v4_signed_url(signed.url, key.public_key, now=signed.expires_at)


async def test_download_name_is_signed_as_response_content_disposition(
    store: GcsBlobStore, key: SigningKey
) -> None:
    signed = await store.signed_url(
        KEY, expires_in=timedelta(minutes=5), download_name="Sunset \u2013 clip.mp4"
    )

    checked = verify_v4_signed_url(signed.url, key.public_key)

    disposition = checked.params["response-content-disposition"]
    assert disposition.startswith('inline; filename="Sunset _ clip.mp4"')
    assert "filename*=UTF-8''Sunset%20%E2%80%93%20clip.mp4" in disposition
    # The name is covered by the signature: another name makes another (invalid) URL.
    forged = signed.url.replace("Sunset", "Malware")
    with pytest.raises(SignedUrlRejected, match="signature"):
        verify_v4_signed_url(forged, key.public_key)


def _replace_param(name: str, value: str) -> Callable[[str], str]:
    def tamper(url: str) -> str:
        current = query_of(url)[name]
        return url.replace(f"{name}={quote(current, safe='')}", f"{name}={quote(value, safe='')}")

    return tamper


TAMPERINGS: dict[str, Callable[[str], str]] = {
    "other object": lambda url: url.replace("sunset%20image.png", "other.png"),
    "other bucket": lambda url: url.replace(f"/{BUCKET}/", "/another-bucket/"),
    "longer expiry": _replace_param("X-Goog-Expires", "604800"),
    "later date": _replace_param("X-Goog-Date", "20990101T000000Z"),
    "other signer": _replace_param(
        "X-Goog-Credential", "evil@example.iam.gserviceaccount.com/20990101/auto/storage/goog4_request"
    ),
    "added parameter": lambda url: url + "&response-content-type=text%2Fhtml",
    "flipped signature": lambda url: url[:-1] + ("0" if url[-1] != "0" else "1"),
}


@pytest.mark.parametrize("tampering", sorted(TAMPERINGS))
async def test_a_tampered_url_fails_verification(
    store: GcsBlobStore, key: SigningKey, tampering: str
) -> None:
    signed = await store.signed_url(KEY, expires_in=timedelta(minutes=5))
    verify_v4_signed_url(signed.url, key.public_key)  # the untouched URL is good

    tampered = TAMPERINGS[tampering](signed.url)

    assert tampered != signed.url
    with pytest.raises(SignedUrlRejected):
        verify_v4_signed_url(tampered, key.public_key)


async def test_another_key_does_not_verify(store: GcsBlobStore) -> None:
    signed = await store.signed_url(KEY, expires_in=timedelta(minutes=5))
    with pytest.raises(SignedUrlRejected, match="signature"):
        verify_v4_signed_url(signed.url, signing_key("someone-else@example.com").public_key)


async def test_service_account_key_file(tmp_path: Path, key: SigningKey) -> None:
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(key.key_file_info()))
    store = GcsBlobStore(BUCKET, signer=key_file_signer(key_file), client=offline_client())

    signed = await store.signed_url(KEY, expires_in=timedelta(hours=1))

    assert verify_v4_signed_url(signed.url, key.public_key).signer_email == key.email


async def test_default_signer_uses_the_key_in_google_application_credentials(
    tmp_path: Path, key: SigningKey, monkeypatch: pytest.MonkeyPatch
) -> None:
    """As with STORAGE_EMULATOR_HOST: the storage client is anonymous, the URL is still signed."""
    key_file = tmp_path / "sa.json"
    key_file.write_text(json.dumps(key.key_file_info()))
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", "http://127.0.0.1:9")  # never contacted
    store = GcsBlobStore(BUCKET, project="genmedia-test")

    signed = await store.signed_url(KEY, expires_in=timedelta(minutes=10))

    assert signed.url.startswith(f"http://127.0.0.1:9/{BUCKET}/")  # the emulator's endpoint
    verify_v4_signed_url(signed.url, key.public_key)


@pytest.mark.parametrize(
    "expires_in", [timedelta(0), timedelta(milliseconds=500), timedelta(days=7, seconds=1), timedelta(-1)]
)
async def test_expiry_out_of_bounds_is_refused(store: GcsBlobStore, expires_in: timedelta) -> None:
    with pytest.raises(ValueError, match="expires_in"):
        await store.signed_url(KEY, expires_in=expires_in)


@pytest.mark.parametrize("bad_key", ["", "/abs.png", "a/../b.png", "a//b.png", "bad\nkey"])
async def test_unsafe_keys_are_refused(store: GcsBlobStore, bad_key: str) -> None:
    with pytest.raises(ValueError):
        await store.signed_url(bad_key, expires_in=timedelta(minutes=5))


# ---------------------------------------------------------------- IAM signBlob (Cloud Run)


async def test_iam_signblob_urls_verify_with_the_service_account_key(standin: IamStandIn) -> None:
    signer = iam_signer(RUNTIME_SA, source=static_token(), base_url=standin.base_url)
    store = GcsBlobStore(BUCKET, signer=signer, client=offline_client())

    signed = await store.signed_url(KEY, expires_in=timedelta(minutes=30), download_name="a.png")

    checked = verify_v4_signed_url(signed.url, signing_key(RUNTIME_SA).public_key)
    assert checked.signer_email == RUNTIME_SA
    assert checked.expires_in == 30 * 60
    [call] = standin.calls
    assert (call.account, call.status) == (RUNTIME_SA, 200)
    assert call.authorization == "Bearer runtime-access-token"
    assert call.payload is not None and call.payload.startswith(b"GOOG4-RSA-SHA256\n")


async def test_iam_signer_learns_its_account_from_the_credentials(standin: IamStandIn) -> None:
    source = static_token()
    source.service_account_email = RUNTIME_SA  # as compute_engine.Credentials report after refresh
    store = GcsBlobStore(
        BUCKET, signer=iam_signer(source=source, base_url=standin.base_url), client=offline_client()
    )

    signed = await store.signed_url(KEY, expires_in=timedelta(minutes=1))

    assert verify_v4_signed_url(signed.url, signing_key(RUNTIME_SA).public_key).signer_email == RUNTIME_SA


async def test_iam_signing_retries_transient_failures(standin: IamStandIn) -> None:
    standin.fail_next(2, status=503)
    signer = iam_signer(RUNTIME_SA, source=static_token(), base_url=standin.base_url)
    store = GcsBlobStore(BUCKET, signer=signer, client=offline_client())

    signed = await store.signed_url(KEY, expires_in=timedelta(minutes=1))

    verify_v4_signed_url(signed.url, signing_key(RUNTIME_SA).public_key)
    assert [call.status for call in standin.calls] == [503, 503, 200]


async def test_iam_standin_requires_a_bearer_token(standin: IamStandIn) -> None:
    from backends.blobs._gcs_signing import SigningError

    store = GcsBlobStore(
        BUCKET,
        signer=iam_signer(RUNTIME_SA, source=static_token(""), base_url=standin.base_url),
        client=offline_client(),
    )

    with pytest.raises(SigningError):
        await store.signed_url(KEY, expires_in=timedelta(minutes=1))
    assert [call.status for call in standin.calls][-1] == 401
    assert all(call.status != 200 for call in standin.calls)


async def test_iam_refusal_is_not_retried(standin: IamStandIn) -> None:
    from backends.blobs._gcs_signing import SigningError

    signer = iam_signer(
        "not-known@genmedia-test.iam.gserviceaccount.com", source=static_token(), base_url=standin.base_url
    )
    store = GcsBlobStore(BUCKET, signer=signer, client=offline_client())

    with pytest.raises(SigningError, match="404"):
        await store.signed_url(KEY, expires_in=timedelta(minutes=1))
    assert [call.status for call in standin.calls] == [404]


# ---------------------------------------------------------------- signed upload URLs


async def test_signed_upload_url_signs_the_content_length_range(store: GcsBlobStore, key: SigningKey) -> None:
    upload = await store.signed_upload_url(
        "uploads/u1/photo.jpg",
        content_type="image/jpeg",
        max_bytes=20_000_000,
        expires_in=timedelta(minutes=10),
    )

    assert upload.method == "POST"
    assert upload.headers["x-goog-resumable"] == "start"
    assert upload.headers["x-goog-content-length-range"] == "0,20000000"
    assert upload.headers["content-type"] == "image/jpeg"
    signed_headers = query_of(upload.url)["X-Goog-SignedHeaders"].split(";")
    assert {"x-goog-content-length-range", "x-goog-resumable", "content-type", "host"} <= set(signed_headers)
    checked = verify_v4_signed_url(upload.url, key.public_key, method="POST", headers=upload.headers)
    assert (checked.key, checked.expires_in) == ("uploads/u1/photo.jpg", 600)
    assert upload.expires_at == checked.expires_at

    # Any other size limit, content type, or method is refused.
    for name, value in (("x-goog-content-length-range", "0,999999999999"), ("content-type", "text/html")):
        with pytest.raises(SignedUrlRejected, match="signature"):
            verify_v4_signed_url(
                upload.url, key.public_key, method="POST", headers={**upload.headers, name: value}
            )
    with pytest.raises(SignedUrlRejected, match="signature"):
        verify_v4_signed_url(upload.url, key.public_key, method="PUT", headers=upload.headers)
    without_limit = {
        name: value for name, value in upload.headers.items() if name != "x-goog-content-length-range"
    }
    with pytest.raises(SignedUrlRejected, match="not sent"):
        verify_v4_signed_url(upload.url, key.public_key, method="POST", headers=without_limit)


async def test_signed_upload_url_validates_its_input(store: GcsBlobStore) -> None:
    with pytest.raises(ValueError):
        await store.signed_upload_url(
            "u/a.png", content_type="image/png", max_bytes=-1, expires_in=timedelta(1)
        )
    with pytest.raises(ValueError):
        await store.signed_upload_url("u/a.png", content_type="", max_bytes=1, expires_in=timedelta(hours=1))


# ---------------------------------------------------------------- on the emulator


async def test_objects_carry_content_type_sha256_metadata_and_no_acl(key: SigningKey) -> None:
    with gcs_emulator() as emulator:
        store = GcsBlobStore(emulator.bucket, project="genmedia-test", signer=key.signing_credentials())
        data = b"\x89PNG fake"
        await store.put("assets/x/a.png", data, "image/png", {"job": "j1", "sha256": "caller-lie"})

        resource = emulator.object_resource("assets/x/a.png")
        await store.close()

    assert resource["contentType"] == "image/png"
    assert resource["metadata"] == {"job": "j1", "sha256": hashlib.sha256(data).hexdigest()}
    assert not resource.get("acl")


async def test_ping_fails_on_a_missing_bucket(key: SigningKey) -> None:
    from google.api_core.exceptions import NotFound

    with gcs_emulator() as emulator:
        good = GcsBlobStore(emulator.bucket, signer=key.signing_credentials())
        missing = GcsBlobStore("no-such-bucket", signer=key.signing_credentials())
        await good.ping()
        with pytest.raises(NotFound):
            await missing.ping()
        await good.close()
        await missing.close()
