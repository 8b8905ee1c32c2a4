"""Where webhooks may go: URLs and the addresses they resolve to, and the webhook settings.

A URL is accepted only if it is https (http too when private addresses are allowed, for local
testing), its host resolves, and every address it resolves to is public: no private, loopback,
link-local, CGNAT, multicast, reserved or cloud-metadata address. The dispatcher (domain.webhooks)
vets the addresses again before every attempt.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import ipaddress
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from domain.errors import bad_input
from domain.jobs import JobStatus
from domain.ports import WebhookSender, WebhookSendError

DEFAULT_EVENTS = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)
# Standard Webhooks' recommendation after the first attempt: 5 s, 5 min, 30 min, 2 h, 5 h, 10 h, 10 h.
DEFAULT_RETRY_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0)
MAX_URL_CHARS = 2048
MAX_RETRIES = 50
MAX_RETRY_DELAY_SECONDS = 7 * 24 * 3600.0
SECRET_PREFIX = "whsec_"

# Addresses that answer for instance metadata on the big clouds; all are non-public anyway, but they
# get their own word in the refusal.
METADATA_ADDRESSES = frozenset(
    ipaddress.ip_address(a) for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
_NAT64 = ipaddress.ip_network("64:ff9b::/96")


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
