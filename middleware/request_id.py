"""The request id: made or taken from X-Request-Id, it reaches the response, the logs and GraphQL errors."""

from __future__ import annotations

import contextvars
import random
import re

request_id_var: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="")
SAFE_ID = re.compile(r"^[A-Za-z0-9._\-]{8,64}$")


def new_request_id() -> str:
    # A correlation id, not a secret: the fast non-cryptographic generator is enough.
    return f"{random.getrandbits(64):016x}"
