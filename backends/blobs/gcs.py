"""BlobStore on a private Cloud Storage bucket; clients download through V4 signed URLs.

google-cloud-storage is blocking, so every call runs in a worker thread, and it is imported only
when the first call needs it (cold starts matter on Cloud Run). Objects are never made public:
no ACL is ever set (the bucket should use uniform bucket-level access and public access
prevention); each object carries its content type and its SHA-256 in the `sha256` metadata.

Signing: the storage client may be anonymous (STORAGE_EMULATOR_HOST) or hold token-only
credentials (Cloud Run), neither of which can sign, so URLs are always signed with explicit
signing credentials: `signer=` if given (see `key_file_signer` and `iam_signer`), else a
service-account key in GOOGLE_APPLICATION_CREDENTIALS, else IAM `signBlob` as the runtime
service account.
"""

from __future__ import annotations

import asyncio
import hashlib
import math
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, quote, urlsplit

from backends.blobs.localfs import validate_key
from domain.ports import BlobNotFound, SignedUrl, StoredBlob, UploadTarget

if TYPE_CHECKING:
    import os

    from google.auth.credentials import Credentials, Signing
    from google.cloud.storage import Bucket, Client

IAM_CREDENTIALS_BASE_URL = "https://iamcredentials.googleapis.com"
# The same bounds as the local store, and the V4 maximum.
MIN_EXPIRES_IN = timedelta(seconds=1)
MAX_EXPIRES_IN = timedelta(days=7)
# What the service account must hold on the bucket for the studio to work (checked by `ping`).
REQUIRED_PERMISSIONS = ("storage.objects.create", "storage.objects.delete", "storage.objects.get")
SHA256_METADATA_KEY = "sha256"

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class SignedUpload:
    """A signed resumable-upload initiation: send `method` to `url` with exactly `headers`.

    The answer's `Location` header is the upload session URL the client then PUTs the bytes to.
    GCS refuses the upload if its final size is outside `0..max_bytes` or its content type differs.
    """

    url: str
    method: str
    headers: Mapping[str, str]
    expires_at: datetime


class GcsBlobStore:
    """Private media in one GCS bucket; clients reach objects through V4 signed URLs."""

    def __init__(
        self,
        bucket: str,
        *,
        project: str | None = None,
        signer: Signing | None = None,
        client: Client | None = None,
        signed_url_endpoint: str | None = None,
        iam_base_url: str = IAM_CREDENTIALS_BASE_URL,
        timeout: float = 60.0,
        ping_timeout: float = 2.0,
    ) -> None:
        """`signed_url_endpoint` defaults to the client's endpoint (https://storage.googleapis.com,
        or the emulator's when STORAGE_EMULATOR_HOST is set); `iam_base_url` is used only when no
        signer is given and the ambient credentials must sign through IAM."""
        if not bucket or "/" in bucket:
            raise ValueError("a bucket name (without gs:// or slashes) is required")
        self.bucket_name = bucket
        self._project = project
        self._signer = signer
        self._client = client
        self._owns_client = client is None
        self._bucket: Bucket | None = None
        self._signed_url_endpoint = signed_url_endpoint.rstrip("/") if signed_url_endpoint else None
        self._iam_base_url = iam_base_url
        self._timeout = timeout
        self._ping_timeout = ping_timeout
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GcsBlobStore(bucket={self.bucket_name!r})"

    # ------------------------------------------------------------ BlobStore

    async def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> StoredBlob:
        """Store bytes under a key, replacing any previous object (GCS writes are atomic)."""
        validate_key(key)
        _check_content_type(content_type)
        payload = bytes(data)
        digest = hashlib.sha256(payload).hexdigest()
        meta = {str(name): str(value) for name, value in (metadata or {}).items()}
        if any(not name or _CONTROL.search(name) for name in meta):
            raise ValueError("metadata names must be non-empty and free of control characters")
        meta[SHA256_METADATA_KEY] = digest  # Ours wins over a caller's value.
        await asyncio.to_thread(self._put_sync, key, payload, content_type, meta)
        return StoredBlob(key=key, size=len(payload), sha256=digest, content_type=content_type)

    async def get(self, key: str) -> bytes:
        """The object's bytes; BlobNotFound if missing."""
        validate_key(key)
        return await asyncio.to_thread(self._get_sync, key)

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under the key."""
        validate_key(key)
        return await asyncio.to_thread(self._exists_sync, key)

    async def delete(self, key: str) -> None:
        """Remove the object; missing is fine."""
        validate_key(key)
        await asyncio.to_thread(self._delete_sync, key)

    async def signed_url(
        self, key: str, *, expires_in: timedelta, download_name: str | None = None
    ) -> SignedUrl:
        """A V4 signed GET URL valid for `expires_in` (1 second to 7 days, whole seconds rounded up)."""
        validate_key(key)
        seconds = _expiry_seconds(expires_in)
        disposition = _content_disposition(download_name) if download_name is not None else None
        url = await asyncio.to_thread(self._sign_sync, key, "GET", seconds, disposition, None)
        return SignedUrl(url=url, expires_at=_expires_at(url))

    async def upload_url(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: timedelta
    ) -> UploadTarget:
        """A signed resumable-upload start (see `signed_upload_url`): GCS itself refuses more than
        `max_bytes` and another content type."""
        signed = await self.signed_upload_url(
            key, content_type=content_type, max_bytes=max_bytes, expires_in=expires_in
        )
        return UploadTarget(signed.url, signed.method, dict(signed.headers), signed.expires_at)

    async def stat(self, key: str) -> StoredBlob:
        """Size and content type from the object's resource; sha256 from its metadata ("" when an
        upload set none)."""
        validate_key(key)
        return await asyncio.to_thread(self._stat_sync, key)

    async def read_prefix(self, key: str, length: int) -> bytes:
        """At most the first `length` bytes, in one ranged download; BlobNotFound if missing."""
        validate_key(key)
        return await asyncio.to_thread(self._read_prefix_sync, key, max(0, length))

    async def ping(self) -> None:
        """Raise if the bucket is missing or unreachable, or the caller may not read, write and delete."""
        await asyncio.to_thread(self._ping_sync)

    # ------------------------------------------------------------ beyond the port

    async def signed_upload_url(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: timedelta
    ) -> SignedUpload:
        """A V4 signed URL that starts a resumable upload of at most `max_bytes` to `key`.

        The client POSTs to it with exactly the returned headers (`x-goog-resumable: start`,
        `x-goog-content-length-range: 0,max_bytes`, the content type), then uploads the bytes to
        the session URL from the answer's `Location` header.
        """
        validate_key(key)
        _check_content_type(content_type)
        if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
            raise ValueError("max_bytes must be a non-negative integer")
        seconds = _expiry_seconds(expires_in)
        headers = {
            "content-type": content_type,
            "x-goog-content-length-range": f"0,{max_bytes}",
            "x-goog-resumable": "start",
        }
        url = await asyncio.to_thread(self._sign_sync, key, "POST", seconds, None, dict(headers))
        return SignedUpload(url=url, method="POST", headers=headers, expires_at=_expires_at(url))

    async def close(self) -> None:
        """Release the HTTP connections of the client this store made (a client passed in stays open)."""
        if not self._owns_client:
            return
        with self._lock:
            client, self._client, self._bucket = self._client, None, None
        if client is not None:
            await asyncio.to_thread(client.close)

    # ------------------------------------------------------------ worker threads

    def _bucket_sync(self) -> Bucket:
        with self._lock:
            if self._bucket is None:
                if self._client is None:
                    from google.cloud import storage

                    # With STORAGE_EMULATOR_HOST set the client is anonymous and talks to the emulator.
                    self._client = storage.Client(project=self._project)
                self._bucket = self._client.bucket(self.bucket_name)
            return self._bucket

    def _put_sync(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> None:
        from google.cloud.storage.retry import DEFAULT_RETRY

        blob = self._bucket_sync().blob(key)
        blob.metadata = metadata
        # A whole-object overwrite with the same bytes is idempotent, so retrying it is safe.
        blob.upload_from_string(data, content_type=content_type, retry=DEFAULT_RETRY, timeout=self._timeout)

    def _get_sync(self, key: str) -> bytes:
        from google.api_core.exceptions import NotFound
        from google.cloud.storage.retry import DEFAULT_RETRY

        try:
            data: bytes = (
                self._bucket_sync().blob(key).download_as_bytes(retry=DEFAULT_RETRY, timeout=self._timeout)
            )
        except NotFound:
            raise BlobNotFound(key) from None
        return data

    def _stat_sync(self, key: str) -> StoredBlob:
        from google.cloud.storage.retry import DEFAULT_RETRY

        blob = self._bucket_sync().get_blob(key, retry=DEFAULT_RETRY, timeout=self._timeout)
        if blob is None:
            raise BlobNotFound(key)
        sha256 = (blob.metadata or {}).get(SHA256_METADATA_KEY, "")
        content_type = blob.content_type or "application/octet-stream"
        return StoredBlob(key=key, size=int(blob.size or 0), sha256=str(sha256), content_type=content_type)

    def _read_prefix_sync(self, key: str, length: int) -> bytes:
        from google.api_core.exceptions import NotFound, RequestRangeNotSatisfiable
        from google.cloud.storage.retry import DEFAULT_RETRY

        blob = self._bucket_sync().blob(key)
        if length == 0:
            if not blob.exists(retry=DEFAULT_RETRY, timeout=self._timeout):
                raise BlobNotFound(key)
            return b""
        try:
            data: bytes = blob.download_as_bytes(
                start=0, end=length - 1, retry=DEFAULT_RETRY, timeout=self._timeout
            )
        except NotFound:
            raise BlobNotFound(key) from None
        except RequestRangeNotSatisfiable:
            return b""  # an empty object has no first byte
        return data

    def _exists_sync(self, key: str) -> bool:
        from google.cloud.storage.retry import DEFAULT_RETRY

        return bool(self._bucket_sync().blob(key).exists(retry=DEFAULT_RETRY, timeout=self._timeout))

    def _delete_sync(self, key: str) -> None:
        from google.api_core.exceptions import NotFound
        from google.cloud.storage.retry import DEFAULT_RETRY

        try:
            # Deleting is idempotent (missing is fine), so retrying it is safe.
            self._bucket_sync().blob(key).delete(retry=DEFAULT_RETRY, timeout=self._timeout)
        except NotFound:
            pass

    def _ping_sync(self) -> None:
        # testIamPermissions needs no permission of its own, fails with 404 on a missing bucket,
        # and tells whether the object permissions the studio relies on are held.
        granted = set(
            self._bucket_sync().test_iam_permissions(
                list(REQUIRED_PERMISSIONS), retry=None, timeout=self._ping_timeout
            )
        )
        missing = sorted(set(REQUIRED_PERMISSIONS) - granted)
        if missing:
            raise PermissionError(f"missing on bucket {self.bucket_name}: {', '.join(missing)}")

    def _sign_sync(
        self,
        key: str,
        method: str,
        seconds: int,
        disposition: str | None,
        headers: dict[str, str] | None,
    ) -> str:
        kwargs: dict[str, Any] = {}
        if self._signed_url_endpoint is not None:
            kwargs["api_access_endpoint"] = self._signed_url_endpoint
        url: str = (
            self._bucket_sync()
            .blob(key)
            .generate_signed_url(
                version="v4",
                expiration=timedelta(seconds=seconds),
                method=method,
                credentials=self._signing_credentials(),
                response_disposition=disposition,
                headers=headers,
                **kwargs,
            )
        )
        return url

    def _signing_credentials(self) -> Signing:
        with self._lock:
            if self._signer is None:
                from backends.blobs._gcs_signing import default_signing_credentials

                self._signer = default_signing_credentials(iam_base_url=self._iam_base_url)
            return self._signer


# ---------------------------------------------------------------- signers


def key_file_signer(path: str | os.PathLike[str]) -> Signing:
    """Signing credentials from a service-account JSON key file (local signing, works offline)."""
    from backends.blobs._gcs_signing import key_file_signing_credentials

    return key_file_signing_credentials(path)


def iam_signer(
    service_account_email: str | None = None,
    *,
    source: Credentials | None = None,
    base_url: str = IAM_CREDENTIALS_BASE_URL,
    timeout: float = 10.0,
) -> Signing:
    """Signing credentials that call IAM `signBlob` as `service_account_email` (Cloud Run).

    `source` (default: Application Default Credentials) authenticates the IAM calls; the email
    defaults to the account `source` belongs to. `base_url` lets tests use a local stand-in.
    """
    from backends.blobs._gcs_signing import iam_signing_credentials

    return iam_signing_credentials(service_account_email, source=source, base_url=base_url, timeout=timeout)


# ---------------------------------------------------------------- helpers


def _check_content_type(content_type: str) -> None:
    if not content_type or _CONTROL.search(content_type) or not content_type.isascii():
        raise ValueError("content type must be a non-empty ASCII string without control characters")


def _expiry_seconds(expires_in: timedelta) -> int:
    if not MIN_EXPIRES_IN <= expires_in <= MAX_EXPIRES_IN:
        raise ValueError("expires_in must be between 1 second and 7 days")
    return min(math.ceil(expires_in.total_seconds()), int(MAX_EXPIRES_IN.total_seconds()))


def _expires_at(url: str) -> datetime:
    """When a V4 signed URL stops working: its X-Goog-Date plus X-Goog-Expires."""
    query = parse_qs(urlsplit(url).query)
    issued = datetime.strptime(query["X-Goog-Date"][0], "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
    return issued + timedelta(seconds=int(query["X-Goog-Expires"][0]))


def _content_disposition(name: str) -> str:
    """`inline` with a quoted ASCII filename, plus an RFC 5987 `filename*` for anything else.

    The same header the local store's /files route sends.
    """
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name) or "download"
    value = f'inline; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value
