"""BlobStore on a local folder, served to clients through HMAC-signed, expiring `/files/...` URLs.

Each object is a file under the root plus a `<file>.meta.json` sidecar holding its content type,
size, SHA-256 and metadata. `files_route` is the Starlette endpoint that serves the signed URLs.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import io
import json
import math
import mimetypes
import os
import re
import tempfile
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from domain.ports import BlobNotFound, SignedUrl, StoredBlob, UploadTarget

META_SUFFIX = ".meta.json"
# The same bounds as GCS V4 signed URLs, so the embedded default never accepts what production refuses.
MAX_EXPIRES_IN = timedelta(days=7)
MAX_KEY_BYTES = 1024
CHUNK_SIZE = 256 * 1024

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_SIG = re.compile(r"[0-9a-f]{64}")
_EXPIRES = re.compile(r"[0-9]{1,12}")
# Digits are capped so a hostile header cannot make int() chew on thousands of digits.
_RANGE = re.compile(r"bytes=[ \t]*([0-9]{0,19})-([0-9]{0,19})[ \t]*", re.IGNORECASE)


def validate_key(key: str) -> str:
    """Return `key` if it is a safe relative object key, else raise ValueError."""
    if not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError("blob key must be 1 to 1024 bytes long")
    if "\\" in key or _CONTROL.search(key):
        raise ValueError("blob key must not contain backslashes or control characters")
    if key.startswith("/") or re.match(r"[A-Za-z]:", key):
        raise ValueError("blob key must be relative")
    if any(part in ("", ".", "..") for part in key.split("/")):
        raise ValueError("blob key must not contain empty, '.' or '..' segments")
    if key.endswith(META_SUFFIX):
        raise ValueError(f"blob key must not end with {META_SUFFIX!r}")
    return key


@dataclass
class _OpenBlob:
    """An open file and what is needed to serve it; the handle pins this exact version."""

    file: io.BufferedReader
    size: int
    content_type: str
    sha256: str


class LocalBlobStore:
    """Private media in a local folder; clients reach objects through HMAC-signed `/files/...` URLs."""

    def __init__(self, root: Path, *, base_url: str, secret: bytes) -> None:
        if len(secret) < 16:
            raise ValueError("the URL signing secret must be at least 16 bytes")
        self.root = Path(root).resolve()
        self.base_url = base_url.rstrip("/")
        self._secret = bytes(secret)
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ BlobStore

    async def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> StoredBlob:
        """Store bytes under a key atomically (readers see the old or the new object, never a mix)."""
        validate_key(key)
        if not content_type or _CONTROL.search(content_type) or not content_type.isascii():
            raise ValueError("content type must be a non-empty ASCII string without control characters")
        meta = dict(metadata or {})
        return await asyncio.to_thread(self._put_sync, key, bytes(data), content_type, meta)

    async def get(self, key: str) -> bytes:
        """The object's bytes; BlobNotFound if missing."""
        try:
            return await asyncio.to_thread(lambda: self._path(key).read_bytes())
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(key) from None

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under the key."""
        return await asyncio.to_thread(lambda: self._path(key).is_file())

    async def delete(self, key: str) -> None:
        """Remove the object and its sidecar; missing is fine."""
        await asyncio.to_thread(self._delete_sync, key)

    async def signed_url(
        self, key: str, *, expires_in: timedelta, download_name: str | None = None
    ) -> SignedUrl:
        """A `/files/...` GET URL valid for `expires_in` (1 second to 7 days)."""
        validate_key(key)
        if not timedelta(seconds=1) <= expires_in <= MAX_EXPIRES_IN:
            raise ValueError("expires_in must be between 1 second and 7 days")
        expires = math.ceil(time.time() + expires_in.total_seconds())
        params = {"expires": str(expires), "sig": self.sign(key, expires, download_name)}
        if download_name is not None:
            params["name"] = download_name
        url = f"{self.base_url}/files/{quote(key, safe='/')}?{urlencode(params, quote_via=quote)}"
        return SignedUrl(url=url, expires_at=datetime.fromtimestamp(expires, UTC))

    async def upload_url(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: timedelta
    ) -> UploadTarget:
        """A signed `PUT /files/...` link taking at most `max_bytes` (see `localfs_uploads`)."""
        from backends.blobs.localfs_uploads import upload_target

        return upload_target(self, key, content_type=content_type, max_bytes=max_bytes, expires_in=expires_in)

    async def stat(self, key: str) -> StoredBlob:
        """Size, SHA-256 and content type from the sidecar of the stored file; BlobNotFound if missing."""
        blob = await asyncio.to_thread(self._open_for_read, key)
        blob.file.close()
        return StoredBlob(key=key, size=blob.size, sha256=blob.sha256, content_type=blob.content_type)

    async def read_prefix(self, key: str, length: int) -> bytes:
        """At most the first `length` bytes; BlobNotFound if missing."""

        def read() -> bytes:
            with self._path(key).open("rb") as handle:
                return handle.read(max(0, length))

        try:
            return await asyncio.to_thread(read)
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
            raise BlobNotFound(key) from None

    async def ping(self) -> None:
        """Raise OSError if the root folder is missing or not writable."""
        ok = await asyncio.to_thread(lambda: self.root.is_dir() and os.access(self.root, os.W_OK | os.X_OK))
        if not ok:
            raise OSError(f"blob folder {self.root} is missing or not writable")

    # ------------------------------------------------------------ signing

    def sign(self, key: str, expires: int, download_name: str | None = None) -> str:
        """Hex HMAC-SHA256 over the key, the expiry (unix seconds) and the download name if any."""
        # Key and expiry cannot contain a newline, and the name comes last, so fields cannot bleed
        # into each other; "no name" and "empty name" sign differently.
        message = f"v1\n{key}\n{expires}"
        if download_name is not None:
            message += f"\n{download_name}"
        return hmac.new(self._secret, message.encode("utf-8"), hashlib.sha256).hexdigest()

    def verify(self, key: str, expires: str | int, sig: str, name: str | None = None) -> bool:
        """Whether a `/files` request carries an untampered signature that has not expired."""
        return self._rejection(key, expires, sig, name) is None

    def _rejection(self, key: str, expires: str | int, sig: str, name: str | None) -> str | None:
        """Why the link is refused (a message safe to show), or None when it is good."""
        expires_text = str(expires)
        if not _EXPIRES.fullmatch(expires_text) or not _SIG.fullmatch(sig):
            return "This link is invalid."
        if not hmac.compare_digest(self.sign(key, int(expires_text), name), sig):
            return "This link is invalid."
        # Checked after the signature so an attacker learns nothing from a forged expiry.
        if int(expires_text) <= time.time():
            return "This link has expired."
        return None

    @property
    def signing_secret(self) -> bytes:
        """The HMAC key of this store's links (the upload route signs and checks with it too)."""
        return self._secret

    def object_path(self, key: str) -> Path:
        """The file that holds (or will hold) `key`; call it from a worker thread."""
        return self._path(key)

    # ------------------------------------------------------------ file system (worker threads)

    def _path(self, key: str) -> Path:
        """The file holding `key`; touches the file system, so call it from a worker thread."""
        path = self.root.joinpath(*validate_key(key).split("/"))
        # Belt and braces against symlinks planted inside the root.
        if not path.resolve().is_relative_to(self.root):
            raise ValueError("blob key escapes the store root")
        return path

    def _put_sync(self, key: str, data: bytes, content_type: str, metadata: dict[str, str]) -> StoredBlob:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256(data).hexdigest()
        inode = _atomic_write(path, data)
        sidecar = {
            "content_type": content_type,
            "size": len(data),
            "sha256": digest,
            "metadata": metadata,
            # Lets a reader holding the data file open tell whether this sidecar describes it.
            "inode": inode,
            "stored_at": datetime.now(UTC).isoformat(),
        }
        _atomic_write(_meta_path(path), json.dumps(sidecar, separators=(",", ":")).encode())
        return StoredBlob(key=key, size=len(data), sha256=digest, content_type=content_type)

    def _delete_sync(self, key: str) -> None:
        path = self._path(key)
        # Data first: once it is gone the object is gone, whatever happens to the sidecar.
        for target in (path, _meta_path(path)):
            with contextlib.suppress(FileNotFoundError, IsADirectoryError, NotADirectoryError):
                target.unlink()

    def _open_for_read(self, key: str) -> _OpenBlob:
        """Open the object and pair it with the sidecar written for this very file version."""
        path = self._path(key)
        for attempt in range(3):
            try:
                handle = path.open("rb")
            except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
                raise BlobNotFound(key) from None
            stat = os.fstat(handle.fileno())
            meta = _read_meta(path)
            if meta is not None and meta.get("inode") == stat.st_ino and meta.get("size") == stat.st_size:
                return _OpenBlob(handle, stat.st_size, str(meta["content_type"]), str(meta["sha256"]))
            if attempt == 2:
                # A put is mid-flight or crashed between the two renames: describe the file itself.
                return _describe(handle, stat.st_size, path)
            handle.close()
            time.sleep(0.01)
        raise AssertionError("unreachable")


def _meta_path(path: Path) -> Path:
    return path.with_name(path.name + META_SUFFIX)


def _atomic_write(path: Path, data: bytes) -> int:
    """Write via a temp file in the same folder and rename over `path`; returns the new inode."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
            inode = os.fstat(out.fileno()).st_ino
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return inode


def _read_meta(path: Path) -> dict[str, Any] | None:
    try:
        loaded = json.loads(_meta_path(path).read_bytes())
    except (FileNotFoundError, ValueError):
        return None
    return loaded if isinstance(loaded, dict) else None


def _describe(handle: io.BufferedReader, size: int, path: Path) -> _OpenBlob:
    digest = hashlib.sha256()
    while chunk := handle.read(CHUNK_SIZE):
        digest.update(chunk)
    handle.seek(0)
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return _OpenBlob(handle, size, content_type, digest.hexdigest())


# ---------------------------------------------------------------- the /files route


class _Unsatisfiable(Exception):
    """The Range header asks only for bytes past the end of the object."""


def _parse_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The single byte range asked for as (first, last) inclusive, or None to serve it all.

    Malformed and multi-range headers are ignored (RFC 9110 lets a server do so).
    """
    if header is None or "," in header:
        return None
    match = _RANGE.fullmatch(header.strip())
    if match is None:
        return None
    first_text, last_text = match.groups()
    if not first_text:
        if not last_text:
            return None
        suffix = int(last_text)
        if suffix == 0 or size == 0:
            raise _Unsatisfiable
        return max(0, size - suffix), size - 1
    first = int(first_text)
    last = int(last_text) if last_text else size - 1
    if last_text and last < first:
        return None
    if first >= size:
        raise _Unsatisfiable
    return first, min(last, size - 1)


def _etag_matches(header: str, etag: str, *, weak: bool) -> bool:
    candidates = [part.strip() for part in header.split(",")]
    if weak:
        return "*" in candidates or etag in (c.removeprefix("W/") for c in candidates)
    return etag in candidates


def _content_disposition(name: str) -> str:
    """`inline` with a quoted ASCII filename, plus an RFC 5987 `filename*` for anything else."""
    fallback = "".join(c if " " <= c <= "~" and c not in '"\\' else "_" for c in name) or "download"
    value = f'inline; filename="{fallback}"'
    if fallback != name:
        value += f"; filename*=UTF-8''{quote(name, safe='')}"
    return value


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    merged = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff", **(headers or {})}
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=merged)


class _FileStreamResponse(StreamingResponse):
    """Streams a byte window of an open file in chunks and always closes it, even on disconnect."""

    def __init__(self, blob: _OpenBlob, start: int, length: int, status_code: int, headers: dict[str, str]):
        self._blob = blob
        super().__init__(self._chunks(start, length), status_code=status_code, headers=headers)

    async def _chunks(self, start: int, length: int) -> AsyncIterator[bytes]:
        handle = self._blob.file
        await asyncio.to_thread(handle.seek, start)
        remaining = length
        while remaining > 0:
            chunk = await asyncio.to_thread(handle.read, min(CHUNK_SIZE, remaining))
            if not chunk:
                break
            remaining -= len(chunk)
            yield chunk

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._blob.file.close()


def files_route(store: LocalBlobStore) -> Route:
    """The `GET/HEAD /files/{key}` route serving `store`'s signed URLs, with single-range support."""

    async def serve_file(request: Request) -> Response:
        key = request.path_params["key"]
        query = request.query_params
        expires, sig, name = query.get("expires"), query.get("sig"), query.get("name")
        if expires is None or sig is None:
            return _error(403, "FORBIDDEN", "This link is missing its signature.")
        try:
            validate_key(key)
        except ValueError:
            return _error(403, "FORBIDDEN", "This link is invalid.")
        refusal = store._rejection(key, expires, sig, name)
        if refusal is not None:
            return _error(403, "FORBIDDEN", refusal)

        try:
            blob = await asyncio.to_thread(store._open_for_read, key)
        except (BlobNotFound, ValueError):
            return _error(404, "NOT_FOUND", "This file no longer exists.")

        try:
            return _respond(request, blob, int(expires), name)
        except BaseException:
            blob.file.close()
            raise

    return Route("/files/{key:path}", serve_file, methods=["GET", "HEAD"], name="files")


def _respond(request: Request, blob: _OpenBlob, expires: int, name: str | None) -> Response:
    """Build the 200/206/304/416 response; the file is handed to the response or closed here."""
    etag = f'"{blob.sha256}"'
    headers = {
        "Accept-Ranges": "bytes",
        "ETag": etag,
        # Private: the URL is a bearer credential; never longer than the link itself lives.
        "Cache-Control": f"private, max-age={max(0, int(expires - time.time()))}",
        "X-Content-Type-Options": "nosniff",
    }
    if name is not None:
        headers["Content-Disposition"] = _content_disposition(name)

    if_none_match = request.headers.get("if-none-match")
    if if_none_match is not None and _etag_matches(if_none_match, etag, weak=True):
        blob.file.close()
        return Response(status_code=304, headers=headers)

    range_header = request.headers.get("range")
    if_range = request.headers.get("if-range")
    if if_range is not None and not _etag_matches(if_range, etag, weak=False):
        range_header = None  # The client's partial copy is stale: send the whole new object.
    try:
        window = _parse_range(range_header, blob.size)
    except _Unsatisfiable:
        blob.file.close()
        return _error(
            416,
            "BAD_USER_INPUT",
            "The requested range is not satisfiable.",
            {"Content-Range": f"bytes */{blob.size}", "Accept-Ranges": "bytes"},
        )

    headers["Content-Type"] = blob.content_type
    if window is None:
        status, start, length = 200, 0, blob.size
    else:
        status, start, length = 206, window[0], window[1] - window[0] + 1
        headers["Content-Range"] = f"bytes {window[0]}-{window[1]}/{blob.size}"
    headers["Content-Length"] = str(length)

    if request.method == "HEAD":
        blob.file.close()
        return Response(status_code=status, headers=headers)
    return _FileStreamResponse(blob, start, length, status, headers)
