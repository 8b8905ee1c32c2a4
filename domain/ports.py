"""The Protocols every backend implements: the only operations the studio needs from the outside world.

Adapters live in `backends/`; every adapter of a port passes the same suite in `tests/contract/`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, Protocol, TypeVar, runtime_checkable

T = TypeVar("T")

# ---------------------------------------------------------------- documents


@dataclass(frozen=True)
class Document:
    """A stored document: its id, its data and an opaque version that changes on every write."""

    id: str
    data: dict[str, Any]
    version: str


FilterOp = Literal[
    "==", "!=", "<", "<=", ">", ">=", "in", "array_contains", "array_contains_any", "array_contains_all"
]


@dataclass(frozen=True)
class Filter:
    """`field op value`; `field` is a dotted path into the document data."""

    field: str
    op: FilterOp
    value: Any


@dataclass(frozen=True)
class Order:
    field: str
    descending: bool = False


@dataclass(frozen=True)
class Query:
    """An ordered, filtered read of one collection.

    Results are ordered by `order_by`, ties broken by document id in the direction of the last
    order field (ascending when there is none). `start_after` holds the values of the order fields
    followed by the document id of the last row already seen.
    """

    collection: str
    filters: Sequence[Filter] = ()
    order_by: Sequence[Order] = ()
    limit: int | None = None
    start_after: Sequence[Any] | None = None


@dataclass(frozen=True)
class Increment:
    """A field change that adds `amount` to a number (a missing field counts as 0)."""

    amount: int | float


@dataclass(frozen=True)
class Delete:
    """A field change that removes the field."""


@dataclass(frozen=True)
class Change:
    """One event of a query watch."""

    kind: Literal["added", "modified", "removed"]
    document: Document


class PreconditionFailed(Exception):
    """A conditional write found the document changed (or missing, or already present)."""


class TransactionConflict(Exception):
    """A transaction could not commit after its retries."""


class Transaction(Protocol):
    """Reads first, then buffered writes applied atomically when the transaction function returns."""

    async def get(self, collection: str, doc_id: str) -> Document | None:
        """Read a document inside the transaction."""
        ...

    def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Create; the commit fails with PreconditionFailed if the document exists."""
        ...

    def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> None:
        """Create or replace the whole document."""
        ...

    def update(self, collection: str, doc_id: str, changes: Mapping[str, Any]) -> None:
        """Change fields (dotted paths, Increment, Delete); the commit fails if the document is missing."""
        ...

    def delete(self, collection: str, doc_id: str) -> None:
        """Remove the document if present."""
        ...


@runtime_checkable
class DocStore(Protocol):
    """Schemaless documents in collections, with transactions, ordered queries and a change feed."""

    async def get(self, collection: str, doc_id: str) -> Document | None:
        """One document, or None."""
        ...

    async def get_many(self, collection: str, doc_ids: Sequence[str]) -> list[Document | None]:
        """Many documents in one round trip, in the order asked."""
        ...

    async def create(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        """Create a new document; PreconditionFailed if it exists."""
        ...

    async def set(self, collection: str, doc_id: str, data: Mapping[str, Any]) -> Document:
        """Create or replace a document."""
        ...

    async def update(
        self, collection: str, doc_id: str, changes: Mapping[str, Any], *, if_version: str | None = None
    ) -> Document:
        """Change fields; PreconditionFailed if missing or, with `if_version`, changed since."""
        ...

    async def delete(self, collection: str, doc_id: str, *, if_version: str | None = None) -> None:
        """Remove a document (missing is fine unless `if_version` is given)."""
        ...

    async def query(self, query: Query) -> list[Document]:
        """Run an ordered, filtered, paged query."""
        ...

    async def count(self, collection: str, filters: Sequence[Filter] = ()) -> int:
        """How many documents match, without reading them."""
        ...

    async def run_transaction(self, fn: Callable[[Transaction], Awaitable[T]]) -> T:
        """Run `fn` atomically, retrying it on contention; TransactionConflict when retries run out."""
        ...

    def watch_document(self, collection: str, doc_id: str) -> AsyncIterator[Document | None]:
        """The current state (None if missing), then later states in commit order, from any process.

        Never a state twice and always ending on the latest; states written in quick succession
        may be coalesced (the embedded store delivers every one)."""
        ...

    def watch_query(self, collection: str, filters: Sequence[Filter] = ()) -> AsyncIterator[list[Change]]:
        """First the matching documents as `added`, then batches of changes as they happen."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...

    async def close(self) -> None:
        """Release connections and stop watches."""
        ...


# ---------------------------------------------------------------- blobs


@dataclass(frozen=True)
class StoredBlob:
    key: str
    size: int
    sha256: str
    content_type: str


@dataclass(frozen=True)
class SignedUrl:
    url: str
    expires_at: datetime


@dataclass(frozen=True)
class UploadTarget:
    """Where a client sends an upload: `method` to `url` with exactly `headers`, before `expires_at`.

    A PUT carries the bytes itself; a POST (GCS) starts a resumable session whose `Location` the
    client then PUTs the bytes to. Either way at most the signed number of bytes is accepted.
    """

    url: str
    method: str
    headers: Mapping[str, str]
    expires_at: datetime


class BlobNotFound(Exception):
    """No object under that key."""


@runtime_checkable
class BlobStore(Protocol):
    """Private media objects, reachable by clients only through expiring signed URLs."""

    async def put(
        self, key: str, data: bytes, content_type: str, metadata: Mapping[str, str] | None = None
    ) -> StoredBlob:
        """Store bytes under a key (replacing any previous object)."""
        ...

    async def get(self, key: str) -> bytes:
        """The object's bytes; BlobNotFound if missing."""
        ...

    async def exists(self, key: str) -> bool:
        """Whether an object is stored under the key."""
        ...

    async def delete(self, key: str) -> None:
        """Remove the object; missing is fine."""
        ...

    async def signed_url(
        self, key: str, *, expires_in: timedelta, download_name: str | None = None
    ) -> SignedUrl:
        """A time-limited GET URL for the object."""
        ...

    async def upload_url(
        self, key: str, *, content_type: str, max_bytes: int, expires_in: timedelta
    ) -> UploadTarget:
        """A signed, expiring target through which a client uploads at most `max_bytes` to `key`."""
        ...

    async def stat(self, key: str) -> StoredBlob:
        """Size and content type of the object (sha256 may be "" when the store does not know it);
        BlobNotFound if missing."""
        ...

    async def read_prefix(self, key: str, length: int) -> bytes:
        """At most the first `length` bytes of the object; BlobNotFound if missing."""
        ...

    async def ping(self) -> None:
        """Raise if the store cannot be reached."""
        ...


# ---------------------------------------------------------------- generation

JobKindName = Literal["IMAGE", "VIDEO", "TEXT", "UPSCALE"]


@dataclass(frozen=True)
class InputMedia:
    """A library asset handed to a model: a source image, a first or last frame, a reference."""

    data: bytes
    mime_type: str
    asset_id: str | None = None


@dataclass(frozen=True)
class GenerationRequest:
    """What to generate. `parameters` holds kind-specific values already validated by the domain:
    aspect_ratio, count, seed, duration_seconds, generate_audio, temperature, max_output_tokens,
    system_prompt, factor."""

    kind: JobKindName
    model: str
    prompt: str
    negative_prompt: str | None = None
    parameters: Mapping[str, Any] = field(default_factory=dict)
    source: InputMedia | None = None
    first_frame: InputMedia | None = None
    last_frame: InputMedia | None = None
    references: Sequence[InputMedia] = ()
    # An upstream operation an earlier run of this job started (see Progress.operation_id):
    # generators that run long operations resume it instead of starting, and paying for, another.
    # Generators without such operations ignore it.
    operation_id: str | None = None


@dataclass(frozen=True)
class GeneratedMedia:
    data: bytes
    mime_type: str
    width: int | None = None
    height: int | None = None
    duration_seconds: float | None = None
    text: str | None = None


@dataclass(frozen=True)
class GenerationResult:
    """The media made, and the billable units the upstream reported (e.g. images, seconds, tokens)."""

    media: Sequence[GeneratedMedia]
    units: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Progress:
    """A progress report: fraction done (0..1), a stage name, and an estimate of the time left."""

    fraction: float
    stage: str
    eta_seconds: float | None = None
    message: str | None = None
    # Set on the report a generator makes as soon as it has started an upstream operation (a Veo
    # video): the runner stores it on the job before the generator goes on, so a re-run after a
    # crash passes it back as GenerationRequest.operation_id.
    operation_id: str | None = None


ProgressReporter = Callable[[Progress], Awaitable[None]]


@runtime_checkable
class Generator(Protocol):
    """Makes media. Raises StudioError with CONTENT_BLOCKED, UPSTREAM_UNAVAILABLE, ... on failure;
    cancellation arrives as asyncio cancellation of the call.

    A generator that starts a billed long-running upstream operation reports its id
    (`Progress.operation_id`) as soon as it has one, and given `GenerationRequest.operation_id`
    follows that operation to its end instead of starting a new one."""

    async def generate(self, request: GenerationRequest, report: ProgressReporter) -> GenerationResult:
        """Generate, calling `report` as work advances."""
        ...


@runtime_checkable
class MediaDescriber(Protocol):
    """A generator that can also tell what media shows (optional: generators without it are still
    Generators; the studio then makes no tags from the media)."""

    async def describe(self, media: bytes, mime_type: str, prompt: str | None = None) -> list[str]:
        """A few short lower-case tags for an image or video; `prompt` is what it was made from, if
        anything. Raises StudioError (CONTENT_BLOCKED, UPSTREAM_UNAVAILABLE, ...) when it cannot."""
        ...


# ---------------------------------------------------------------- queue

JobHandler = Callable[[str], Awaitable[None]]


@runtime_checkable
class JobQueue(Protocol):
    """Hands job ids to workers. Delivery may repeat: the domain's conditional claim makes it safe."""

    async def enqueue(self, job_id: str, *, attempt: int = 0) -> None:
        """Make the job's id reach a worker. `attempt` is how many times the job was claimed before:
        enqueueing the same (job, attempt) twice is one delivery; a job re-queued after a lost lease
        is enqueued again with its new attempt count."""
        ...

    async def serve(self, handler: JobHandler, *, concurrency: int) -> None:
        """Pull-style queues: feed `handler` until cancelled. Push-style queues (which deliver to an
        HTTP endpoint instead) just wait until cancelled, so a worker's sweeper keeps running."""
        ...


# ---------------------------------------------------------------- identity


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a verified credential says about its bearer."""

    subject: str
    email: str
    issued_at: datetime
    expires_at: datetime
    email_verified: bool = True
    authenticated_at: datetime | None = None  # when the bearer last signed in (Firebase auth_time)


@runtime_checkable
class IdentityProvider(Protocol):
    """Verifies bearer tokens; raises StudioError(UNAUTHENTICATED) on anything wrong."""

    async def verify(self, token: str) -> VerifiedIdentity:
        """Check signature, issuer, audience and expiry."""
        ...


# ---------------------------------------------------------------- rate limits


@dataclass(frozen=True)
class RateCheck:
    """The answer of one rate-limit hit: admitted, or refused with the seconds until a slot frees."""

    allowed: bool
    retry_after: float = 0.0


@runtime_checkable
class RateLimiter(Protocol):
    """Counts hits per key in a moving window of `period_seconds`; shared by every process using it."""

    async def hit(self, key: str, amount: int, period_seconds: int, cost: int = 1) -> RateCheck:
        """Take `cost` slots of `amount` per `period_seconds` for `key`, or refuse (taking nothing)."""
        ...


# ---------------------------------------------------------------- webhooks


class WebhookSendError(Exception):
    """A webhook host that did not resolve, or a POST that got no HTTP answer (refused, reset, timed
    out, bad TLS); the message says which and is safe to show to the webhook's owner."""


@runtime_checkable
class WebhookSender(Protocol):
    """Resolves webhook hosts and POSTs to them; the domain vets every address before a POST."""

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        """Every IP address `host` resolves to (WebhookSendError when it resolves to none)."""
        ...

    async def post(
        self, url: str, address: str, body: bytes, headers: Mapping[str, str], *, timeout: float
    ) -> int:
        """POST `body` to `url` over a connection to `address` — a vetted address of the URL's host,
        so a second lookup cannot lead elsewhere — with the host still naming TLS and `Host`; never
        follows a redirect. The response status; WebhookSendError when no response came in `timeout`."""
        ...


# ---------------------------------------------------------------- identical-request cache


@dataclass(frozen=True)
class CachedResult:
    """What an earlier, identical request produced: its job and the assets it made."""

    job_id: str
    asset_ids: tuple[str, ...]
    cost_usd: float


@runtime_checkable
class ResultCache(Protocol):
    """Remembers finished generations by request key for a while; shared by every process using it.

    A cache that cannot answer (its storage is down) behaves as empty: a miss costs a generation,
    never an error.
    """

    async def get(self, key: str) -> CachedResult | None:
        """The result stored under `key`, if it has not expired."""
        ...

    async def put(self, key: str, result: CachedResult, ttl_seconds: int) -> None:
        """Keep `result` under `key` for `ttl_seconds` (a later put replaces it)."""
        ...
