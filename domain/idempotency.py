"""Idempotency keys: the same key from the same caller within a day means the same job, never a second charge."""

from __future__ import annotations

import hashlib
import json
from datetime import timedelta
from typing import Any

from domain.clock import now_iso, to_iso, utcnow
from domain.errors import bad_input, conflict
from domain.ports import Transaction

IDEMPOTENCY = "idempotency"
KEY_LIFETIME = timedelta(hours=24)
MAX_KEY_CHARS = 200


def check_key(key: str, field: str) -> str:
    if not 1 <= len(key) <= MAX_KEY_CHARS or not key.isprintable():
        raise bad_input(field, f"idempotencyKey must be 1 to {MAX_KEY_CHARS} printable characters")
    return key


def key_doc_id(owner_id: str, key: str) -> str:
    """Keys are per caller: two users may pick the same key without meeting."""
    return hashlib.sha256(f"{owner_id}\x00{key}".encode()).hexdigest()


def fingerprint(payload: Any) -> str:
    return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()


async def remembered_job(tx: Transaction, owner_id: str, key: str, print_: str) -> str | None:
    """The job an earlier request with this key made (None if none, or if it is over a day old).

    CONFLICT when the key was used with a different input. Reads only: call before writing.
    """
    doc = await tx.get(IDEMPOTENCY, key_doc_id(owner_id, key))
    if doc is None or doc.data.get("expires_at", "") <= now_iso():
        return None
    if doc.data.get("fingerprint") != print_:
        raise conflict("This idempotencyKey was already used with a different input.")
    return str(doc.data["job_id"])


def remember(tx: Transaction, owner_id: str, key: str, print_: str, job_id: str) -> None:
    now = utcnow()
    tx.set(
        IDEMPOTENCY,
        key_doc_id(owner_id, key),
        {
            "owner_id": owner_id,
            "job_id": job_id,
            "fingerprint": print_,
            "created_at": to_iso(now),
            "expires_at": to_iso(now + KEY_LIFETIME),
        },
    )
