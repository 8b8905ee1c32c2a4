"""Importing the old REST backend's library: its per-asset JSON metadata files and their media.

Each metadata file becomes one asset document shaped exactly as the job runner makes them, owned
by the user of the record's email (created PENDING when unknown), its media copied into the
studio's private blob store. The asset id is derived from the old id, so an import can be run
again, or resumed after a crash, without duplicating anything. A bad file (invalid JSON, a
missing field, missing or unrecognisable media) is reported and skipped; it never stops the run.

This module shapes the asset, deduplicates and runs the import; reading one record leniently is
domain.legacy_records. It works over ports: the old bucket is a `LegacySource`, image and video
measurement a `MediaProbe` (domain.media), both provided by `backends.legacy`.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Awaitable, Iterable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from domain.assets import ASSETS, blob_key, sniff_mime
from domain.legacy_records import (
    TEXT_MIME,
    BadRecord,
    LegacyRecord,
    MediaMissing,
    MediaRef,
    parse_record,
)
from domain.library import asset_terms
from domain.media import MediaProbe, MediaShape
from domain.ports import BlobStore, DocStore, PreconditionFailed
from domain.users import USERS, Directory, user_id_for


@dataclass(frozen=True)
class MediaFacts:
    """The stored media: its type, size and digest, and what the probe measured."""

    mime_type: str
    size: int
    sha256: str
    shape: MediaShape = field(default_factory=MediaShape)
    text: str | None = None


def media_facts(record: LegacyRecord, data: bytes, probe: MediaProbe) -> MediaFacts:
    """Check the bytes are what the record says they are, and describe them."""
    digest = hashlib.sha256(data).hexdigest()
    if record.kind == "TEXT":
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise BadRecord("the record says text, but the media is not UTF-8 text") from None
        if "\x00" in text:
            raise BadRecord("the record says text, but the media is binary")
        return MediaFacts(TEXT_MIME, len(data), digest, text=text)
    if not data:
        raise BadRecord("the media object is empty")
    mime = sniff_mime(data)
    if mime is None:
        raise BadRecord(f"unrecognised media format (not PNG, JPEG, WebP or MP4) for a {record.kind.lower()}")
    if mime.partition("/")[0].upper() != record.kind:
        raise BadRecord(f"the record says {record.kind.lower()}, but the media is {mime}")
    try:
        shape = probe(data, mime)
    except ValueError as error:
        raise BadRecord(f"the {mime} media cannot be read: {error}") from None
    return MediaFacts(mime, len(data), digest, shape)


# ---------------------------------------------------------------- the asset


@dataclass(frozen=True)
class PlannedAsset:
    """An asset document ready to write, with the blob it needs."""

    asset_id: str
    key: str
    data: dict[str, Any]


def plan_asset(record: LegacyRecord, facts: MediaFacts, *, owner_id: str, source_uri: str) -> PlannedAsset:
    """The asset document, field for field as `JobRunner._succeed` writes one, for an imported record.

    No job, parent, team or cost; created and updated at the old creation time. `parameters` keeps
    the old record's parameters and where it came from.
    """
    asset_id = record.asset_id
    key = blob_key(asset_id, facts.mime_type)
    parameters: dict[str, Any] = {
        **dict(record.parameters),
        "prompt": record.prompt,
        "legacyId": record.legacy_id,
        "legacySource": source_uri,
    }
    if record.negative_prompt is not None:
        parameters["negativePrompt"] = record.negative_prompt
    asset: dict[str, Any] = {
        "kind": record.kind,
        "title": record.title,
        "prompt": record.prompt,
        "negative_prompt": record.negative_prompt,
        "model": record.model,
        "parameters": parameters,
        "mime_type": facts.mime_type,
        "bytes": facts.size,
        "width": facts.shape.width,
        "height": facts.shape.height,
        "duration_seconds": facts.shape.duration_seconds,
        "text": facts.text,
        "blob_key": key,
        "content_sha256": facts.sha256,
        "owner_id": owner_id,
        "team_id": None,
        "tags": [],
        "auto_tags": [],  # the migration makes no model calls: nothing is suggested
        "favorited_by": [],
        "job_id": None,
        "parent_id": None,
        "parent_ids": [],
        "cost_usd": 0.0,
        "created_at": record.created_at,
        "updated_at": record.created_at,
        "deleted": False,
        "deleted_at": None,
        "readers": [f"user:{owner_id}"],
    }
    asset["search_terms"] = asset_terms(asset)
    return PlannedAsset(asset_id, key, asset)


# ---------------------------------------------------------------- deduplication


class Dedup:
    """Within one run, the first file (in name order) with an old id wins; a later one is skipped
    when it says the same thing, refused when it says something else."""

    def __init__(self) -> None:
        self._seen: dict[str, LegacyRecord] = {}

    def check(self, record: LegacyRecord) -> tuple[Outcome, str] | None:
        """None if the record is the first of its id; else the outcome and reason to report."""
        first = self._seen.setdefault(record.legacy_id, record)
        if first is record:
            return None
        if first.same_asset(record):
            return Outcome.SKIPPED, f"duplicate of {first.source} (same id {record.legacy_id!r})"
        return Outcome.FAILED, f"id {record.legacy_id!r} is also used by {first.source}, with other content"


# ---------------------------------------------------------------- the run


class Outcome(StrEnum):
    IMPORTED = "imported"
    SKIPPED = "skipped"
    FAILED = "failed"


@dataclass(frozen=True)
class FileResult:
    """What happened to one metadata file."""

    source: str
    outcome: Outcome
    reason: str | None = None
    asset_id: str | None = None
    kind: str | None = None
    owner: str | None = None
    size: int | None = None


@dataclass
class MigrationReport:
    """Every file's result, in name order, and the users the run created (or would create)."""

    dry_run: bool
    results: list[FileResult] = field(default_factory=list)
    new_users: set[str] = field(default_factory=set)
    ignored: int = 0

    def count(self, outcome: Outcome) -> int:
        return sum(1 for result in self.results if result.outcome is outcome)

    @property
    def failed(self) -> int:
        return self.count(Outcome.FAILED)

    def summary(self) -> str:
        imported, skipped = self.count(Outcome.IMPORTED), self.count(Outcome.SKIPPED)
        files = f"{len(self.results)} metadata file{'' if len(self.results) == 1 else 's'}"
        extra = f", {self.ignored} other objects ignored" if self.ignored else ""
        if self.dry_run:
            return (
                f"dry run, nothing written: would import {imported}, skipped {skipped}, failed {self.failed} "
                f"({files}{extra}; would create {len(self.new_users)} users)"
            )
        return (
            f"imported {imported}, skipped {skipped}, failed {self.failed} "
            f"({files}{extra}; created {len(self.new_users)} users)"
        )


class LegacySource(Protocol):
    """The old backend's bucket, read only."""

    @property
    def bucket(self) -> str:
        """The bucket the metadata is read from (and media paths without a bucket refer to)."""
        ...

    async def list_names(self, prefix: str) -> list[str]:
        """Every object name under the prefix."""
        ...

    async def read(self, ref: MediaRef) -> bytes:
        """An object's bytes; MediaMissing if it does not exist."""
        ...


def is_metadata(name: str) -> bool:
    return name.lower().endswith(".json")


class Migrator:
    """Imports an old bucket's metadata files into the studio; safe to run again and again."""

    def __init__(
        self,
        docs: DocStore,
        blobs: BlobStore,
        directory: Directory,
        source: LegacySource,
        probe: MediaProbe,
        *,
        owner_domain: str | None = None,
        dry_run: bool = False,
        concurrency: int = 4,
    ) -> None:
        self._docs = docs
        self._blobs = blobs
        self._directory = directory
        self._source = source
        self._probe = probe
        self._owner_domain = owner_domain
        self._dry_run = dry_run
        self._gate = asyncio.Semaphore(max(1, concurrency))
        self._owners: dict[str, str] = {}
        self._owners_lock = asyncio.Lock()

    async def run(self, prefix: str) -> MigrationReport:
        """Import every `*.json` under the prefix; the report lists each file, in name order."""
        report = MigrationReport(dry_run=self._dry_run)
        names = sorted(await self._source.list_names(prefix))
        metadata = [name for name in names if is_metadata(name)]
        report.ignored = len(names) - len(metadata)
        parsed = await asyncio.gather(*(self._parse(name) for name in metadata))

        dedup = Dedup()
        work: list[Awaitable[FileResult]] = []
        for item in parsed:
            if isinstance(item, FileResult):
                work.append(_ready(item))
                continue
            repeated = dedup.check(item)
            if repeated is not None:
                outcome, reason = repeated
                work.append(_ready(_result(item, outcome, reason)))
                continue
            work.append(self._import(item, report))
        report.results.extend(await asyncio.gather(*work))
        return report

    async def _parse(self, name: str) -> LegacyRecord | FileResult:
        async with self._gate:
            try:
                raw = await self._source.read(MediaRef(None, name))
                return parse_record(name, raw, owner_domain=self._owner_domain)
            except BadRecord as error:
                return FileResult(name, Outcome.FAILED, error.reason)
            except MediaMissing:
                return FileResult(name, Outcome.FAILED, "the metadata file vanished while reading")
            except Exception as error:  # one unreadable file never stops the run
                return FileResult(name, Outcome.FAILED, f"cannot read: {_describe(error)}")

    async def _import(self, record: LegacyRecord, report: MigrationReport) -> FileResult:
        async with self._gate:
            try:
                return await self._import_one(record, report)
            except BadRecord as error:
                return _result(record, Outcome.FAILED, error.reason)
            except Exception as error:  # a store hiccup fails this file, not the run
                return _result(record, Outcome.FAILED, f"import failed: {_describe(error)}")

    async def _import_one(self, record: LegacyRecord, report: MigrationReport) -> FileResult:
        existing = await self._docs.get(ASSETS, record.asset_id)
        if existing is not None:
            return _result(record, Outcome.SKIPPED, f"already imported as asset {record.asset_id}")
        source_uri = (
            record.media.uri(self._source.bucket) if record.media else f"{record.source} (inline text)"
        )
        if record.media is not None:
            try:
                data = await self._source.read(record.media)
            except MediaMissing:
                if record.text is None:
                    raise BadRecord(f"media not found: {source_uri}") from None
                data, source_uri = record.text.encode("utf-8"), f"{record.source} (inline text)"
        else:
            data = record.text.encode("utf-8") if record.text is not None else b""
        facts = media_facts(record, data, self._probe)
        owner_id = await self._owner(record.email, report)
        planned = plan_asset(record, facts, owner_id=owner_id, source_uri=source_uri)
        if not self._dry_run:
            await self._write(planned, data, record, source_uri)
        return FileResult(
            record.source,
            Outcome.IMPORTED,
            asset_id=planned.asset_id,
            kind=record.kind,
            owner=record.email,
            size=facts.size,
        )

    async def _write(self, planned: PlannedAsset, data: bytes, record: LegacyRecord, source_uri: str) -> None:
        """Blob first, then the document: a crash in between leaves a blob the next run rewrites."""
        metadata = {"legacy_id": record.legacy_id, "legacy_source": source_uri}
        await self._blobs.put(planned.key, data, planned.data["mime_type"], metadata)
        try:
            await self._docs.create(ASSETS, planned.asset_id, planned.data)
        except PreconditionFailed:
            raise BadRecord(f"asset {planned.asset_id} appeared during the import (another run?)") from None

    async def _owner(self, email: str, report: MigrationReport) -> str:
        """The owner's user id, creating the user (PENDING) once per address, never in a dry run."""
        async with self._owners_lock:
            user_id = self._owners.get(email)
            if user_id is None:
                user_id = user_id_for(email)
                if await self._docs.get(USERS, user_id) is None:
                    report.new_users.add(email)
                    if not self._dry_run:
                        user_id = (await self._directory.sign_in(email)).id
                self._owners[email] = user_id
            return user_id


async def _ready(result: FileResult) -> FileResult:
    return result


def _result(record: LegacyRecord, outcome: Outcome, reason: str) -> FileResult:
    return FileResult(
        record.source, outcome, reason, asset_id=record.asset_id, kind=record.kind, owner=record.email
    )


def _describe(error: BaseException) -> str:
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}"[:300] if text else type(error).__name__


def report_lines(report: MigrationReport, *, verbose: bool = False) -> Iterable[str]:
    """The per-file report (failed files always; the others when verbose) and the summary line."""
    for result in report.results:
        if result.outcome is Outcome.FAILED or verbose:
            yield format_result(result, dry_run=report.dry_run)
    yield report.summary()


def format_result(result: FileResult, *, dry_run: bool = False) -> str:
    if result.outcome is Outcome.IMPORTED:
        verb = "would import" if dry_run else "imported"
        return (
            f"{verb} {result.source}: asset {result.asset_id} ({result.kind}, {result.size} bytes, "
            f"owner {result.owner})"
        )
    return f"{result.outcome.value} {result.source}: {result.reason}"
