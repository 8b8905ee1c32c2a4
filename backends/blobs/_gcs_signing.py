"""Signing credentials for GCS V4 signed URLs: a service-account key file, or IAM `signBlob`.

`google-cloud-storage` signs with any `google.auth.credentials.Signing`. A key file gives one
directly. On Cloud Run there is no private key: the runtime service account asks the IAM
Credentials API to sign for it. google-auth's own IAM signer hard-codes the endpoint, so this
module has a small one whose base URL can point at a local stand-in in tests.

Imported only by `backends.blobs.gcs`, when the first URL is signed (it imports google-auth).
"""

from __future__ import annotations

import base64
import json
import os
import random
import threading
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from google.auth import credentials as ga_credentials
from google.auth import crypt

if TYPE_CHECKING:
    from google.auth.credentials import Credentials

IAM_CREDENTIALS_BASE_URL = "https://iamcredentials.googleapis.com"
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"
_RETRYABLE_STATUS = frozenset({429, 500, 502, 503, 504})


class SigningError(RuntimeError):
    """The signed URL could not be signed (IAM refused, was unreachable, or no credentials)."""


class IamBlobSigner(crypt.Signer):
    """Signs bytes with the IAM Credentials API `signBlob` method, authenticated by `source`.

    `source` needs `iam.serviceAccounts.signBlob` on the target account (on Cloud Run: grant the
    runtime service account `roles/iam.serviceAccountTokenCreator` on itself).
    """

    def __init__(
        self,
        service_account_email: str,
        source: Credentials,
        *,
        base_url: str = IAM_CREDENTIALS_BASE_URL,
        timeout: float = 10.0,
        attempts: int = 4,
    ) -> None:
        if not service_account_email or "/" in service_account_email:
            raise ValueError("a service account email is required to sign with IAM")
        self.service_account_email = service_account_email
        self._source = source
        self._url = (
            f"{base_url.rstrip('/')}/v1/projects/-/serviceAccounts/"
            f"{quote(service_account_email, safe='@')}:signBlob"
        )
        self._timeout = timeout
        self._attempts = max(1, attempts)
        self._session: Any = None
        self._lock = threading.Lock()

    @property
    def key_id(self) -> str | None:
        # IAM picks the key; it reports which in the response, unknown beforehand.
        return None

    def sign(self, message: str | bytes) -> bytes:
        """The RSA-SHA256 signature of `message` by the service account (blocking HTTP call)."""
        payload = message.encode("utf-8") if isinstance(message, str) else bytes(message)
        body = {"payload": base64.b64encode(payload).decode("ascii")}
        import requests
        from google.auth import exceptions as auth_exceptions

        session = self._authorized_session()
        last_error = "no attempt made"
        for attempt in range(self._attempts):
            if attempt:
                time.sleep(min(2.0, 0.1 * 2**attempt) * (0.5 + random.random() / 2))
            try:
                response = session.post(self._url, json=body, timeout=self._timeout)
            except auth_exceptions.RefreshError as exc:
                raise SigningError(f"could not get a token to call IAM signBlob: {exc}") from exc
            except (requests.RequestException, auth_exceptions.TransportError) as exc:
                # Connection refused or reset, timeout: worth another try.
                last_error = f"{type(exc).__name__}: {exc}"
                continue
            if response.status_code in _RETRYABLE_STATUS:
                last_error = f"HTTP {response.status_code}"
                continue
            if response.status_code != 200:
                raise SigningError(
                    f"IAM signBlob for {self.service_account_email} refused: "
                    f"HTTP {response.status_code} {_error_message(response.text)}"
                )
            try:
                return base64.b64decode(response.json()["signedBlob"], validate=True)
            except (ValueError, KeyError, TypeError) as exc:
                raise SigningError("IAM signBlob returned an unreadable answer") from exc
        raise SigningError(f"IAM signBlob for {self.service_account_email} failed: {last_error}")

    def _authorized_session(self) -> Any:
        # AuthorizedSession refreshes the source token when needed and retries once on a 401.
        with self._lock:
            if self._session is None:
                from google.auth.transport.requests import AuthorizedSession

                self._session = AuthorizedSession(self._source)
            return self._session


class SignerCredentials(ga_credentials.Signing):
    """A `Signing` credentials object around any `crypt.Signer` and the email it signs as."""

    def __init__(self, signer: crypt.Signer, signer_email: str) -> None:
        self._signer = signer
        self._signer_email = signer_email

    def sign_bytes(self, message: bytes) -> bytes:
        return self._signer.sign(message)

    @property
    def signer_email(self) -> str:
        return self._signer_email

    @property
    def signer(self) -> crypt.Signer:
        return self._signer


def iam_signing_credentials(
    service_account_email: str | None = None,
    *,
    source: Credentials | None = None,
    base_url: str = IAM_CREDENTIALS_BASE_URL,
    timeout: float = 10.0,
) -> SignerCredentials:
    """Sign through IAM `signBlob` as `service_account_email`, authenticated by `source`.

    Defaults (Cloud Run): `source` is Application Default Credentials and the email is the one
    those credentials belong to (the runtime service account, learnt from the metadata server).
    """
    if source is None:
        import google.auth

        source, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    if not service_account_email:
        service_account_email = _service_account_of(source)
    return SignerCredentials(
        IamBlobSigner(service_account_email, source, base_url=base_url, timeout=timeout),
        service_account_email,
    )


def key_file_signing_credentials(path: str | os.PathLike[str]) -> ga_credentials.Signing:
    """Sign locally with a service-account JSON key file (works offline)."""
    from google.oauth2 import service_account

    credentials: ga_credentials.Signing = service_account.Credentials.from_service_account_file(
        os.fspath(path), scopes=[CLOUD_PLATFORM_SCOPE]
    )
    return credentials


def default_signing_credentials(*, iam_base_url: str = IAM_CREDENTIALS_BASE_URL) -> ga_credentials.Signing:
    """What to sign with when nothing was configured.

    A service-account key in GOOGLE_APPLICATION_CREDENTIALS is used directly (even when
    STORAGE_EMULATOR_HOST makes the storage client anonymous); otherwise Application Default
    Credentials that can sign themselves (e.g. impersonated credentials) are used, and any other
    (Cloud Run, GCE, user credentials) sign through IAM `signBlob`.
    """
    key_path = os.environ.get("GOOGLE_APPLICATION_CREDENTIALS")
    if key_path and _is_service_account_key(key_path):
        return key_file_signing_credentials(key_path)
    import google.auth

    try:
        source, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    except Exception as exc:
        raise SigningError(f"no Google credentials to sign URLs with: {exc}") from exc
    if isinstance(source, ga_credentials.Signing):
        return source
    return iam_signing_credentials(source=source, base_url=iam_base_url)


def _service_account_of(source: Credentials) -> str:
    """The email of the service account `source` authenticates as (refreshing it if needed)."""
    email = getattr(source, "service_account_email", None)
    if not email or email == "default":
        # Compute Engine / Cloud Run credentials learn their email from the metadata server.
        from google.auth.transport.requests import Request

        try:
            source.refresh(Request())
        except Exception as exc:
            raise SigningError(f"could not learn the service account to sign as: {exc}") from exc
        email = getattr(source, "service_account_email", None)
    if not email or email == "default":
        raise SigningError(
            "these credentials are not a service account: set the signing service account explicitly"
        )
    return str(email)


def _is_service_account_key(path: str) -> bool:
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except (OSError, ValueError):
        return False
    return isinstance(info, dict) and info.get("type") == "service_account"


def _error_message(text: str) -> str:
    """Google's `{"error": {"message": ...}}` if present, else the start of the body."""
    try:
        message = json.loads(text)["error"]["message"]
    except (ValueError, KeyError, TypeError):
        message = text
    return str(message)[:300]
