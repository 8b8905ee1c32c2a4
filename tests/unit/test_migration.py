"""Importing the old backend's metadata: reading records leniently, shaping assets, running it twice."""

from __future__ import annotations

import io
import json
import struct
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from backends.blobs.localfs import LocalBlobStore
from backends.docstore.sqlite import SqliteDocStore
from backends.generators.local import LocalGenerator
from backends.legacy import probe_media
from backends.queue.docstore import DocstoreQueue
from config import Settings
from domain.access import Actor
from domain.assets import ASSETS, blob_key, sniff_mime
from domain.desk import JobDesk
from domain.jobs import JobKind
from domain.legacy_records import (
    TEXT_MIME,
    BadRecord,
    LegacyRecord,
    MediaMissing,
    MediaRef,
    asset_id_for,
    owner_email,
    parse_bucket_url,
    parse_media_ref,
    parse_record,
    parse_time,
)
from domain.media import MediaShape
from domain.migration import Dedup, Migrator, Outcome, media_facts, plan_asset, report_lines
from domain.ports import Query
from domain.runner import JobRunner
from domain.users import USERS, Directory, Role, UserStatus, user_id_for
from wiring import build_catalog


def png(width: int = 32, height: int = 24) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (200, 40, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def jpeg(width: int = 40, height: int = 30) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 90, 200)).save(buffer, "JPEG")
    return buffer.getvalue()


def webp(width: int = 20, height: int = 10) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), (10, 200, 90)).save(buffer, "WEBP")
    return buffer.getvalue()


def box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def mp4(width: int = 320, height: int = 180, seconds: int = 6) -> bytes:
    """The smallest MP4 the probe reads: ftyp, and moov with mvhd and a video track's tkhd."""
    mvhd = bytes(12) + struct.pack(">II", 1000, seconds * 1000) + bytes(80)
    tkhd = bytes(76) + struct.pack(">II", width << 16, height << 16)
    moov = box(b"moov", box(b"mvhd", mvhd) + box(b"trak", box(b"tkhd", tkhd)))
    return box(b"ftyp", b"isom\x00\x00\x02\x00isomiso2mp41") + moov + box(b"mdat", b"\x00" * 64)


def record(**values: Any) -> bytes:
    base = {
        "id": "abc-123",
        "user_email": "Alice@Example.com",
        "prompt": "a red fox in fresh snow",
        "type": "image",
        "model": "imagen-3.0-generate-002",
        "gcs_path": "gs://old-bucket/media/abc-123.png",
        "created_at": "2025-03-01T10:20:30Z",
    }
    base.update(values)
    return json.dumps({key: value for key, value in base.items() if value is not None}).encode()


# ---------------------------------------------------------------- one record


def test_a_complete_record_is_read_with_normalised_values() -> None:
    parsed = parse_record("metadata/abc-123.json", record())
    assert parsed == LegacyRecord(
        source="metadata/abc-123.json",
        legacy_id="abc-123",
        email="alice@example.com",
        kind="IMAGE",
        prompt="a red fox in fresh snow",
        created_at="2025-03-01T10:20:30.000000Z",
        model="imagen-3.0-generate-002",
        media=MediaRef("old-bucket", "media/abc-123.png"),
    )


@pytest.mark.parametrize(
    "spelling",
    [
        {"userEmail": "bob@example.com", "createdAt": "2025-03-01T10:20:30Z"},
        {"user_email": "bob@example.com", "timestamp": 1740824430},
        {"email": "bob@example.com", "created": 1740824430000},
        {"User-Email": "bob@example.com", "created_time": "2025-03-01 10:20:30"},
        {"user": {"email": "bob@example.com"}, "createdAt": {"_seconds": 1740824430, "_nanoseconds": 0}},
    ],
)
def test_key_spellings_and_time_formats_of_the_old_backend_are_all_understood(
    spelling: dict[str, Any],
) -> None:
    raw = record(**{"user_email": None, "created_at": None, **spelling})
    parsed = parse_record("m.json", raw)
    assert parsed.email == "bob@example.com"
    assert parsed.created_at == "2025-03-01T10:20:30.000000Z"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b'{"id": "x", "user_email": ', "invalid JSON"),
        (b"\xff\xfe\x00garbage", "not UTF-8"),
        (b'["a", "list"]', "a JSON object is expected"),
        (record(user_email=None), "missing field: user email"),
        (record(id=None, type=None), "missing fields: id, type"),
        (record(gcs_path=None), "missing field: media path"),
        (record(created_at=None), "missing field: created time"),
        (record(type="hologram"), "invalid type"),
        (record(user_email="not an address"), "invalid user email"),
        (record(created_at="last tuesday"), "invalid created time"),
        (record(gcs_path="https://example.com/x.png"), "not in Cloud Storage"),
        (record(id={"nested": True}), "invalid id"),
    ],
)
def test_a_bad_record_says_what_is_wrong(raw: bytes, reason: str) -> None:
    with pytest.raises(BadRecord) as caught:
        parse_record("metadata/bad.json", raw)
    assert reason in caught.value.reason


def test_a_text_record_may_carry_its_text_instead_of_a_media_path() -> None:
    parsed = parse_record("t.json", record(type="TEXT", gcs_path=None, text="An autumn haiku"))
    assert (parsed.kind, parsed.media, parsed.text) == ("TEXT", None, "An autumn haiku")


def test_prompt_and_model_are_optional() -> None:
    parsed = parse_record("u.json", record(prompt=None, model=None))
    assert (parsed.prompt, parsed.model) == (None, "unknown")


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("gs://old-bucket/media/a b.png", MediaRef("old-bucket", "media/a b.png")),
        (
            "https://storage.googleapis.com/old-bucket/media/a%20b.png",
            MediaRef("old-bucket", "media/a b.png"),
        ),
        ("https://storage.cloud.google.com/old-bucket/m/x.mp4?x=1", MediaRef("old-bucket", "m/x.mp4")),
        ("https://old-bucket.storage.googleapis.com/m/x.mp4", MediaRef("old-bucket", "m/x.mp4")),
        ("media/a.png", MediaRef(None, "media/a.png")),
        ("/media/a.png", MediaRef(None, "media/a.png")),
    ],
)
def test_media_paths_in_every_form_the_old_backend_wrote(value: str, expected: MediaRef) -> None:
    assert parse_media_ref(value) == expected


def test_owner_domain_completes_bare_names_and_refuses_other_domains() -> None:
    assert owner_email("carol", "example.com") == "carol@example.com"
    assert owner_email("Carol@Example.com", "@example.com") == "carol@example.com"
    with pytest.raises(BadRecord, match="outside the owner domain"):
        owner_email("mallory@elsewhere.org", "example.com")
    with pytest.raises(BadRecord, match="invalid user email"):
        owner_email("carol")


def test_times_are_stored_in_the_studio_format_in_utc() -> None:
    assert parse_time("2025-03-01T12:20:30+02:00") == "2025-03-01T10:20:30.000000Z"
    assert parse_time("Sat, 01 Mar 2025 10:20:30 GMT") == "2025-03-01T10:20:30.000000Z"
    assert parse_time("1740824430") == "2025-03-01T10:20:30.000000Z"
    with pytest.raises(BadRecord):
        parse_time(True)


def test_bucket_urls() -> None:
    assert parse_bucket_url("gs://old-bucket", "metadata/") == ("old-bucket", "metadata/")
    assert parse_bucket_url("gs://old-bucket/metadata/") == ("old-bucket", "metadata/")
    assert parse_bucket_url("old-bucket") == ("old-bucket", "")
    with pytest.raises(BadRecord):
        parse_bucket_url("gs://Not_A_Bucket!")
    with pytest.raises(BadRecord):
        parse_bucket_url("gs://old-bucket/metadata/", "other/")


def test_the_asset_id_is_derived_from_the_old_id_only() -> None:
    assert asset_id_for("abc-123") == asset_id_for("abc-123")
    assert asset_id_for("abc-123") != asset_id_for("abc-124")
    assert asset_id_for("abc-123").startswith("m") and len(asset_id_for("abc-123")) == 21


# ---------------------------------------------------------------- media


def test_media_types_are_sniffed_from_the_bytes() -> None:
    assert sniff_mime(png()) == "image/png"
    assert sniff_mime(jpeg()) == "image/jpeg"
    assert sniff_mime(webp()) == "image/webp"
    assert sniff_mime(mp4()) == "video/mp4"
    assert sniff_mime(b"GIF89a....") is None


def test_images_and_videos_are_measured() -> None:
    assert probe_media(jpeg(40, 30), "image/jpeg") == MediaShape(40, 30)
    assert probe_media(webp(20, 10), "image/webp") == MediaShape(20, 10)
    assert probe_media(mp4(320, 180, 6), "video/mp4") == MediaShape(320, 180, 6.0)
    with pytest.raises(ValueError):
        probe_media(b"\x89PNG\r\n\x1a\n truncated", "image/png")


def test_media_that_is_not_what_the_record_says_is_refused() -> None:
    image = parse_record("a.json", record())
    with pytest.raises(BadRecord, match="the media is video/mp4"):
        media_facts(image, mp4(), probe_media)
    with pytest.raises(BadRecord, match="unrecognised media format"):
        media_facts(image, b"GIF89a" + bytes(40), probe_media)
    with pytest.raises(BadRecord, match="empty"):
        media_facts(image, b"", probe_media)
    text = parse_record("t.json", record(type="text", gcs_path="t.txt"))
    with pytest.raises(BadRecord, match="not UTF-8"):
        media_facts(text, b"\xff\xfe\xfd", probe_media)


# ---------------------------------------------------------------- the asset document


async def test_an_imported_asset_has_exactly_the_fields_of_a_generated_one(tmp_path: Path) -> None:
    docs = SqliteDocStore(tmp_path / "studio.db")
    blobs = LocalBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:1", secret=b"s" * 32)
    try:
        user = await Directory(docs).put("owner@example.com", role=Role.USER, status=UserStatus.ACTIVE)
        desk = JobDesk(docs, DocstoreQueue(docs), build_catalog(Settings()))
        job = await desk.submit(Actor(user), JobKind.IMAGE, {"prompt": "a lighthouse"})
        runner = JobRunner(
            docs, blobs, LocalGenerator(speed=0), build_catalog(Settings()), worker_id="w", lease_seconds=5
        )
        await runner.run(job.id)
        (generated,) = await docs.query(Query(ASSETS))
    finally:
        await docs.close()

    image = png(32, 24)
    parsed = parse_record("a.json", record(title="Fox"))
    planned = plan_asset(
        parsed, media_facts(parsed, image, probe_media), owner_id="u1", source_uri="gs://old/a.png"
    )
    assert set(planned.data) == set(generated.data)
    for name, value in generated.data.items():
        if value is not None and name not in ("job_id",):
            assert type(planned.data[name]) is type(value), name
    assert planned.asset_id == asset_id_for("abc-123")
    assert planned.key == blob_key(planned.asset_id, "image/png")
    assert planned.data["readers"] == ["user:u1"] and planned.data["owner_id"] == "u1"
    assert (planned.data["width"], planned.data["height"], planned.data["bytes"]) == (32, 24, len(image))
    assert planned.data["created_at"] == planned.data["updated_at"] == "2025-03-01T10:20:30.000000Z"
    assert {"fox", "sn", "snow", "lighthouse"} & set(planned.data["search_terms"]) == {"fox", "sn", "snow"}
    assert planned.data["parameters"]["legacyId"] == "abc-123"
    assert planned.data["job_id"] is None and planned.data["cost_usd"] == 0.0


def test_a_text_asset_keeps_its_text() -> None:
    parsed = parse_record("t.json", record(type="text", gcs_path=None, text="Leaves fall"))
    planned = plan_asset(
        parsed, media_facts(parsed, b"Leaves fall", probe_media), owner_id="u", source_uri="x"
    )
    assert (planned.data["mime_type"], planned.data["text"]) == (TEXT_MIME, "Leaves fall")
    assert planned.key.endswith(".txt")


# ---------------------------------------------------------------- deduplication


def test_the_first_file_of_an_id_wins_and_a_copy_is_skipped_a_conflict_refused() -> None:
    dedup = Dedup()
    first = parse_record("metadata/a.json", record())
    assert dedup.check(first) is None
    copy = dedup.check(parse_record("metadata/b.json", record()))
    assert copy is not None and copy[0] is Outcome.SKIPPED and "metadata/a.json" in copy[1]
    other = dedup.check(parse_record("metadata/c.json", record(prompt="something else")))
    assert other is not None and other[0] is Outcome.FAILED


# ---------------------------------------------------------------- the run


@dataclass
class FakeBucket:
    """A LegacySource over a dict of object names to bytes."""

    objects: dict[str, bytes]
    name: str = "old-bucket"

    @property
    def bucket(self) -> str:
        return self.name

    async def list_names(self, prefix: str) -> list[str]:
        return [key for key in self.objects if key.startswith(prefix)]

    async def read(self, ref: MediaRef) -> bytes:
        if (ref.bucket or self.name) != self.name or ref.name not in self.objects:
            raise MediaMissing(ref.name)
        return self.objects[ref.name]


@dataclass
class Studio:
    docs: SqliteDocStore
    blobs: LocalBlobStore

    def migrator(self, objects: Mapping[str, bytes], **options: Any) -> Migrator:
        return Migrator(
            self.docs, self.blobs, Directory(self.docs), FakeBucket(dict(objects)), probe_media, **options
        )

    async def assets(self) -> dict[str, dict[str, Any]]:
        return {doc.id: doc.data for doc in await self.docs.query(Query(ASSETS))}


@pytest.fixture
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    docs = SqliteDocStore(tmp_path / "studio.db")
    try:
        yield Studio(docs, LocalBlobStore(tmp_path / "blobs", base_url="http://x", secret=b"s" * 32))
    finally:
        await docs.close()


OLD_BUCKET = {
    "metadata/1.json": record(id="1", gcs_path="gs://old-bucket/media/1.png"),
    "metadata/2.json": record(id="2", userEmail="bob@example.com", type="video", gcs_path="media/2.mp4"),
    "metadata/3.json": record(
        id="3", type="text", gcs_path=None, text="Leaves fall", user_email="bob@example.com"
    ),
    "metadata/4.json": b"{not json",
    "metadata/5.json": record(id="5", gcs_path="gs://old-bucket/media/gone.png"),
    "metadata/readme.txt": b"not metadata",
    "media/1.png": png(32, 24),
    "media/2.mp4": mp4(),
}


async def test_a_run_imports_good_files_reports_bad_ones_and_creates_pending_owners(studio: Studio) -> None:
    report = await studio.migrator(OLD_BUCKET).run("metadata/")

    outcomes = {result.source: result.outcome for result in report.results}
    assert outcomes == {
        "metadata/1.json": Outcome.IMPORTED,
        "metadata/2.json": Outcome.IMPORTED,
        "metadata/3.json": Outcome.IMPORTED,
        "metadata/4.json": Outcome.FAILED,
        "metadata/5.json": Outcome.FAILED,
    }
    assert report.ignored == 1
    reasons = {result.source: result.reason for result in report.results if result.reason}
    assert "invalid JSON" in reasons["metadata/4.json"]
    assert "media not found: gs://old-bucket/media/gone.png" in reasons["metadata/5.json"]
    assert report.summary().startswith("imported 3, skipped 0, failed 2")

    assets = await studio.assets()
    assert set(assets) == {asset_id_for("1"), asset_id_for("2"), asset_id_for("3")}
    video = assets[asset_id_for("2")]
    assert (video["kind"], video["mime_type"], video["duration_seconds"]) == ("VIDEO", "video/mp4", 6.0)
    assert await studio.blobs.get(video["blob_key"]) == OLD_BUCKET["media/2.mp4"]
    for email in ("alice@example.com", "bob@example.com"):
        user = await studio.docs.get(USERS, user_id_for(email))
        assert user is not None and user.data["status"] == "PENDING"
    assert report.new_users == {"alice@example.com", "bob@example.com"}


async def test_running_again_changes_nothing_and_reports_every_good_file_skipped(studio: Studio) -> None:
    await studio.migrator(OLD_BUCKET).run("metadata/")
    before = await studio.assets()

    again = await studio.migrator(OLD_BUCKET).run("metadata/")

    assert [r.outcome for r in again.results].count(Outcome.SKIPPED) == 3
    assert again.count(Outcome.IMPORTED) == 0 and again.failed == 2 and not again.new_users
    assert await studio.assets() == before


async def test_a_dry_run_writes_nothing_and_says_what_it_would_do(studio: Studio) -> None:
    report = await studio.migrator(OLD_BUCKET, dry_run=True).run("metadata/")

    assert report.count(Outcome.IMPORTED) == 3 and report.failed == 2
    assert await studio.assets() == {}
    assert await studio.docs.get(USERS, user_id_for("alice@example.com")) is None
    lines = list(report_lines(report, verbose=True))
    assert any(line.startswith("would import metadata/2.json: asset") for line in lines)
    assert lines[-1].startswith("dry run, nothing written: would import 3, skipped 0, failed 2")
    assert "would create 2 users" in lines[-1]


async def test_an_existing_user_keeps_their_role_and_status(studio: Studio) -> None:
    await Directory(studio.docs).put("alice@example.com", role=Role.ADMIN, status=UserStatus.ACTIVE)
    report = await studio.migrator(OLD_BUCKET).run("metadata/1")
    assert report.count(Outcome.IMPORTED) == 1 and not report.new_users
    user = await studio.docs.get(USERS, user_id_for("alice@example.com"))
    assert user is not None and (user.data["role"], user.data["status"]) == ("ADMIN", "ACTIVE")


async def test_a_file_failing_in_the_store_is_reported_and_the_others_still_import(studio: Studio) -> None:
    class FlakyBlobs(LocalBlobStore):
        async def put(self, key: str, data: bytes, content_type: str, metadata: Any = None) -> Any:
            if content_type == "video/mp4":
                raise OSError("disk full")
            return await super().put(key, data, content_type, metadata)

    studio.blobs = FlakyBlobs(studio.blobs.root, base_url="http://x", secret=b"s" * 32)
    report = await studio.migrator(OLD_BUCKET).run("metadata/")

    failed = {r.source: r.reason for r in report.results if r.outcome is Outcome.FAILED}
    assert failed["metadata/2.json"] == "import failed: OSError: disk full"
    assert report.count(Outcome.IMPORTED) == 2
    assert asset_id_for("2") not in await studio.assets()
