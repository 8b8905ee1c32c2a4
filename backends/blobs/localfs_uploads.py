"""Uploads into the local BlobStore: HMAC-signed, expiring, size-capped `PUT /files/...` URLs.

A signature covers the key, the expiry, the byte cap and the content type, so none of them can be
changed without the link failing. The route streams the body to a temporary file in the object's
folder, counting bytes: one byte past the cap and the upload is refused with 413 and the temporary
file removed, so nothing is kept. A complete body replaces the object atomically, with its sidecar.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import os
import re
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import IO
from urllib.parse import quote, urlencode

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from backends.blobs.localfs import MAX_EXPIRES_IN, LocalBlobStore, _atomic_write, _meta_path, validate_key
from domain.ports import UploadTarget

_SIG = re.compile(r"[0-9a-f]{64}")
_DIGITS = re.compile(r"[0-9]{1,15}")
# Read and dropped after a refusal, so the client reads the 413 instead of a reset connection.
DRAIN_BYTES = 1 << 20
DRAIN_SECONDS = 2.0


def upload_signature(store: LocalBlobStore, key: str, expires: int, max_bytes: int, content_type: str) -> str:
    """Hex HMAC-SHA256 of a PUT link; its own prefix, so no GET signature can pass as one."""
    message = f"v1-put\n{key}\n{expires}\n{max_bytes}\n{content_type}"
    return hmac.new(store.signing_secret, message.encode("utf-8"), hashlib.sha256).hexdigest()


def upload_target(
    store: LocalBlobStore, key: str, *, content_type: str, max_bytes: int, expires_in: timedelta
) -> UploadTarget:
    """A `PUT /files/{key}` link accepting at most `max_bytes` of `content_type` for `expires_in`."""
    validate_key(key)
    if not content_type or not content_type.isascii() or not content_type.isprintable():
        raise ValueError("content type must be a non-empty printable ASCII string")
    if isinstance(max_bytes, bool) or not isinstance(max_bytes, int) or max_bytes < 0:
        raise ValueError("max_bytes must be a non-negative integer")
    if not timedelta(seconds=1) <= expires_in <= MAX_EXPIRES_IN:
        raise ValueError("expires_in must be between 1 second and 7 days")
    expires = math.ceil(time.time() + expires_in.total_seconds())
    params = {
        "expires": str(expires),
        "max": str(max_bytes),
        "type": content_type,
        "sig": upload_signature(store, key, expires, max_bytes, content_type),
    }
    url = f"{store.base_url}/files/{quote(key, safe='/')}?{urlencode(params, quote_via=quote)}"
    return UploadTarget(
        url=url,
        method="PUT",
        headers={"Content-Type": content_type},
        expires_at=datetime.fromtimestamp(expires, UTC),
    )


def _refusal(store: LocalBlobStore, key: str, request: Request) -> tuple[int, str] | None:
    """(status, message) when the PUT may not proceed, None when its link is good."""
    query = request.query_params
    expires, max_text, content_type, sig = (query.get(name) for name in ("expires", "max", "type", "sig"))
    if expires is None or max_text is None or content_type is None or sig is None:
        return 403, "This upload link is missing its signature."
    try:
        validate_key(key)
    except ValueError:
        return 403, "This upload link is invalid."
    if not _DIGITS.fullmatch(expires) or not _DIGITS.fullmatch(max_text) or not _SIG.fullmatch(sig):
        return 403, "This upload link is invalid."
    expected = upload_signature(store, key, int(expires), int(max_text), content_type)
    if not hmac.compare_digest(expected, sig):
        return 403, "This upload link is invalid."
    # After the signature, so a forged expiry teaches nothing.
    if int(expires) <= time.time():
        return 403, "This upload link has expired."
    sent_type = request.headers.get("content-type", "")
    if sent_type.split(";")[0].strip().lower() != content_type.lower():
        return 403, f"This upload link is for Content-Type {content_type}."
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > int(max_text):
        return 413, f"The upload is larger than the {max_text} bytes this link allows."
    return None


def _error(status: int, message: str) -> JSONResponse:
    code = "PAYLOAD_TOO_LARGE" if status == 413 else "FORBIDDEN"
    headers = {"Cache-Control": "no-store", "Connection": "close"}
    return JSONResponse({"error": {"code": code, "message": message}}, status_code=status, headers=headers)


async def _drain(request: Request) -> None:
    """Read and drop what is left of the body, within bounds."""
    dropped = 0
    with contextlib.suppress(TimeoutError, ClientDisconnect):
        async with asyncio.timeout(DRAIN_SECONDS):
            async for chunk in request.stream():
                dropped += len(chunk)
                if dropped > DRAIN_BYTES:
                    return


def _open_temp(folder: Path) -> tuple[IO[bytes], str]:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".", suffix=".upload")
    return os.fdopen(fd, "wb"), tmp


def _commit(path: Path, handle: IO[bytes], tmp: str, size: int, digest: str, content_type: str) -> None:
    """Make the temporary file the object, then write its sidecar (as `LocalBlobStore.put` does)."""
    handle.flush()
    os.fsync(handle.fileno())
    inode = os.fstat(handle.fileno()).st_ino
    handle.close()
    os.replace(tmp, path)
    sidecar = {
        "content_type": content_type,
        "size": size,
        "sha256": digest,
        "metadata": {"uploaded": "true"},
        "inode": inode,
        "stored_at": datetime.now(UTC).isoformat(),
    }
    _atomic_write(_meta_path(path), json.dumps(sidecar, separators=(",", ":")).encode())


def _discard(handle: IO[bytes], tmp: str) -> None:
    handle.close()
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)


def upload_route(store: LocalBlobStore) -> Route:
    """The `PUT /files/{key}` route storing uploads sent to `store`'s signed upload links."""

    async def receive_upload(request: Request) -> Response:
        key = request.path_params["key"]
        refusal = _refusal(store, key, request)
        if refusal is not None:
            await _drain(request)
            return _error(*refusal)
        limit = int(request.query_params["max"])
        content_type = request.query_params["type"]
        path = await asyncio.to_thread(store.object_path, key)
        handle, tmp = await asyncio.to_thread(_open_temp, path.parent)
        digest, size = hashlib.sha256(), 0
        try:
            async for chunk in request.stream():
                size += len(chunk)
                if size > limit:
                    await asyncio.to_thread(_discard, handle, tmp)
                    await _drain(request)
                    return _error(413, f"The upload is larger than the {limit} bytes this link allows.")
                digest.update(chunk)
                await asyncio.to_thread(handle.write, chunk)
            await asyncio.to_thread(_commit, path, handle, tmp, size, digest.hexdigest(), content_type)
        except ClientDisconnect:
            await asyncio.to_thread(_discard, handle, tmp)
            return Response(status_code=400)
        except BaseException:
            # A client that went away mid-body (or a cancelled task) keeps nothing either.
            await asyncio.shield(asyncio.to_thread(_discard, handle, tmp))
            raise
        return JSONResponse({"key": key, "size": size, "sha256": digest.hexdigest()}, status_code=201)

    return Route("/files/{key:path}", receive_upload, methods=["PUT"], name="files-upload")
