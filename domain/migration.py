"""Importing the old REST backend's library: its per-asset JSON metadata files and their media.

Each metadata file becomes one asset document shaped exactly as the job runner makes them, owned
by the user of the record's email (created PENDING when unknown), its media copied into the
studio's private blob store. The asset id is derived from the old id, so an import can be run
again, or resumed after a crash, without duplicating anything. A bad file (invalid JSON, a
missing field, missing or unrecognisable media) is reported and skipped; it never stops the run.

This module holds the rules (reading one record leniently, validating it, shaping the asset,
deduplicating) and the run itself, over ports: the old bucket is a `LegacySource`, image and
video measurement a `MediaProbe`, both provided by `backends.legacy`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import re
from collections.abc import Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Protocol
from urllib.parse import unquote, urlsplit

from domain.assets import ASSETS, blob_key, sniff_mime
from domain.clock import to_iso
from domain.errors import StudioError
from domain.library import asset_terms
from domain.ports import BlobStore, DocStore, PreconditionFailed
from domain.users import USERS, Directory, normalise_email, user_id_for

TEXT_MIME = "text/plain; charset=utf-8"
UNKNOWN_MODEL = "unknown"


def _keys(names: str) -> tuple[str, ...]:
    return tuple(names.split())


# Accepted spellings, compared after lower-casing and dropping `_`, `-`, `.` and spaces, so
# `user_email`, `userEmail` and `User-Email` are one key. The first present (and non-empty) wins.
ID_KEYS = _keys("id assetid mediaid uuid docid")
EMAIL_KEYS = _keys("useremail email owneremail user owner createdby author")
PROMPT_KEYS = _keys("prompt textprompt userprompt inputprompt")
NEGATIVE_PROMPT_KEYS = _keys("negativeprompt")
TYPE_KEYS = _keys("type mediatype kind assettype generationtype")
MODEL_KEYS = _keys("model modelname modelid modelversion")
MEDIA_KEYS = _keys(
    "gcspath gcsuri gcsurl gspath gsuri mediapath mediauri mediaurl storagepath storageuri filepath path uri url file"
)
CREATED_KEYS = _keys("createdat createdtime created timestamp creationtime createtime date")
TEXT_KEYS = _keys("text content output result response generatedtext")
TITLE_KEYS = _keys("title")
PARAMETER_KEYS = _keys("parameters params config settings options")
TYPE_NAMES = {
    "image": "IMAGE",
    "img": "IMAGE",
    "photo": "IMAGE",
    "video": "VIDEO",
    "text": "TEXT",
    "txt": "TEXT",
}
_SPELLING = re.compile(r"[\s_.\-]")
_PUBLIC_HOSTS = ("storage.googleapis.com", "storage.cloud.google.com")


class BadRecord(Exception):
    """A metadata file that cannot be imported, and why (one line, for the report)."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class MediaMissing(Exception):
    """The media object a record points at does not exist."""


# ---------------------------------------------------------------- reading one record


@dataclass(frozen=True)
class MediaRef:
    """Where a record's media lies: `bucket` None means the bucket the metadata was read from."""

    bucket: str | None
    name: str

    def uri(self, default_bucket: str) -> str:
        return f"gs://{self.bucket or default_bucket}/{self.name}"


@dataclass(frozen=True)
class LegacyRecord:
    """One old metadata file, read and validated; `source` is the metadata object's name."""

    source: str
    legacy_id: str
    email: str
    kind: str
    prompt: str | None
    created_at: str
    model: str = UNKNOWN_MODEL
    negative_prompt: str | None = None
    title: str | None = None
    media: MediaRef | None = None
    text: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)

    @property
    def asset_id(self) -> str:
        return asset_id_for(self.legacy_id)

    def same_asset(self, other: LegacyRecord) -> bool:
        """Whether two records describe the same asset (everything but the file they came from)."""
        return self == replace(other, source=self.source)


def asset_id_for(legacy_id: str) -> str:
    """The studio's asset id for an old id: the same on every run, so imports never duplicate."""
    return "m" + hashlib.sha256(legacy_id.encode("utf-8")).hexdigest()[:20]


def parse_record(source: str, raw: bytes, *, owner_domain: str | None = None) -> LegacyRecord:
    """Read one metadata file leniently (key spellings, date formats, media path forms); BadRecord
    says what is wrong with it."""
    try:
        value = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError:
        raise BadRecord("not UTF-8 text") from None
    except json.JSONDecodeError as error:
        raise BadRecord(f"invalid JSON: {error.msg} at line {error.lineno} column {error.colno}") from None
    if not isinstance(value, dict):
        raise BadRecord(f"invalid metadata: a JSON object is expected, not {type(value).__name__}")
    fields = {_SPELLING.sub("", str(key).lower()): item for key, item in value.items()}

    missing = [
        name
        for name, keys in (("id", ID_KEYS), ("user email", EMAIL_KEYS), ("type", TYPE_KEYS))
        if _pick(fields, keys) is None
    ]
    kind = _kind(_pick(fields, TYPE_KEYS))
    media_value = _pick(fields, MEDIA_KEYS)
    text_value = _pick(fields, TEXT_KEYS) if kind == "TEXT" else None
    if media_value is None and not (kind == "TEXT" and isinstance(text_value, str)):
        missing.append("media path")
    created_value = _pick(fields, CREATED_KEYS)
    if created_value is None:
        missing.append("created time")
    if missing:
        raise BadRecord(f"missing field{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    assert kind is not None and created_value is not None

    legacy_id = _text(_pick(fields, ID_KEYS), "id")
    parameters = _pick(fields, PARAMETER_KEYS)
    return LegacyRecord(
        source=source,
        legacy_id=legacy_id,
        email=owner_email(_pick(fields, EMAIL_KEYS), owner_domain),
        kind=kind,
        prompt=_optional_text(_pick(fields, PROMPT_KEYS), "prompt"),
        created_at=parse_time(created_value),
        model=_optional_text(_pick(fields, MODEL_KEYS), "model") or UNKNOWN_MODEL,
        negative_prompt=_optional_text(_pick(fields, NEGATIVE_PROMPT_KEYS), "negative prompt"),
        title=_optional_text(_pick(fields, TITLE_KEYS), "title"),
        media=None if media_value is None else parse_media_ref(_text(media_value, "media path")),
        text=text_value if isinstance(text_value, str) else None,
        parameters=dict(parameters) if isinstance(parameters, dict) else {},
    )


def _pick(fields: Mapping[str, Any], keys: Sequence[str]) -> Any:
    for key in keys:
        value = fields.get(key)
        if value is not None and value != "":
            return value
    return None


def _text(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise BadRecord(f"invalid {name}: {value!r}")
    text = str(value).strip()
    if not text:
        raise BadRecord(f"invalid {name}: empty")
    return text


def _optional_text(value: Any, name: str) -> str | None:
    return None if value is None else _text(value, name)


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    name = str(value).strip().lower()
    if "/" in name:  # a MIME type such as image/png
        name = name.partition("/")[0]
    kind = TYPE_NAMES.get(name)
    if kind is None:
        raise BadRecord(f"invalid type {value!r}: expected one of image, video, text")
    return kind


def owner_email(value: Any, owner_domain: str | None = None) -> str:
    """The owner's address: a bare user name gets `@owner_domain`; with `owner_domain`, an address
    of another domain is refused (the old backend's users all belong to it)."""
    if isinstance(value, dict):
        value = _pick({str(k).lower(): v for k, v in value.items()}, ("email", "mail", "address"))
    text = _text(value, "user email")
    domain = owner_domain.strip().lstrip("@").lower() if owner_domain else None
    if domain and "@" not in text:
        text = f"{text}@{domain}"
    try:
        address = normalise_email(text)
    except StudioError:
        raise BadRecord(f"invalid user email: {text!r}") from None
    if domain and address.rpartition("@")[2] != domain:
        raise BadRecord(f"user email {address} is outside the owner domain {domain}")
    return address


def parse_time(value: Any) -> str:
    """A creation time as the studio stores it: ISO 8601 (naive means UTC), epoch seconds or
    milliseconds, or a {seconds, nanos} timestamp object."""
    moment: datetime
    if isinstance(value, dict):
        lowered = {str(k).lower().lstrip("_"): v for k, v in value.items()}
        seconds = lowered.get("seconds")
        if not isinstance(seconds, int | float) or isinstance(seconds, bool):
            raise BadRecord(f"invalid created time: {value!r}")
        nanos = lowered.get("nanoseconds", lowered.get("nanos", 0))
        value = float(seconds) + (float(nanos) / 1e9 if isinstance(nanos, int | float) else 0.0)
    if isinstance(value, str) and re.fullmatch(r"\d{9,13}(\.\d+)?", value.strip()):
        value = float(value)
    if isinstance(value, int | float) and not isinstance(value, bool):
        seconds = float(value) / 1000 if value > 1e11 else float(value)
        try:
            moment = datetime.fromtimestamp(seconds, UTC)
        except (OverflowError, OSError, ValueError):
            raise BadRecord(f"invalid created time: {value!r}") from None
    elif isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value.strip())
        except ValueError:
            try:  # an HTTP date, as a Last-Modified header: "Tue, 01 May 2024 10:00:00 GMT"
                moment = parsedate_to_datetime(value)
            except (TypeError, ValueError):
                raise BadRecord(f"invalid created time: {value!r}") from None
    else:
        raise BadRecord(f"invalid created time: {value!r}")
    if not 1990 <= moment.year <= 2200:
        raise BadRecord(f"invalid created time: {value!r} (year {moment.year})")
    return to_iso(moment)


def parse_media_ref(value: str) -> MediaRef:
    """`gs://bucket/path`, a storage.googleapis.com URL, or a path in the metadata's own bucket."""
    text = value.strip()
    if text.startswith("gs://"):
        bucket, _, name = text[5:].partition("/")
        if not bucket or not name:
            raise BadRecord(f"invalid media path {value!r}: expected gs://bucket/object")
        return MediaRef(bucket, name)
    if "://" in text:
        parts = urlsplit(text)
        host = (parts.hostname or "").lower()
        path = unquote(parts.path).lstrip("/")
        if host in _PUBLIC_HOSTS:
            bucket, _, name = path.partition("/")
        elif host.endswith(".storage.googleapis.com"):
            bucket, name = host.removesuffix(".storage.googleapis.com"), path
        else:
            raise BadRecord(f"media is not in Cloud Storage: {value!r}")
        if not bucket or not name:
            raise BadRecord(f"invalid media path {value!r}")
        return MediaRef(bucket, name)
    name = text.lstrip("/")
    if not name:
        raise BadRecord(f"invalid media path {value!r}")
    return MediaRef(None, name)


def parse_bucket_url(url: str, prefix: str | None = None) -> tuple[str, str]:
    """`gs://bucket[/prefix]` or a bare bucket name, and the prefix: (bucket, prefix)."""
    text = url.strip().removeprefix("gs://")
    bucket, _, path = text.partition("/")
    if not bucket or not re.fullmatch(r"[a-z0-9][a-z0-9._-]{1,220}[a-z0-9]", bucket):
        raise BadRecord(f"not a bucket: {url!r}")
    if path and prefix:
        raise BadRecord("give the prefix either in the bucket URL or with --prefix, not both")
    return bucket, (prefix if prefix is not None else path)


# ---------------------------------------------------------------- media


@dataclass(frozen=True)
class MediaShape:
    """What a probe measured: pixel size, and a video's duration; None where unknown."""

    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None


class MediaProbe(Protocol):
    """Measures image or video bytes of a known type; raises ValueError when they cannot be read."""

    def __call__(self, data: bytes, mime_type: str) -> MediaShape: ...


@dataclass(frozen=True)
class MediaFacts:
    """The stored media: its type, size and digest, and what the probe measured."""

    mime_type: str
    size: int
    sha256: str
    shape: MediaShape = MediaShape()
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
