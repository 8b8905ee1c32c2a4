"""Uploads: a person's own image or video entering the library in two steps.

`create` checks what the client declares (type, size, file name, team) and hands out a signed,
expiring, size-capped upload target for a staging object; the ticket lives in `uploads/{asset id}`,
and no asset document exists yet, so nothing of it shows in `asset`, `node` or any listing.
`complete` then checks what really arrived — size, the type sniffed from the bytes, that the media
decodes — computes its SHA-256 and dimensions, copies it to the asset's own key and creates the
asset. Refusals delete the staging object and mark the ticket FAILED; `sweep` removes tickets (and
their staging objects) once they expire, so an abandoned upload leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn

from domain.access import Actor, require_active, require_generate
from domain.assets import ASSETS, MAX_TITLE_CHARS, blob_key, sniff_mime
from domain.clock import from_iso, new_id, now_iso, to_iso, utcnow
from domain.errors import bad_input, forbidden, not_found
from domain.library import asset_terms
from domain.media import MediaProbe
from domain.ports import BlobNotFound, BlobStore, DocStore, Document, Filter, Query, Transaction, UploadTarget
from domain.rounds import in_rounds
from domain.tagging import Tagger, tag_fields

log = logging.getLogger("genmedia.uploads")

UPLOADS = "uploads"
UPLOAD_MODEL = "upload"
KIND_OF_TYPE = {"image/png": "IMAGE", "image/jpeg": "IMAGE", "image/webp": "IMAGE", "video/mp4": "VIDEO"}
SNIFF_BYTES = 64
EDITING_ROLES = ("OWNER", "EDITOR")
_FORBIDDEN_IN_NAMES = set("/\\") | {chr(code) for code in range(32)} | {"\x7f"}


@dataclass(frozen=True)
class UploadLimits:
    """Largest upload per kind, and how long a ticket (and its upload link) stays valid."""

    max_image_bytes: int = 20 * 1024 * 1024
    max_video_bytes: int = 100 * 1024 * 1024
    ttl_seconds: int = 3600

    def cap(self, kind: str) -> int:
        return self.max_video_bytes if kind == "VIDEO" else self.max_image_bytes


@dataclass(frozen=True)
class UploadTicket:
    """A created upload: the asset-to-be as its uploader sees it, and where to send the bytes."""

    asset: Document
    target: UploadTarget
    max_bytes: int


class Uploads:
    """Creates upload tickets, completes them into assets, and sweeps the abandoned ones."""

    def __init__(
        self,
        docs: DocStore,
        blobs: BlobStore,
        probe: MediaProbe,
        limits: UploadLimits = UploadLimits(),
        tagger: Tagger | None = None,
        embed_asset: Callable[[dict[str, Any]], Awaitable[str | None]] | None = None,
    ) -> None:
        self._tagger = tagger or Tagger.off()  # best-effort tags (colours) for what is uploaded
        self._embed_asset = embed_asset  # a text embedding of its title and tags, as generated assets get
        self._docs = docs
        self._blobs = blobs
        self._probe = probe
        self._limits = limits

    async def create(
        self, actor: Actor | None, filename: str, mime_type: str, size: int, team_id: str | None = None
    ) -> UploadTicket:
        """Check the declaration, record the ticket, and sign a target for at most `size` bytes."""
        who = require_generate(actor)
        name = _checked_filename(filename)
        declared = mime_type.strip().lower()
        kind = KIND_OF_TYPE.get(declared)
        if kind is None:
            raise bad_input(
                "mimeType", "Only image/png, image/jpeg, image/webp and video/mp4 can be uploaded."
            )
        cap = self._limits.cap(kind)
        if isinstance(size, bool) or not isinstance(size, int) or not 0 < size <= cap:
            raise bad_input("bytes", f"bytes must be between 1 and {cap} for a {kind.lower()}.")
        if team_id is not None:
            role = who.team_role(team_id)
            if role is None:
                raise not_found("team", team_id)
            if role not in EDITING_ROLES:
                raise forbidden("Team viewers cannot add media to the team.")
        await self._sweep_quietly()
        asset_id = new_id()
        now = utcnow()
        expires = now + timedelta(seconds=self._limits.ttl_seconds)
        # Under tmp/: the bucket's lifecycle deletes whatever a client sends after completion.
        staging = "tmp/uploads/" + blob_key(asset_id, declared).removeprefix("assets/")
        target = await self._blobs.upload_url(
            staging, content_type=declared, max_bytes=size, expires_in=expires - now
        )
        ticket = {
            "owner_id": who.id,
            "team_id": team_id,
            "filename": name,
            "mime_type": declared,
            "kind": kind,
            "declared_bytes": size,
            "staging_key": staging,
            "status": "PENDING",
            "error": None,
            "created_at": to_iso(now),
            "expires_at": to_iso(target.expires_at),
        }
        await self._docs.create(UPLOADS, asset_id, ticket)
        pending = Document(asset_id, _asset_fields(ticket, blob=staging, size=size), "")
        return UploadTicket(pending, target, size)

    async def complete(self, actor: Actor | None, asset_id: str) -> Document:
        """Check the uploaded bytes and make the asset visible; the same asset when called again."""
        who = require_active(actor)
        ticket = await self._docs.get(UPLOADS, asset_id)
        if ticket is None:  # never started, or completed and its ticket since swept
            return await self._completed(who, asset_id)
        if ticket.data.get("owner_id") != who.id:
            raise not_found("upload", asset_id)
        data = ticket.data
        if data["status"] == "COMPLETED":
            return await self._completed(who, asset_id)
        if data["status"] == "FAILED":
            error = data.get("error") or {}
            raise bad_input(
                str(error.get("field", "assetId")), str(error.get("message", "This upload failed."))
            )
        if from_iso(data["expires_at"]) <= utcnow():
            await self._refuse(ticket, "assetId", "This upload expired; start again with createUpload.")
        staging, mime = data["staging_key"], data["mime_type"]
        try:
            stat = await self._blobs.stat(staging)
            await self._check_size(ticket, stat.size)
            await self._check_type(ticket, await self._blobs.read_prefix(staging, SNIFF_BYTES))
            content = await self._blobs.get(staging)
        except BlobNotFound:
            # Never sent, or a concurrent completion just published it and removed the staging copy.
            current = await self._docs.get(UPLOADS, asset_id)
            if current is None or current.data.get("status") == "COMPLETED":
                return await self._completed(who, asset_id)
            raise bad_input(
                "assetId", "Nothing was uploaded yet: send the file to the uploadUrl first."
            ) from None
        # The object may have been replaced since it was measured: what is kept is what is checked.
        await self._check_size(ticket, len(content))
        await self._check_type(ticket, content[:SNIFF_BYTES])
        try:
            shape = await asyncio.to_thread(self._probe, content, mime)
        except ValueError:
            what = "image" if data["kind"] == "IMAGE" else "MP4 video"
            await self._refuse(
                ticket, "file", f"The file is not a readable {what}: it is truncated or corrupt."
            )
        digest = hashlib.sha256(content).hexdigest()
        key = _asset_key(asset_id, mime, digest)
        await self._blobs.put(key, content, mime, {"upload": asset_id})
        asset = _asset_fields(data, blob=key, size=len(content))
        asset.update(
            width=shape.width,
            height=shape.height,
            duration_seconds=shape.duration_seconds,
            content_sha256=digest,
            created_at=now_iso(),
            updated_at=now_iso(),
        )
        asset |= tag_fields(await self._tagger.tags_for(content, mime, None), asset)
        asset["search_terms"] = asset_terms(asset)
        if self._embed_asset is not None:
            asset["embedding"] = await self._embed_asset(asset)

        async def publish(tx: Transaction) -> str | None:
            current = await tx.get(UPLOADS, asset_id)
            status = current.data.get("status") if current else None
            if status == "PENDING":
                tx.update(UPLOADS, asset_id, {"status": "COMPLETED", "completed_at": now_iso()})
                tx.set(ASSETS, asset_id, asset)
            return status

        status = await self._docs.run_transaction(publish)
        if status == "COMPLETED":  # a concurrent completion won: keep its copy, not this one
            winner = await self._completed(who, asset_id)
            if winner.data.get("blob_key") != key:
                await self._blobs.delete(key)
            return winner
        if status != "PENDING":
            await self._blobs.delete(key)
            raise not_found("upload", asset_id)
        await self._blobs.delete(staging)
        return await self._completed(who, asset_id)

    async def keep_swept(self, every_seconds: float = 300.0) -> None:
        """Sweep abandoned uploads now and then, for as long as the worker runs (every worker process
        does it; sweeps running at once are harmless)."""
        await in_rounds(self.sweep, every_seconds, "the sweep of abandoned uploads")

    async def sweep(self, *, now: datetime | None = None, limit: int = 100) -> int:
        """Remove up to `limit` expired tickets with their staging objects; how many went."""
        moment = to_iso(now or utcnow())
        expired = await self._docs.query(Query(UPLOADS, (Filter("expires_at", "<", moment),), limit=limit))
        for doc in expired:
            # The staging object first: a ticket is only forgotten once its bytes are gone.
            await self._blobs.delete(doc.data["staging_key"])

            async def forget(tx: Transaction, upload_id: str = doc.id) -> None:
                current = await tx.get(UPLOADS, upload_id)
                if current is not None and current.data["expires_at"] < moment:
                    tx.delete(UPLOADS, upload_id)

            await self._docs.run_transaction(forget)
        return len(expired)

    # ------------------------------------------------------------ checks

    async def _check_size(self, ticket: Document, size: int) -> None:
        declared = int(ticket.data["declared_bytes"])
        if size == 0:
            await self._refuse(ticket, "bytes", "The uploaded file is empty.")
        if size > declared:
            await self._refuse(
                ticket, "bytes", f"The uploaded file has {size} bytes, more than the {declared} declared."
            )

    async def _check_type(self, ticket: Document, head: bytes) -> None:
        declared = ticket.data["mime_type"]
        sniffed = sniff_mime(head)
        if sniffed is None:
            await self._refuse(ticket, "mimeType", "The uploaded file is not a PNG, JPEG, WebP or MP4 file.")
        if sniffed != declared:
            await self._refuse(
                ticket, "mimeType", f"The upload was declared {declared}, but the file is {sniffed}."
            )

    async def _refuse(self, ticket: Document, field: str, message: str) -> NoReturn:
        """Keep nothing of a refused upload, remember why, and raise BAD_USER_INPUT naming `field`."""
        await self._blobs.delete(ticket.data["staging_key"])

        async def fail(tx: Transaction) -> None:
            current = await tx.get(UPLOADS, ticket.id)
            if current is not None and current.data.get("status") == "PENDING":
                tx.update(
                    UPLOADS, ticket.id, {"status": "FAILED", "error": {"field": field, "message": message}}
                )

        await self._docs.run_transaction(fail)
        raise bad_input(field, message)

    async def _completed(self, who: Actor, asset_id: str) -> Document:
        doc = await self._docs.get(ASSETS, asset_id)
        if (
            doc is None
            or doc.data.get("owner_id") != who.id
            or doc.data.get("model") != UPLOAD_MODEL
            or doc.data.get("deleted_at")
        ):
            raise not_found("upload", asset_id)
        return doc

    async def _sweep_quietly(self) -> None:
        """Abandoned uploads are swept lazily, as new ones start; a failed sweep blocks nothing."""
        try:
            await self.sweep(limit=20)
        except Exception:
            log.warning("sweeping expired uploads failed", exc_info=True)


def _checked_filename(filename: str) -> str:
    name = filename.strip()
    if not name or len(name) > MAX_TITLE_CHARS:
        raise bad_input("filename", f"filename must be 1 to {MAX_TITLE_CHARS} characters long.")
    if name in (".", "..") or _FORBIDDEN_IN_NAMES & set(name):
        raise bad_input(
            "filename", "filename must be a bare name: no folders, slashes or control characters."
        )
    return name


def _asset_key(asset_id: str, mime_type: str, digest: str) -> str:
    """The asset's own object, named by its content too: two racing completions never share one."""
    stem, _, extension = blob_key(asset_id, mime_type).rpartition(".")
    return f"{stem}-{digest[:16]}.{extension}"


def _asset_fields(ticket: dict[str, Any], *, blob: str, size: int) -> dict[str, Any]:
    """The asset document of an upload; what `complete` measures is filled in afterwards."""
    owner, team = ticket["owner_id"], ticket.get("team_id")
    return {
        "kind": ticket["kind"],
        "title": ticket["filename"],
        "prompt": None,
        "negative_prompt": None,
        "model": UPLOAD_MODEL,
        "parameters": {},
        "mime_type": ticket["mime_type"],
        "bytes": size,
        "width": None,
        "height": None,
        "duration_seconds": None,
        "text": None,
        "blob_key": blob,
        "content_sha256": "",
        "owner_id": owner,
        "team_id": team,
        "tags": [],
        "auto_tags": [],
        "favorited_by": [],
        "job_id": None,
        "parent_id": None,
        "cost_usd": 0.0,
        "created_at": ticket["created_at"],
        "updated_at": ticket["created_at"],
        "deleted": False,
        "deleted_at": None,
        "readers": [f"user:{owner}", *([f"team:{team}"] if team else [])],
    }
