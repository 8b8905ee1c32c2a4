"""Webhooks: a job's callback on the final statuses it chose, signed the Standard Webhooks way, retried.

- At submit, `WebhookUrls.check` accepts a URL only if it is https (http too when private addresses
  are allowed, for local testing), its host resolves, and every address it resolves to is public:
  no private, loopback, link-local, CGNAT, multicast, reserved or cloud-metadata address.
- The transaction that moves a job to a final status calls `record_event`, which creates a
  `webhook_deliveries/{id}` document when the job asked for that status: never lost, never twice.
- `WebhookDispatcher` runs in every worker process. It claims a due delivery with a conditional
  transaction (a lease, as jobs have), vets the host's addresses again (DNS rebinding), POSTs over a
  connection pinned to a vetted address without following redirects, records the attempt, and
  schedules the next one from the retry schedule — or marks the delivery FAILED when it runs out.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import ipaddress
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import urlsplit

from standardwebhooks import Webhook

from domain.access import Actor
from domain.clock import from_iso, now_iso, to_iso, utcnow
from domain.errors import StudioError, bad_input
from domain.jobs import JobStatus
from domain.ports import (
    DocStore,
    Document,
    Filter,
    Order,
    Query,
    Transaction,
    WebhookSender,
    WebhookSendError,
)

log = logging.getLogger("genmedia.webhooks")

WEBHOOK_DELIVERIES = "webhook_deliveries"
DEFAULT_EVENTS = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
# Standard Webhooks' recommendation after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_URL_CHARS = 2048
MAX_RETRIES = 50
MAX_RETRY_DELAY_SECONDS = 7 * 24 * 3600.0
SECRET_PREFIX = "whsec_"
USER_AGENT = "GenMedia-Studio-Webhooks/1"

# Addresses that answer for instance metadata on the big clouds; all are non-public anyway, but they
# get their own word in the refusal.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


class WebhookUrlError(Exception):
    """A webhook URL the studio will not call; the message says why."""


# ------------------------------------------------------------------ settings


def parse_retry_schedule(value: str | Sequence[float]) -> tuple[float, ...]:
    """Seconds to wait before each retry, from text like "5,300,1800" (empty: no retries).

    ValueError with a message fit for a settings error on anything else.
    """
    if isinstance(value, str):
        if not value.strip():
            return ()
        items: list[str | float] = [item.strip() for item in value.split(",")]
    else:
        items = list(value)
    if len(items) > MAX_RETRIES:
        raise ValueError(f"at most {MAX_RETRIES} retries, got {len(items)}")
    delays: list[float] = []
    for item in items:
        try:
            delay = float(item)
        except (TypeError, ValueError):
            raise ValueError(
                f"{item!r} is not a number of seconds; give the seconds between attempts, "
                "comma-separated, e.g. 5,300,1800"
            ) from None
        if not math.isfinite(delay) or delay < 0:
            raise ValueError(f"{item!r}: the seconds between attempts must be a finite number >= 0")
        if delay > MAX_RETRY_DELAY_SECONDS:
            raise ValueError(f"{item!r}: at most {MAX_RETRY_DELAY_SECONDS:g} seconds between attempts")
        delays.append(delay)
    return tuple(delays)


def check_secret(secret: str) -> str:
    """A Standard Webhooks signing secret: `whsec_` then base64 of 24 to 64 random bytes."""
    if not secret.startswith(SECRET_PREFIX):
        raise ValueError(f"a webhook secret starts with {SECRET_PREFIX} followed by base64")
    text = secret[len(SECRET_PREFIX) :]
    try:
        raw = base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ValueError(f"the part after {SECRET_PREFIX} is not base64") from None
    if not 24 <= len(raw) <= 64:
        raise ValueError(f"a webhook secret holds 24 to 64 bytes, this one {len(raw)}")
    return secret


def secret_from_bytes(raw: bytes) -> str:
    """The `whsec_` form of random bytes (as kept in the data dir when no secret is configured)."""
    return check_secret(SECRET_PREFIX + base64.b64encode(raw).decode())


# ------------------------------------------------------------------ URLs and addresses


def address_problem(address: str) -> str | None:
    """Why the studio must not connect to this IP address, or None when it is public."""
    try:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
    except ValueError:
        return "not an IP address"
    candidates: list[ipaddress.IPv4Address | ipaddress.IPv6Address] = [ip]
    if isinstance(ip, ipaddress.IPv6Address):
        # IPv4 carried inside IPv6 reaches the IPv4 address: judge that too.
        embedded = ip.ipv4_mapped or ip.sixtofour
        if embedded is None and ip in _NAT64:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
        if embedded is None and ip.teredo is not None:
            embedded = ip.teredo[1]
        if embedded is not None:
            candidates.insert(0, embedded)  # its reason is the more telling one
    for candidate in candidates:
        if candidate in METADATA_ADDRESSES:
            return "a cloud metadata address"
        if candidate.is_loopback:
            return "a loopback address"
        if candidate.is_link_local:
            return "a link-local address"
        if candidate.is_multicast:
            return "a multicast address"
        if candidate.is_unspecified:
            return "an unspecified address"
        if candidate.is_private:
            return "a private address"
        if candidate.is_reserved or not candidate.is_global:
            return "not a public address"  # CGNAT 100.64/10, benchmarking, documentation, ...
    return None


@dataclass(frozen=True)
class WebhookTarget:
    """A URL checked and resolved: the address to connect to is one of the host's vetted ones."""

    url: str
    host: str
    port: int
    address: str


def split_url(url: str, *, allow_private: bool = False) -> tuple[str, str, int]:
    """(scheme, host, port) of an acceptable webhook URL; WebhookUrlError otherwise."""
    if len(url) > MAX_URL_CHARS:
        raise WebhookUrlError(f"the URL is longer than {MAX_URL_CHARS} characters")
    if not url or not url.isascii() or any(ch.isspace() or not ch.isprintable() for ch in url):
        raise WebhookUrlError("the URL must be ASCII without spaces (use punycode for international names)")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        raise WebhookUrlError("the URL is malformed or its port is invalid") from None
    scheme = parts.scheme.lower()
    allowed = ("https", "http") if allow_private else ("https",)
    if scheme not in allowed:
        raise WebhookUrlError("the URL must use https")
    if parts.username is not None or parts.password is not None:
        raise WebhookUrlError("the URL must not carry credentials")
    host = (parts.hostname or "").rstrip(".")
    if not host:
        raise WebhookUrlError("the URL has no host")
    return scheme, host, port or (443 if scheme == "https" else 80)


class WebhookUrls:
    """Decides which URLs the studio calls, at submit and again before every attempt."""

    def __init__(self, sender: WebhookSender, *, allow_private: bool = False, timeout: float = 5.0) -> None:
        self._sender = sender
        self._allow_private = allow_private
        self._timeout = timeout

    async def target(self, url: str) -> WebhookTarget:
        """Check the URL, resolve its host, vet every address; WebhookUrlError when refused."""
        _, host, port = split_url(url, allow_private=self._allow_private)
        literal = True
        try:
            addresses = [str(ipaddress.ip_address(host))]
        except ValueError:
            literal = False
            try:
                async with asyncio.timeout(self._timeout):
                    addresses = list(await self._sender.resolve(host, port))
            except TimeoutError:
                raise WebhookUrlError(f"{host} did not resolve within {self._timeout:g} s") from None
            except WebhookSendError:
                raise WebhookUrlError(f"{host} does not resolve") from None
        if not addresses:
            raise WebhookUrlError(f"{host} does not resolve")
        if not self._allow_private:
            for address in addresses:
                problem = address_problem(address)
                if problem is not None:
                    shown = host if literal else f"{host} resolves to {address}, which"
                    raise WebhookUrlError(f"{shown} is {problem}; webhooks must reach a public address")
        return WebhookTarget(url, host, port, addresses[0])

    async def check(self, webhook: Mapping[str, Any], field: str = "input.webhook") -> dict[str, Any]:
        """The webhook as a job stores it ({url, events}); BAD_USER_INPUT naming the field at fault."""
        url = webhook.get("url")
        if not isinstance(url, str) or not url:
            raise bad_input(f"{field}.url", "a webhook needs a url")
        raw_events = webhook.get("events")
        events: list[str] = []
        for value in DEFAULT_EVENTS if raw_events is None else raw_events:
            try:
                status = JobStatus(value)
            except ValueError:
                raise bad_input(f"{field}.events", f"{value!r} is not a job status") from None
            if not status.is_final:
                raise bad_input(
                    f"{field}.events", "webhooks fire on final statuses only: SUCCEEDED, FAILED, CANCELLED"
                )
            if status.value not in events:
                events.append(status.value)
        if not events:
            raise bad_input(f"{field}.events", "choose at least one status, or leave events out")
        try:
            await self.target(url)
        except WebhookUrlError as error:
            raise bad_input(f"{field}.url", f"webhook URL refused: {error}") from None
        return {"url": url, "events": events}


# ------------------------------------------------------------------ events and payloads


def global_id(type_name: str, raw: str) -> str:
    """The API's global id (`base64("Type:id")`, as schema.nodes.encode_id makes it)."""
    return base64.b64encode(f"{type_name}:{raw}".encode()).decode()


def job_payload(job_id: str, job: Mapping[str, Any]) -> dict[str, Any]:
    """The job as the API shows it, in the fields a webhook carries."""
    error = job.get("error")
    finished = job.get("finished_at")
    return {
        "id": global_id("Job", job_id),
        "kind": job["kind"],
        "status": job["status"],
        "model": job.get("model"),
        "progress": float(job.get("progress", 0.0)),
        "error": (
            {"code": error["code"], "message": error["message"], "retryable": bool(error.get("retryable"))}
            if error
            else None
        ),
        "assetIds": [global_id("Asset", asset_id) for asset_id in job.get("asset_ids") or ()],
        "costUsd": float(job.get("cost_usd", 0.0)),
        "finishedAt": from_iso(finished).isoformat() if finished else None,
    }


def delivery_id(job_id: str, event: str) -> str:
    """One delivery per job and status: a retried transaction rewrites it, never adds a second."""
    return f"{job_id}_{event.lower()}"


def record_event(tx: Transaction, job_id: str, job: Mapping[str, Any]) -> str | None:
    """Call in the transaction that moves the job to `job["status"]` (the data as it will be):
    queue the webhook delivery if the job asked for this status. The delivery's id, or None."""
    hook = job.get("webhook")
    event = str(job.get("status"))
    if not hook or event not in (hook.get("events") or ()):
        return None
    ident = delivery_id(job_id, event)
    payload = job_payload(job_id, job)
    _queue_delivery(tx, ident, hook["url"], event, f"job.{event.lower()}", payload, job, job_id=job_id)
    return ident


def record_batch_event(
    tx: Transaction, batch_id: str, batch: Mapping[str, Any], data: dict[str, Any]
) -> str | None:
    """Call in the transaction that finishes the batch (`batch` as it will be): queue its
    `batch.finished` delivery if it asked for its final status. The delivery's id, or None."""
    hook = batch.get("webhook")
    event = str(batch.get("status"))
    if not hook or event not in (hook.get("events") or ()):
        return None
    ident = f"{batch_id}_batch_finished"  # one per batch: it finishes once
    _queue_delivery(tx, ident, hook["url"], event, "batch.finished", data, batch, batch_id=batch_id)
    return ident


def _queue_delivery(
    tx: Transaction,
    ident: str,
    url: str,
    event: str,
    kind: str,
    data: dict[str, Any],
    subject: Mapping[str, Any],
    *,
    job_id: str | None = None,
    batch_id: str | None = None,
) -> None:
    """Store a PENDING delivery (the dispatcher signs and sends it); rewriting it is harmless."""
    now = now_iso()
    tx.set(
        WEBHOOK_DELIVERIES,
        ident,
        {
            "job_id": job_id,
            "batch_id": batch_id,
            "owner_id": subject.get("owner_id"),
            "url": url,
            "event": event,
            "payload": {"type": kind, "timestamp": now, "data": data},
            "status": DeliveryStatus.PENDING.value,
            "attempt_count": 0,
            "attempts": [],
            "next_attempt_at": now,
            "due_at": now,  # next_attempt_at, or the lease's end while an attempt is in flight
            "lease_owner": None,
            "created_at": now,
            "updated_at": now,
            "finished_at": None,
        },
    )


def signed_headers(signer: Webhook, msg_id: str, at: datetime, body: str) -> dict[str, str]:
    """The Standard Webhooks headers (webhook-id, webhook-timestamp, webhook-signature) for `body`."""
    stamp = math.floor(at.timestamp())
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": msg_id,
        "webhook-timestamp": str(stamp),
        "webhook-signature": signer.sign(msg_id=msg_id, timestamp=at, data=body),
    }


async def deliveries_for(docs: DocStore, actor: Actor | None, job_id: str, owner_id: str) -> list[Document]:
    """A job's deliveries, oldest first; only its owner and administrators see them."""
    if actor is None or not (actor.user.is_admin or actor.id == owner_id):
        return []
    found = await docs.query(Query(WEBHOOK_DELIVERIES, (Filter("job_id", "==", job_id),), limit=20))
    return sorted(found, key=lambda doc: (str(doc.data.get("created_at", "")), doc.id))


# ------------------------------------------------------------------ delivery


@dataclass(frozen=True)
class Attempt:
    at: str
    http_status: int | None
    error: str | None
    duration_ms: int

    def as_data(self) -> dict[str, Any]:
        return {
            "at": self.at,
            "http_status": self.http_status,
            "error": self.error,
            "duration_ms": self.duration_ms,
        }


class WebhookDispatcher:
    """Delivers due webhooks; safe to run in many processes at once over one docstore."""

    def __init__(
        self,
        docs: DocStore,
        sender: WebhookSender,
        *,
        secret: str | Callable[[], str],
        worker_id: str,
        schedule: Sequence[float] = DEFAULT_RETRY_SCHEDULE,
        timeout: float = 5.0,
        allow_private: bool = False,
        poll_seconds: float = 1.0,
        concurrency: int = 16,
        lease_seconds: float | None = None,
    ) -> None:
        self._docs = docs
        self._sender = sender
        # A callable secret is fetched at the first signing: a process that never delivers never makes one.
        self._secret = secret
        self._webhook: Webhook | None = None if callable(secret) else Webhook(check_secret(secret))
        self._worker_id = worker_id
        self._schedule = tuple(schedule)
        self._timeout = timeout
        self._urls = WebhookUrls(sender, allow_private=allow_private, timeout=timeout)
        self._poll = poll_seconds
        self._concurrency = concurrency
        # Long enough for a lookup and a POST, each bounded by the timeout.
        self._lease = lease_seconds if lease_seconds is not None else 2 * timeout + 30.0

    def _signer(self) -> Webhook:
        if self._webhook is None:
            secret = self._secret
            self._webhook = Webhook(check_secret(secret() if callable(secret) else secret))
        return self._webhook

    async def run(self) -> None:
        """Poll for due deliveries and attempt them, `concurrency` at a time, until cancelled."""
        in_flight: set[asyncio.Task[bool]] = set()
        try:
            while True:
                try:
                    room = self._concurrency - len(in_flight)
                    if room > 0:
                        for doc in await self._due(room):
                            task = asyncio.create_task(self._attempt_logged(doc.id), name=f"webhook-{doc.id}")
                            in_flight.add(task)
                            task.add_done_callback(in_flight.discard)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.warning("webhook poll failed", exc_info=True)
                await asyncio.sleep(self._poll)
        finally:
            for task in in_flight:
                task.cancel()
            await asyncio.gather(*in_flight, return_exceptions=True)

    async def deliver_due(self, limit: int = 100) -> int:
        """One pass: attempt every delivery due now; how many attempts this call made."""
        docs = await self._due(limit)
        made = await asyncio.gather(*(self.attempt(doc.id) for doc in docs))
        return sum(made)

    async def attempt(self, ident: str) -> bool:
        """Claim the delivery if it is due, POST it once and record the outcome; False if not ours."""
        claimed = await self._claim(ident)
        if claimed is None:
            return False
        try:
            outcome = await self._send(claimed)
        except asyncio.CancelledError:
            await asyncio.shield(self._release(claimed))
            raise
        await self._record(claimed, outcome)
        return True

    async def _attempt_logged(self, ident: str) -> bool:
        try:
            return await self.attempt(ident)
        except asyncio.CancelledError:
            raise
        except Exception:  # the lease runs out and the delivery is tried again
            log.warning("webhook attempt could not be recorded", extra={"doc_id": ident}, exc_info=True)
            return False

    async def _due(self, limit: int) -> list[Document]:
        return await self._docs.query(
            Query(
                WEBHOOK_DELIVERIES,
                (
                    Filter("status", "==", DeliveryStatus.PENDING.value),
                    Filter("due_at", "<=", now_iso()),
                ),
                order_by=(Order("due_at"),),
                limit=limit,
            )
        )

    async def _claim(self, ident: str) -> Document | None:
        async def claim(tx: Transaction) -> Document | None:
            current = await tx.get(WEBHOOK_DELIVERIES, ident)
            if current is None or current.data.get("status") != DeliveryStatus.PENDING.value:
                return None
            if str(current.data.get("due_at") or "") > now_iso():
                return None  # not yet due, or in flight under another worker's lease
            changes = {
                "lease_owner": self._worker_id,
                "due_at": to_iso(utcnow() + timedelta(seconds=self._lease)),
                "updated_at": now_iso(),
            }
            tx.update(WEBHOOK_DELIVERIES, ident, changes)
            return Document(current.id, {**current.data, **changes}, current.version)

        return await self._docs.run_transaction(claim)

    def _still_ours(self, current: Document | None, claimed: Document) -> bool:
        return (
            current is not None
            and current.data.get("status") == DeliveryStatus.PENDING.value
            and current.data.get("lease_owner") == self._worker_id
            and current.data.get("attempt_count") == claimed.data.get("attempt_count")
        )

    async def _send(self, claimed: Document) -> Attempt:
        data = claimed.data
        started = utcnow()
        clock = time.monotonic()
        status: int | None = None
        error: str | None = None
        try:
            target = await self._urls.target(str(data["url"]))
            body = json.dumps(data["payload"], separators=(",", ":"))
            headers = signed_headers(self._signer(), claimed.id, utcnow(), body)
            try:
                async with asyncio.timeout(self._timeout):
                    status = await self._sender.post(
                        target.url, target.address, body.encode(), headers, timeout=self._timeout
                    )
            except TimeoutError:
                raise WebhookSendError(f"timed out: no response within {self._timeout:g} s") from None
            if 300 <= status < 400:
                error = f"HTTP {status}: redirects are not followed"
            elif not 200 <= status < 300:
                error = f"HTTP {status}"
        except WebhookUrlError as refused:
            error = f"refused: {refused}"
        except WebhookSendError as failed:
            error = str(failed) or type(failed).__name__
        except StudioError as failed:
            error = failed.message
        except Exception as failed:
            log.warning("webhook attempt failed unexpectedly", extra={"doc_id": claimed.id}, exc_info=True)
            error = f"unexpected error ({type(failed).__name__})"
        duration = round((time.monotonic() - clock) * 1000)
        return Attempt(to_iso(started), status, error, duration)

    async def _record(self, claimed: Document, attempt: Attempt) -> None:
        async def record(tx: Transaction) -> None:
            current = await tx.get(WEBHOOK_DELIVERIES, claimed.id)
            if not self._still_ours(current, claimed):
                return  # the lease ran out and another worker took over: its record counts
            assert current is not None
            count = int(current.data.get("attempt_count", 0)) + 1
            now = utcnow()
            changes: dict[str, Any] = {
                "attempts": [*(current.data.get("attempts") or []), attempt.as_data()],
                "attempt_count": count,
                "lease_owner": None,
                "updated_at": to_iso(now),
            }
            if attempt.error is None:
                changes.update(
                    status=DeliveryStatus.DELIVERED.value,
                    next_attempt_at=None,
                    due_at=None,
                    finished_at=to_iso(now),
                )
            elif count > len(self._schedule):
                changes.update(
                    status=DeliveryStatus.FAILED.value,
                    next_attempt_at=None,
                    due_at=None,
                    finished_at=to_iso(now),
                )
            else:
                later = to_iso(now + timedelta(seconds=self._schedule[count - 1]))
                changes.update(next_attempt_at=later, due_at=later)
            tx.update(WEBHOOK_DELIVERIES, claimed.id, changes)

        await self._docs.run_transaction(record)
        log.info(
            "webhook attempt: %s",
            attempt.error or f"HTTP {attempt.http_status}",
            extra={"doc_id": claimed.id, "job_id": claimed.data.get("job_id")},
        )

    async def _release(self, claimed: Document) -> None:
        """On shutdown mid-attempt, make the delivery due again at once instead of after the lease."""

        async def release(tx: Transaction) -> None:
            current = await tx.get(WEBHOOK_DELIVERIES, claimed.id)
            if self._still_ours(current, claimed):
                tx.update(WEBHOOK_DELIVERIES, claimed.id, {"lease_owner": None, "due_at": now_iso()})

        with contextlib.suppress(Exception):
            await self._docs.run_transaction(release)
