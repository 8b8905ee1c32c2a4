"""The old backend's Cloud Storage bucket, read through google-cloud-storage.

The client is blocking, so calls run in worker threads; it is made on first use. With
STORAGE_EMULATOR_HOST set it is anonymous and talks to the emulator (tests); otherwise it uses
Application Default Credentials, which need `storage.objects.list` and `storage.objects.get` on
the old bucket (and on any other bucket a record's media path names).
"""

from __future__ import annotations

import asyncio
import threading
from typing import TYPE_CHECKING

from domain.legacy_records import MediaMissing, MediaRef

if TYPE_CHECKING:
    from google.cloud.storage import Client


class LegacyBucket:
    """A `domain.migration.LegacySource` over one bucket (media may also lie in other buckets)."""

    def __init__(
        self, bucket: str, *, project: str | None = None, client: Client | None = None, timeout: float = 120.0
    ) -> None:
        self._bucket = bucket
        self._project = project
        self._client = client
        self._owns_client = client is None
        self._timeout = timeout
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LegacyBucket({self._bucket!r})"

    @property
    def bucket(self) -> str:
        return self._bucket

    async def list_names(self, prefix: str) -> list[str]:
        """Every object name under the prefix (all pages)."""
        return await asyncio.to_thread(self._list_sync, prefix)

    async def read(self, ref: MediaRef) -> bytes:
        """The object's bytes; MediaMissing if there is none."""
        return await asyncio.to_thread(self._read_sync, ref.bucket or self._bucket, ref.name)

    async def close(self) -> None:
        if not self._owns_client:
            return
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            await asyncio.to_thread(client.close)

    def _storage(self) -> Client:
        with self._lock:
            if self._client is None:
                from google.cloud import storage

                self._client = storage.Client(project=self._project)
            return self._client

    def _list_sync(self, prefix: str) -> list[str]:
        from google.cloud.storage.retry import DEFAULT_RETRY

        blobs = self._storage().list_blobs(
            self._bucket, prefix=prefix or None, retry=DEFAULT_RETRY, timeout=self._timeout
        )
        return [blob.name for blob in blobs if not blob.name.endswith("/")]

    def _read_sync(self, bucket: str, name: str) -> bytes:
        from google.api_core.exceptions import NotFound
        from google.cloud.storage.retry import DEFAULT_RETRY

        try:
            data: bytes = (
                self._storage()
                .bucket(bucket)
                .blob(name)
                .download_as_bytes(retry=DEFAULT_RETRY, timeout=self._timeout)
            )
        except NotFound:
            raise MediaMissing(f"gs://{bucket}/{name}") from None
        return data
