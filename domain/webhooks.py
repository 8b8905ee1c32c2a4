"""Webhooks: a job's callback on the final statuses it chose, signed the Standard Webhooks way, retried.

- At submit, `WebhookUrls.check` (domain.webhook_urls) accepts only URLs whose host resolves to
  public addresses.
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
import contextlib
import json
import logging
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from standardwebhooks import Webhook

from domain.access import Actor
from domain.clock import from_iso, now_iso, to_iso, utcnow
from domain.errors import StudioError
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
from domain.webhook_urls import (
    DEFAULT_RETRY_SCHEDULE,
    WebhookUrlError,
    WebhookUrls,
    check_secret,
)

log = logging.getLogger("genmedia.webhooks")

WEBHOOK_DELIVERIES = "webhook_deliveries"
USER_AGENT = "GenMedia-Studio-Webhooks/1"


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    DELIVERED = "DELIVERED"
    FAILED = "FAILED"


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
    return record_finished(tx, "batch", batch_id, batch, data, batch_id=batch_id)


def record_finished(
    tx: Transaction,
    kind: str,
    subject_id: str,
    subject: Mapping[str, Any],
    data: dict[str, Any],
    *,
    batch_id: str | None = None,
) -> str | None:
    """Call in the transaction that finishes a batch or a workflow run (`subject` as it will be):
    queue its `<kind>.finished` delivery if its webhook asked for that final status."""
    hook = subject.get("webhook")
    event = str(subject.get("status"))
    if not hook or event not in (hook.get("events") or ()):
        return None
    ident = f"{subject_id}_{kind}_finished"  # one per subject: it finishes once
    _queue_delivery(tx, ident, hook["url"], event, f"{kind}.finished", data, subject, batch_id=batch_id)
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
