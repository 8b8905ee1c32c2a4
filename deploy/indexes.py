"""Derive firestore.indexes.json from the reads the studio really makes, and print it.

Runs the studio's read paths on a throwaway embedded store — the asset library with every filter
and sort the API offers, paged both ways, with its total count; the job list; usage reports; the
lease sweeper; the sweep of expired uploads; API keys; webhook deliveries; the queue's watch; the myJobs
subscription; teams, their members and libraries, and what is shared — records every read, replays
the reads through the Firestore adapter to see what it would send, and prints the composite indexes
Firestore needs for them:

    .venv/bin/python deploy/indexes.py > deploy/firestore.indexes.json

tests/unit/test_firestore_indexes.py fails when the file and this derivation disagree. A new read
path (a new list, filter, sort or watch) belongs in `drive_reads` below.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import tempfile
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any, cast

from backends.blobs.localfs import LocalBlobStore
from backends.docstore.indexes import (
    Read,
    RecordingDocStore,
    RequiredIndex,
    index_file,
    required_index,
    sent_queries,
)
from backends.docstore.sqlite import SqliteDocStore
from backends.generators.local import LocalGenerator
from backends.media_probe import inspect_media
from backends.queue.docstore import DocstoreQueue
from config import Settings
from domain.access import Actor
from domain.admin import Admin, AuditLog, RequestInfo
from domain.apikeys import ApiKeys
from domain.assets import ASSETS
from domain.batches import Batches, BatchItem
from domain.catalog import Catalog
from domain.collections import Collections
from domain.desk import JobDesk
from domain.forecast import QueueForecast
from domain.jobs import JobKind
from domain.library import KINDS, SORT_FIELDS, AssetFilter, AssetSort, Library
from domain.pages import Page, PageRequest
from domain.ports import Document
from domain.redelivery import WaitingJobs
from domain.runner import JobRunner
from domain.sharing import Sharing
from domain.teams import TeamRole, Teams, team_roles
from domain.trash import Trash
from domain.uploads import Uploads
from domain.usage import GROUPS, UsageLedger
from domain.users import Directory, Role, UserStatus
from domain.versions import derivatives_of
from domain.webhook_urls import secret_from_bytes
from domain.webhooks import WebhookDispatcher, deliveries_for
from domain.workflow_runs import WorkflowRuns
from domain.workflows import Workflows
from wiring import build_catalog

INDEX_FILE = Path(__file__).resolve().parent / "firestore.indexes.json"


class _NoNetwork:
    """A webhook sender for a run that has nothing to deliver."""

    async def resolve(self, host: str, port: int) -> Sequence[str]:
        raise RuntimeError("no webhook is sent while indexes are derived")

    async def post(
        self, url: str, address: str, body: bytes, headers: Mapping[str, str], *, timeout: float
    ) -> int:
        raise RuntimeError("no webhook is sent while indexes are derived")


async def _pages(read: Callable[[PageRequest], Awaitable[Page]], *, backward: bool = True) -> None:
    """A first page each way the API pages, the page after it, and the total count."""
    first = await read(PageRequest(first=2))
    if first.cursors:
        await read(PageRequest(first=2, after=first.cursors[-1]))
    await first.total()
    if backward:
        last = await read(PageRequest(last=2))
        if last.cursors:
            await read(PageRequest(last=2, before=last.cursors[0]))


async def _until_watched(docs: RecordingDocStore, start: int, task: asyncio.Task[Any]) -> None:
    """Wait until `task` has opened a watch, then stop it."""
    try:
        async with asyncio.timeout(5):
            while not any(read.kind == "watch" for read in docs.reads[start:]):
                await asyncio.sleep(0.01)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def _library(library: Library, owner: Actor, model: str, **scope: Any) -> None:
    """Every kind of filter the `assets` field offers, alone and together, under every sort, over one
    scope (the caller's own assets, a team's, or those shared with the caller)."""
    now = datetime.now(UTC)
    after, before = (now - timedelta(days=1)).isoformat(), (now + timedelta(days=1)).isoformat()
    kinds: Sequence[list[str] | None] = (None, ["IMAGE"], list(KINDS))  # all kinds: no filter at all
    models = (None, model)
    created = ((None, None), (after, None), (None, before), (after, before))
    words: Sequence[dict[str, Any]] = (
        {},
        {"search": "lighthouse"},
        {"tags": ["coast"]},
        {"favorite": True},
        {"favorite": False},
        {"search": "light", "tags": ["coast"], "favorite": False},
    )
    sorts = [AssetSort(field, descending) for field in SORT_FIELDS for descending in (True, False)]
    for kind, model_id, (start, end), word, deleted in itertools.product(
        kinds, models, created, words, (False, True)
    ):
        given = AssetFilter(
            kinds=kind,
            model=model_id,
            created_after=start,
            created_before=end,
            deleted=deleted,
            **word,
            **scope,
        )
        for sort in sorts:
            await _pages(partial(library.list, owner, given, sort))


async def _collections_and_trash(
    docs: RecordingDocStore, blobs: LocalBlobStore, owner: Actor, admin: Actor, asset_id: str
) -> None:
    """Collections listed and paged, a collection's assets, the library filtered by one, derivatives,
    the trash and its purge."""
    collections = Collections(docs)
    made = await collections.create(owner, "coast", None, None)
    await collections.add(owner, made.id, [asset_id])
    await _pages(partial(collections.list, owner, None), backward=False)

    async def load(ids: list[str]) -> list[Document | None]:
        return await docs.get_many(ASSETS, ids)

    await _pages(partial(collections.assets_page, owner, made, load=load), backward=False)
    await _pages(
        partial(Library(docs).list, owner, AssetFilter(collection_id=made.id), AssetSort()), backward=False
    )
    await derivatives_of(docs, owner, [asset_id])
    trash = Trash(docs, blobs, AuditLog(docs))
    await trash.delete(owner, asset_id, RequestInfo("indexes"))
    await trash.restore(owner, asset_id, RequestInfo("indexes"))
    await trash.purge(admin, 0, RequestInfo("indexes"), dry_run=True)
    await collections.delete(owner, made.id)


async def _workflows(
    docs: RecordingDocStore, desk: JobDesk, catalog: Catalog, directory: Directory, user: Actor
) -> None:
    """Workflow lists (the caller's and a team's), a workflow's runs, the re-check and the follower's watch."""
    workflows = Workflows(docs, catalog)
    runs = WorkflowRuns(docs, desk, workflows, directory)
    draft = {"name": "w", "nodes": [{"id": "t", "kind": "TEXT", "input": {"prompt": "hi"}}], "edges": []}
    saved = await workflows.create(user, draft)
    await workflows.clone(user, saved.id, None)
    member = Actor(user.user, teams={"team1": "EDITOR"})
    await workflows.create(member, draft | {"teamId": "team1"})
    for team_id in (None, "team1"):
        first = await workflows.list(member, team_id, 1, None)
        await workflows.list(member, team_id, 1, first[-1].id)
    await runs.start(user, saved.id)
    await _pages(partial(runs.runs_of, saved), backward=False)
    await runs.recheck()
    mark = len(docs.reads)
    await _until_watched(docs, mark, asyncio.create_task(runs.follow()))


async def drive_reads(docs: RecordingDocStore, workdir: Path) -> None:
    """Run every read path of the studio against `docs`."""
    settings = Settings.model_construct()  # the defaults, whatever the environment says
    catalog = build_catalog(settings)
    blobs = LocalBlobStore(workdir / "blobs", base_url="http://127.0.0.1:1", secret=b"s" * 32)
    directory = Directory(docs)
    user = Actor(await directory.put("owner@example.com", role=Role.USER, status=UserStatus.ACTIVE))
    admin = Actor(await directory.put("admin@example.com", role=Role.ADMIN, status=UserStatus.ACTIVE))
    queue = DocstoreQueue(docs)
    desk = JobDesk(docs, queue, catalog)
    runner = JobRunner(
        docs, blobs, LocalGenerator(speed=0), catalog, worker_id="indexes", lease_seconds=5, max_attempts=3
    )
    library = Library(docs)

    # Something to find: a finished image and text, a favorite with a tag, and a queued job.
    for kind in (JobKind.IMAGE, JobKind.TEXT):
        job = await desk.submit(user, kind, {"prompt": "a lighthouse on the coast"})
        await runner.run(job.id)
    page = await library.list(user, AssetFilter(), AssetSort(), PageRequest(first=1))
    await library.update(user, page.items[0].id, tags=["coast"], favorite=True)
    queued = await desk.submit(
        user, JobKind.IMAGE, {"prompt": "a harbour at night"}, idempotency_key="harbour-1"
    )

    await _library(library, user, settings.model_image)
    await _collections_and_trash(docs, blobs, user, admin, page.items[0].id)

    # Teams: the Actor's memberships, a team's members, its library, and what others shared.
    teams = Teams(docs, directory, AuditLog(docs))
    team = await teams.create(user, "Lighthouse keepers", RequestInfo("indexes"))
    await teams.add_member(user, team.doc.id, "admin@example.com", TeamRole.EDITOR, RequestInfo("indexes"))
    member = Actor(user.user, teams=await team_roles(docs, user.id))
    await _pages(partial(teams.members, team), backward=False)
    team_job = await desk.submit(member, JobKind.IMAGE, {"prompt": "a keeper's lamp"}, team_id=team.doc.id)
    await runner.run(team_job.id)
    sharing = Sharing(docs, library, directory, teams, AuditLog(docs))
    await sharing.share(member, page.items[0].id, RequestInfo("indexes"), with_email="admin@example.com")
    await _library(library, member, settings.model_image, team_id=team.doc.id)
    await _library(library, admin, settings.model_image, shared_with_me=True)

    statuses: Sequence[list[str] | None] = (None, ["QUEUED"], ["QUEUED", "RUNNING", "SUCCEEDED"])
    job_kinds: Sequence[list[str] | None] = (None, ["IMAGE"], ["IMAGE", "TEXT"])
    for status, job_kind in itertools.product(statuses, job_kinds):
        # The `jobs` field pages forward only.
        await _pages(partial(desk.list, user, statuses=status, kinds=job_kind), backward=False)

    for status, job_kind in itertools.product(statuses, job_kinds):
        await _pages(
            partial(desk.list, member, statuses=status, kinds=job_kind, team_id=team.doc.id), backward=False
        )

    batch = await Batches(docs, desk, queue).submit(
        user,
        [BatchItem(JobKind.IMAGE, {"prompt": "a beacon"}), BatchItem(JobKind.VIDEO, {"prompt": "waves"})],
    )
    for status, job_kind in itertools.product(statuses, job_kinds):
        await _pages(
            partial(desk.list, user, statuses=status, kinds=job_kind, batch_id=batch.id), backward=False
        )

    ledger = UsageLedger(docs)
    start, end = datetime.now(UTC) - timedelta(days=30), datetime.now(UTC) + timedelta(days=1)
    for actor, user_id in ((user, None), (user, user.id), (admin, None), (admin, user.id)):
        for groups in ((), GROUPS):
            await ledger.report(actor, start, end, list(groups), user_id)
    await ledger.totals(user.id, start, end)
    for groups in ((), GROUPS):
        await ledger.report(member, start, end, list(groups), None, team.doc.id)
        await ledger.report(member, start, end, list(groups), admin.id, team.doc.id)
    await ledger.team_totals(team.doc.id, start, end)

    audit = AuditLog(docs)
    admin_desk = Admin(docs, directory, audit)
    await admin_desk.set_role(admin, user.id, Role.USER, RequestInfo("indexes"))
    for status_filter in (None, UserStatus.ACTIVE):
        await admin_desk.list_users(admin, status=status_filter, first=1, after=None)
        await admin_desk.list_users(admin, status=status_filter, first=1, after=user.id)
    for action, actor_id in itertools.product((None, "user.role.set"), (None, admin.id)):
        await _pages(partial(audit.list, admin, action=action, actor_id=actor_id), backward=False)

    api_keys = ApiKeys(docs, audit)
    await api_keys.create(user, "indexes", None, None, RequestInfo("indexes"))
    await api_keys.list_for(user)

    await runner.sweep()
    await Uploads(docs, blobs, inspect_media).sweep()

    await WaitingJobs(docs, queue, after_seconds=1).redeliver()

    forecast = QueueForecast(docs, ttl_seconds=0)
    await forecast.eta_seconds(settings.model_image, await forecast.position(queued.data["created_at"]))
    await forecast.eta_seconds("a-model-never-run", 3)

    dispatcher = WebhookDispatcher(
        docs, _NoNetwork(), secret=secret_from_bytes(b"k" * 32), worker_id="indexes"
    )
    await dispatcher.deliver_due()
    await deliveries_for(docs, user, queued.id, user.id)

    await _workflows(docs, desk, catalog, directory, user)

    async def nothing(job_id: str) -> None:
        """The queue's handler: only its watch matters here."""

    mark = len(docs.reads)
    await _until_watched(docs, mark, asyncio.create_task(queue.serve(nothing, concurrency=1)))

    from resolvers.subscriptions import my_jobs
    from schema.scalars import JobStatus

    for wanted in (None, [JobStatus.QUEUED]):
        info = SimpleNamespace(context=SimpleNamespace(actor=user, services=SimpleNamespace(docs=docs)))
        events = my_jobs(cast(Any, info), wanted)

        async def first_event(events: AsyncGenerator[Any, None] = events) -> None:
            await anext(events)

        mark = len(docs.reads)
        try:
            await _until_watched(docs, mark, asyncio.create_task(first_event()))
        finally:
            await events.aclose()


async def record_reads() -> list[Read]:
    """The reads the studio makes, recorded on a throwaway embedded store."""
    with tempfile.TemporaryDirectory(prefix="genmedia-indexes-") as tmp:
        docs = RecordingDocStore(SqliteDocStore(Path(tmp) / "studio.db"))
        try:
            await drive_reads(docs, Path(tmp))
        finally:
            await docs.close()
        return docs.reads


async def required_indexes() -> list[RequiredIndex]:
    """The composite indexes Firestore needs for the studio's reads, one per distinct need."""
    needed = [required_index(sent) for sent in await sent_queries(await record_reads())]
    return list({n.key: n for n in needed if n is not None}.values())


def main() -> None:
    document = index_file(asyncio.run(required_indexes()))
    print(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()
