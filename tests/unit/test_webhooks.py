"""Webhooks at the domain level: URL vetting, signatures, the retry schedule, and delivery exactly as recorded."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from collections.abc import AsyncIterator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from backends.blobs.localfs import LocalBlobStore
from backends.docstore.sqlite import SqliteDocStore
from backends.generators.local import BLOCK_MARKER, LocalGenerator
from backends.queue.docstore import DocstoreQueue
from backends.webhooks.sender import HttpWebhookSender
from config import Settings, SettingsError, load_settings
from domain.access import Actor
from domain.clock import from_iso, now_iso
from domain.desk import JobDesk
from domain.errors import ErrorCode, StudioError
from domain.jobs import JOBS, JobKind
from domain.ports import WebhookSendError
from domain.runner import JobRunner
from domain.users import Directory, Role, UserStatus
from domain.webhook_urls import (
    DEFAULT_RETRY_SCHEDULE,
    WebhookUrlError,
    WebhookUrls,
    address_problem,
    check_secret,
    parse_retry_schedule,
)
from domain.webhooks import (
    WEBHOOK_DELIVERIES,
    WebhookDispatcher,
    deliveries_for,
    global_id,
    signed_headers,
)
from schema.nodes import encode_id
from wiring import build_catalog, webhook_secret

SECRET = "whsec_" + base64.b64encode(b"unit-test-webhook-secret-32-byte").decode()
PUBLIC = "93.184.216.34"
HOOK = "https://hooks.example.com/genmedia"


# ---------------------------------------------------------------- a sender without a network


@dataclass
class Post:
    url: str
    address: str
    body: bytes
    headers: dict[str, str]


@dataclass
class FakeSender:
    """Resolves from a table; answers each POST with the next scripted reply (200 when none is left)."""

    hosts: dict[str, list[str]] = field(
        default_factory=lambda: {
            "hooks.example.com": [PUBLIC],
            "internal.example.com": ["10.0.0.5"],
            "mixed.example.com": [PUBLIC, "127.0.0.1"],
            "v6.example.com": ["2606:4700::6810:84e5"],
            "metadata.example.com": ["169.254.169.254"],
        }
    )
    replies: list[int | str | Exception] = field(default_factory=list)
    posts: list[Post] = field(default_factory=list)

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        if host not in self.hosts:
            raise WebhookSendError(f"{host} does not resolve")
        return self.hosts[host]

    async def post(
        self, url: str, address: str, body: bytes, headers: Mapping[str, str], *, timeout: float
    ) -> int:
        self.posts.append(Post(url, address, body, dict(headers)))
        reply = self.replies.pop(0) if self.replies else 200
        if isinstance(reply, Exception):
            raise reply
        if reply == "hang":
            await asyncio.sleep(30)
            return 200
        assert isinstance(reply, int)
        return reply


# ---------------------------------------------------------------- settings and secrets


def test_the_retry_schedule_is_comma_separated_seconds() -> None:
    assert parse_retry_schedule("5, 300,1800") == (5.0, 300.0, 1800.0)
    assert parse_retry_schedule("0.2,0.2,0.2") == (0.2, 0.2, 0.2)
    assert parse_retry_schedule("") == ()


def test_the_default_schedule_follows_standard_webhooks_and_reaches_about_a_day() -> None:
    assert Settings().webhook_retry_schedule == DEFAULT_RETRY_SCHEDULE
    assert DEFAULT_RETRY_SCHEDULE[:2] == (5.0, 300.0)
    assert 20 * 3600 < sum(DEFAULT_RETRY_SCHEDULE) < 36 * 3600


@pytest.mark.parametrize("value", ["5,abc", "5,,300", "-1", "nan", "inf", "1e9", ",".join(["1"] * 51)])
def test_a_bad_retry_schedule_is_refused_with_a_clear_reason(value: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_retry_schedule(value)
    assert str(caught.value)


def test_a_bad_retry_schedule_stops_start_up_with_one_line_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GENMEDIA_WEBHOOK_RETRY_SCHEDULE", "5,soon")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    message = str(caught.value)
    assert message.count("\n") == 0
    assert "GENMEDIA_WEBHOOK_RETRY_SCHEDULE" in message and "'soon' is not a number of seconds" in message


def test_a_bad_secret_is_refused_without_repeating_it(tmp_path: Path) -> None:
    for bad in ("not-a-secret-at-all", "whsec_@@@@", "whsec_" + base64.b64encode(b"short").decode()):
        settings = load_settings(data_dir=tmp_path, webhook_secret=bad)
        with pytest.raises(SettingsError) as caught:
            webhook_secret(settings)
        assert "GENMEDIA_WEBHOOK_SECRET" in str(caught.value) and bad not in str(caught.value)
        assert bad not in repr(settings)
    with pytest.raises(ValueError):
        check_secret("whsec_" + base64.b64encode(b"k" * 65).decode())


def test_without_a_configured_secret_one_is_made_once_in_the_data_dir(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path)
    first = webhook_secret(settings)
    assert first.startswith("whsec_") and first == webhook_secret(settings)
    raw = (tmp_path / "secrets" / "webhook-signing.key").read_bytes()
    assert first == "whsec_" + base64.b64encode(raw).decode()  # what the README tells operators
    assert load_settings(data_dir=tmp_path, webhook_secret=SECRET).webhook_secret is not None
    assert webhook_secret(load_settings(data_dir=tmp_path, webhook_secret=SECRET)) == SECRET


async def test_a_secret_given_as_a_callable_is_fetched_only_to_sign(studio: Studio) -> None:
    asked: list[int] = []

    def secret() -> str:
        asked.append(1)
        return SECRET

    dispatcher = WebhookDispatcher(studio.docs, studio.sender, secret=secret, worker_id="lazy", schedule=())
    assert await dispatcher.deliver_due() == 0 and asked == []
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    await dispatcher.deliver_due()
    await dispatcher.deliver_due()
    (post,) = studio.sender.posts
    Webhook(SECRET).verify(post.body, post.headers)
    assert asked == [1]


# ---------------------------------------------------------------- signatures and payloads


def test_the_signature_verifies_with_standard_webhooks() -> None:
    body = json.dumps({"type": "job.succeeded", "data": {"id": "x"}}, separators=(",", ":"))
    at = datetime.now(UTC)
    headers = signed_headers(Webhook(SECRET), "job1_succeeded", at, body)
    assert headers["webhook-id"] == "job1_succeeded"
    assert headers["webhook-timestamp"] == str(int(at.timestamp()))
    assert Webhook(SECRET).verify(body, headers) == {"type": "job.succeeded", "data": {"id": "x"}}
    with pytest.raises(WebhookVerificationError):
        Webhook(SECRET).verify(body.replace("x", "y"), headers)
    other = "whsec_" + base64.b64encode(b"another-secret-of-thirty-two-by!").decode()
    with pytest.raises(WebhookVerificationError):
        Webhook(other).verify(body, headers)


def test_payload_ids_are_the_api_global_ids() -> None:
    assert global_id("Job", "abc123") == encode_id("Job", "abc123")
    assert global_id("Asset", "abc12300") == encode_id("Asset", "abc12300")


# ---------------------------------------------------------------- URL vetting


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("http://hooks.example.com/x", "https"),
        ("ftp://hooks.example.com/x", "https"),
        ("https://127.0.0.1/x", "loopback"),
        ("https://127.8.9.10:8443/x", "loopback"),
        ("https://10.1.2.3/x", "private"),
        ("https://172.16.0.1/x", "private"),
        ("https://172.31.255.254/x", "private"),
        ("https://192.168.1.10/x", "private"),
        ("https://169.254.169.254/latest/meta-data/", "metadata"),
        ("https://169.254.1.1/x", "link-local"),
        ("https://[::1]/x", "loopback"),
        ("https://[fd00::1]/x", "private"),
        ("https://[fd00:ec2::254]/x", "metadata"),
        ("https://[fe80::1]/x", "link-local"),
        ("https://[::ffff:127.0.0.1]/x", "loopback"),
        ("https://[::ffff:10.0.0.1]/x", "private"),
        ("https://[64:ff9b::a00:1]/x", "private"),
        ("https://100.64.0.1/x", "not a public"),
        ("https://100.100.100.200/x", "metadata"),
        ("https://0.0.0.0/x", "unspecified"),
        ("https://224.0.0.1/x", "multicast"),
        ("https://internal.example.com/x", "resolves to 10.0.0.5"),
        ("https://metadata.example.com/x", "metadata"),
        ("https://mixed.example.com/x", "resolves to 127.0.0.1"),
        ("https://nowhere.example.com/x", "does not resolve"),
        ("https://user:secret@hooks.example.com/x", "credentials"),
        ("https:///x", "no host"),
        ("https://hooks.example.com:99999/x", "port"),
        ("https://hooks.example.com/" + "a" * 2100, "longer than"),
        ("https://hooks.example.com/a b", "spaces"),
        ("https://hööks.example.com/x", "punycode"),
    ],
)
async def test_unsafe_urls_are_refused(url: str, reason: str) -> None:
    urls = WebhookUrls(FakeSender())
    with pytest.raises(WebhookUrlError) as caught:
        await urls.target(url)
    assert reason in str(caught.value)


@pytest.mark.parametrize(
    ("url", "address"),
    [
        ("https://hooks.example.com/genmedia", PUBLIC),
        ("https://HOOKS.example.com.:8443/x?y=1", PUBLIC),
        ("https://8.8.8.8/x", "8.8.8.8"),
        ("https://v6.example.com/x", "2606:4700::6810:84e5"),
        ("https://[2606:4700::6810:84e5]/x", "2606:4700::6810:84e5"),
    ],
)
async def test_public_https_urls_are_accepted_with_the_address_to_pin(url: str, address: str) -> None:
    target = await WebhookUrls(FakeSender()).target(url)
    assert target.address == address and target.url == url


async def test_allow_private_admits_http_and_local_addresses_for_testing() -> None:
    urls = WebhookUrls(FakeSender(), allow_private=True)
    assert (await urls.target("http://127.0.0.1:8000/x")).address == "127.0.0.1"
    assert (await urls.target("https://internal.example.com/x")).address == "10.0.0.5"
    with pytest.raises(WebhookUrlError, match="https"):
        await urls.target("ftp://127.0.0.1/x")


def test_every_non_public_address_has_a_reason() -> None:
    assert address_problem(PUBLIC) is None
    assert address_problem("2606:4700::6810:84e5") is None
    for address in ("127.0.0.1", "10.0.0.1", "192.0.2.1", "198.18.0.1", "::", "fc00::1", "2001:db8::1"):
        assert address_problem(address) is not None, address


async def test_check_names_the_field_and_keeps_only_final_events() -> None:
    urls = WebhookUrls(FakeSender())
    assert await urls.check({"url": HOOK, "events": None}) == {
        "url": HOOK,
        "events": ["SUCCEEDED", "FAILED", "CANCELLED"],
    }
    assert (await urls.check({"url": HOOK, "events": ["FAILED", "FAILED"]}))["events"] == ["FAILED"]
    cases = [
        ({"url": "https://10.0.0.1/x"}, "input.webhook.url"),
        ({"url": ""}, "input.webhook.url"),
        ({"url": HOOK, "events": []}, "input.webhook.events"),
        ({"url": HOOK, "events": ["RUNNING"]}, "input.webhook.events"),
        ({"url": HOOK, "events": ["DONE"]}, "input.webhook.events"),
    ]
    for webhook, where in cases:
        with pytest.raises(StudioError) as caught:
            await urls.check(webhook)
        assert caught.value.code is ErrorCode.BAD_USER_INPUT and caught.value.details["field"] == where


# ---------------------------------------------------------------- jobs queue deliveries


@dataclass
class Studio:
    docs: SqliteDocStore
    blobs: LocalBlobStore
    desk: JobDesk
    sender: FakeSender
    actor: Actor

    def runner(self, generator: LocalGenerator | None = None, *, max_attempts: int = 3) -> JobRunner:
        return JobRunner(
            self.docs,
            self.blobs,
            generator or LocalGenerator(speed=0),
            build_catalog(Settings()),
            worker_id="w1",
            lease_seconds=5,
            max_attempts=max_attempts,
        )

    def dispatcher(
        self, *, schedule: Sequence[float] = (0, 0, 0), name: str = "d1", timeout: float = 1.0
    ) -> WebhookDispatcher:
        return WebhookDispatcher(
            self.docs, self.sender, secret=SECRET, worker_id=name, schedule=schedule, timeout=timeout
        )

    async def submit(self, events: list[str] | None = None, prompt: str = "a lighthouse", **hook: Any) -> str:
        webhook = {"url": HOOK, "events": events, **hook}
        doc = await self.desk.submit(self.actor, JobKind.IMAGE, {"prompt": prompt}, webhook=webhook)
        return doc.id

    async def deliveries(self, job_id: str) -> list[dict[str, Any]]:
        docs = await deliveries_for(self.docs, self.actor, job_id, self.actor.id)
        return [{"id": doc.id, **doc.data} for doc in docs]

    async def delivery(self, job_id: str) -> dict[str, Any]:
        (delivery,) = await self.deliveries(job_id)
        return delivery


@pytest.fixture
async def studio(tmp_path: Path) -> AsyncIterator[Studio]:
    docs = SqliteDocStore(tmp_path / "studio.db")
    blobs = LocalBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:1", secret=b"s" * 32)
    user = await Directory(docs).put("owner@example.com", role=Role.USER, status=UserStatus.ACTIVE)
    sender = FakeSender()
    desk = JobDesk(docs, DocstoreQueue(docs), build_catalog(Settings()), webhooks=WebhookUrls(sender))
    try:
        yield Studio(docs, blobs, desk, sender, Actor(user))
    finally:
        await docs.close()


async def test_the_webhook_is_kept_on_the_job(studio: Studio) -> None:
    job_id = await studio.submit(["SUCCEEDED"])
    job = await studio.docs.get(JOBS, job_id)
    assert job is not None and job.data["webhook"] == {"url": HOOK, "events": ["SUCCEEDED"]}


async def test_a_refused_url_creates_no_job(studio: Studio) -> None:
    with pytest.raises(StudioError) as caught:
        await studio.desk.submit(
            studio.actor, JobKind.IMAGE, {"prompt": "x"}, webhook={"url": "https://internal.example.com/x"}
        )
    assert caught.value.code is ErrorCode.BAD_USER_INPUT
    assert caught.value.details["field"] == "input.webhook.url"
    assert await studio.docs.count(JOBS) == 0


async def test_a_desk_without_webhooks_refuses_one(studio: Studio) -> None:
    desk = JobDesk(studio.docs, DocstoreQueue(studio.docs), build_catalog(Settings()))
    with pytest.raises(StudioError) as caught:
        await desk.submit(studio.actor, JobKind.IMAGE, {"prompt": "x"}, webhook={"url": HOOK})
    assert caught.value.details["field"] == "input.webhook"


async def test_success_queues_one_delivery_with_the_job_as_the_api_shows_it(studio: Studio) -> None:
    job_id = await studio.submit()
    await studio.runner().run(job_id)
    delivery = await studio.delivery(job_id)
    job = await studio.docs.get(JOBS, job_id)
    assert job is not None
    assert delivery["status"] == "PENDING" and delivery["event"] == "SUCCEEDED"
    assert delivery["attempt_count"] == 0 and delivery["attempts"] == []
    assert delivery["owner_id"] == studio.actor.id and delivery["url"] == HOOK
    payload = delivery["payload"]
    assert payload["type"] == "job.succeeded"
    assert payload["data"] == {
        "id": encode_id("Job", job_id),
        "kind": "IMAGE",
        "status": "SUCCEEDED",
        "model": job.data["model"],
        "progress": 1.0,
        "error": None,
        "assetIds": [encode_id("Asset", a) for a in job.data["asset_ids"]],
        "costUsd": job.data["cost_usd"],
        "finishedAt": from_iso(job.data["finished_at"]).isoformat(),
    }


async def test_statuses_not_chosen_queue_nothing(studio: Studio) -> None:
    job_id = await studio.submit(["FAILED", "CANCELLED"])
    await studio.runner().run(job_id)
    assert await studio.deliveries(job_id) == []


async def test_a_failure_queues_a_failed_delivery_with_the_error(studio: Studio) -> None:
    job_id = await studio.submit(["FAILED"], prompt=f"a lighthouse {BLOCK_MARKER}")
    await studio.runner().run(job_id)
    delivery = await studio.delivery(job_id)
    assert delivery["event"] == "FAILED"
    assert delivery["payload"]["data"]["error"]["code"] == "CONTENT_BLOCKED"


async def test_retried_failures_queue_a_delivery_only_when_the_job_finally_fails(studio: Studio) -> None:
    job_id = await studio.submit()
    runner = studio.runner(LocalGenerator(speed=0, fail_rate=1.0), max_attempts=2)
    await runner.run(job_id)
    assert await studio.deliveries(job_id) == []  # re-queued, not final
    await runner.run(job_id)
    assert (await studio.delivery(job_id))["event"] == "FAILED"


async def test_cancelling_queues_a_cancelled_delivery(studio: Studio) -> None:
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    delivery = await studio.delivery(job_id)
    assert delivery["event"] == "CANCELLED" and delivery["payload"]["data"]["status"] == "CANCELLED"


async def test_the_sweeper_giving_up_queues_a_failed_delivery(studio: Studio) -> None:
    job_id = await studio.submit(["FAILED"])
    await studio.docs.update(
        JOBS,
        job_id,
        {"status": "RUNNING", "attempts": 3, "lease_owner": "dead", "lease_expires_at": now_iso()},
    )
    await asyncio.sleep(0.01)
    assert await studio.runner().sweep() == 1
    assert (await studio.delivery(job_id))["event"] == "FAILED"


async def test_deliveries_are_shown_to_the_owner_and_admins_only(studio: Studio) -> None:
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    directory = Directory(studio.docs)
    stranger = Actor(await directory.put("s@example.com", role=Role.USER, status=UserStatus.ACTIVE))
    admin = Actor(await directory.put("a@example.com", role=Role.ADMIN, status=UserStatus.ACTIVE))
    owner = studio.actor.id
    assert len(await deliveries_for(studio.docs, studio.actor, job_id, owner)) == 1
    assert len(await deliveries_for(studio.docs, admin, job_id, owner)) == 1
    assert await deliveries_for(studio.docs, stranger, job_id, owner) == []
    assert await deliveries_for(studio.docs, None, job_id, owner) == []


# ---------------------------------------------------------------- delivering


async def test_a_delivery_is_posted_signed_to_the_vetted_address_and_recorded(studio: Studio) -> None:
    job_id = await studio.submit()
    await studio.runner().run(job_id)
    assert await studio.dispatcher().deliver_due() == 1
    (post,) = studio.sender.posts
    assert post.url == HOOK and post.address == PUBLIC
    payload = Webhook(SECRET).verify(post.body, post.headers)
    assert payload["data"]["id"] == encode_id("Job", job_id) and payload["type"] == "job.succeeded"
    delivery = await studio.delivery(job_id)
    assert post.headers["webhook-id"] == delivery["id"]
    assert delivery["status"] == "DELIVERED" and delivery["next_attempt_at"] is None
    (attempt,) = delivery["attempts"]
    assert attempt["http_status"] == 200 and attempt["error"] is None and attempt["duration_ms"] >= 0
    assert await studio.dispatcher().deliver_due() == 0


async def test_failures_are_retried_on_the_schedule_then_delivered(studio: Studio) -> None:
    studio.sender.replies = [500, 503, WebhookSendError("could not connect: refused"), 204]
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    dispatcher = studio.dispatcher(schedule=(0, 0, 0))
    for _ in range(4):
        assert await dispatcher.deliver_due() == 1
    delivery = await studio.delivery(job_id)
    assert delivery["status"] == "DELIVERED" and delivery["attempt_count"] == 4
    assert [a["http_status"] for a in delivery["attempts"]] == [500, 503, None, 204]
    assert [a["error"] for a in delivery["attempts"]] == [
        "HTTP 500",
        "HTTP 503",
        "could not connect: refused",
        None,
    ]
    # Every attempt is signed afresh, with the same webhook-id.
    assert len({post.headers["webhook-id"] for post in studio.sender.posts}) == 1


async def test_a_delivery_fails_when_the_schedule_runs_out(studio: Studio) -> None:
    studio.sender.replies = [500] * 10
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    dispatcher = studio.dispatcher(schedule=(0, 0))
    made = [await dispatcher.deliver_due() for _ in range(4)]
    assert made == [1, 1, 1, 0]
    delivery = await studio.delivery(job_id)
    assert delivery["status"] == "FAILED" and delivery["attempt_count"] == 3
    assert delivery["next_attempt_at"] is None


async def test_the_next_attempt_waits_for_its_delay(studio: Studio) -> None:
    studio.sender.replies = [500]
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    dispatcher = studio.dispatcher(schedule=(60,))
    assert await dispatcher.deliver_due() == 1
    assert await dispatcher.deliver_due() == 0
    delivery = await studio.delivery(job_id)
    wait = from_iso(delivery["next_attempt_at"]) - datetime.now(UTC)
    assert timedelta(seconds=55) < wait <= timedelta(seconds=60)


async def test_a_redirect_counts_as_a_failure_and_is_not_followed(studio: Studio) -> None:
    studio.sender.replies = [302]
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    await studio.dispatcher().deliver_due()
    (attempt,) = (await studio.delivery(job_id))["attempts"]
    assert attempt["http_status"] == 302 and "redirects are not followed" in attempt["error"]
    assert len(studio.sender.posts) == 1


async def test_a_receiver_that_hangs_times_out_and_is_retried(studio: Studio) -> None:
    studio.sender.replies = ["hang", 200]
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    dispatcher = studio.dispatcher(timeout=0.2)
    assert await asyncio.wait_for(dispatcher.deliver_due(), 5) == 1
    assert await dispatcher.deliver_due() == 1
    delivery = await studio.delivery(job_id)
    first, second = delivery["attempts"]
    assert "timed out" in first["error"] and first["http_status"] is None
    assert 150 <= first["duration_ms"] < 2000
    assert delivery["status"] == "DELIVERED" and second["http_status"] == 200


async def test_an_address_that_turned_private_is_refused_at_send_time(studio: Studio) -> None:
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    studio.sender.hosts["hooks.example.com"] = ["127.0.0.1"]  # DNS rebinding after the check at submit
    await studio.dispatcher().deliver_due()
    (attempt,) = (await studio.delivery(job_id))["attempts"]
    assert attempt["error"].startswith("refused:") and "loopback" in attempt["error"]
    assert studio.sender.posts == []


async def test_many_dispatchers_at_once_make_one_attempt(studio: Studio) -> None:
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    dispatchers = [studio.dispatcher(name=f"d{i}") for i in range(6)]
    made = await asyncio.gather(*(d.deliver_due() for d in dispatchers))
    assert sum(made) == 1 and len(studio.sender.posts) == 1
    assert (await studio.delivery(job_id))["attempt_count"] == 1


async def test_an_attempt_in_flight_is_leased_and_released_on_shutdown(studio: Studio) -> None:
    studio.sender.replies = ["hang", 200]
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    first = studio.dispatcher(name="first", timeout=20)
    flight = asyncio.create_task(first.deliver_due())
    while not studio.sender.posts:
        await asyncio.sleep(0.01)
    second = studio.dispatcher(name="second")
    assert await second.deliver_due() == 0, "another worker's attempt is in flight"
    flight.cancel()
    await asyncio.gather(flight, return_exceptions=True)
    assert await second.deliver_due() == 1, "released at shutdown: due at once"
    delivery = await studio.delivery(job_id)
    assert delivery["status"] == "DELIVERED" and delivery["attempt_count"] == 1


async def test_the_run_loop_delivers_what_becomes_due(studio: Studio) -> None:
    dispatcher = WebhookDispatcher(
        studio.docs, studio.sender, secret=SECRET, worker_id="loop", schedule=(0.05,), poll_seconds=0.02
    )
    studio.sender.replies = [500, 200]
    loop = asyncio.create_task(dispatcher.run())
    try:
        job_id = await studio.submit()
        await studio.desk.cancel(studio.actor, job_id)
        async with asyncio.timeout(5):
            while (await studio.delivery(job_id))["status"] == "PENDING":
                await asyncio.sleep(0.02)
    finally:
        loop.cancel()
        await asyncio.gather(loop, return_exceptions=True)
    assert (await studio.delivery(job_id))["attempt_count"] == 2


async def test_deliveries_live_in_their_own_collection(studio: Studio) -> None:
    job_id = await studio.submit()
    await studio.desk.cancel(studio.actor, job_id)
    assert await studio.docs.count(WEBHOOK_DELIVERIES) == 1


# ---------------------------------------------------------------- the HTTP adapter


class _Receiver(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, bytes]] = []
    status = 200

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        self.seen.append((self.path, self.headers.get("host", ""), body))
        self.send_response(self.status)
        if self.status in (301, 302, 307, 308):
            self.send_header("location", "/elsewhere")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[int, type[_Receiver]]]:
    handler = type("Handler", (_Receiver,), {"seen": [], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], handler
    finally:
        server.shutdown()
        server.server_close()


async def test_the_sender_connects_to_the_pinned_address_whatever_the_host_name(
    receiver: tuple[int, type[_Receiver]],
) -> None:
    port, handler = receiver
    url = f"http://pinned.invalid:{port}/hook"  # .invalid never resolves: only the pin can reach it
    status = await HttpWebhookSender().post(url, "127.0.0.1", b"{}", {"webhook-id": "m"}, timeout=2)
    assert status == 200
    assert handler.seen == [("/hook", f"pinned.invalid:{port}", b"{}")]


async def test_the_sender_never_follows_a_redirect(receiver: tuple[int, type[_Receiver]]) -> None:
    port, handler = receiver
    handler.status = 302
    status = await HttpWebhookSender().post(f"http://127.0.0.1:{port}/a", "127.0.0.1", b"{}", {}, timeout=2)
    assert status == 302 and [path for path, _, _ in handler.seen] == ["/a"]


async def test_the_sender_reports_a_refused_connection_and_an_unknown_host() -> None:
    sender = HttpWebhookSender()
    with pytest.raises(WebhookSendError, match="could not connect"):
        await sender.post("http://127.0.0.1:1/x", "127.0.0.1", b"{}", {}, timeout=2)
    with pytest.raises(WebhookSendError, match="does not resolve"):
        await sender.resolve("nothing.invalid", 443)
    assert "127.0.0.1" in await sender.resolve("127.0.0.1", 443)
