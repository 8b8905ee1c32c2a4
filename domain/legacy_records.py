"""Reading one metadata file of the old REST backend, leniently: its fields under any of their
spellings, its owner, times in any of the formats it wrote, and the location of its media."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from domain.clock import to_iso
from domain.errors import StudioError
from domain.users import normalise_email

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
