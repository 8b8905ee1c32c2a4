"""Teams and sharing at the domain level on every docstore: the same answers from SQLite and Firestore.

The reads here (memberships by user, members by team in join order, a library scoped by the
`readers` array together with search terms, usage by team) are the ones Firestore answers
partly natively and partly in memory; running them on both stores keeps the two alike.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from backends.blobs.localfs import LocalBlobStore
from backends.generators.local import LocalGenerator
from backends.queue.docstore import DocstoreQueue
from config import Settings
from domain.access import Actor
from domain.admin import AuditLog, RequestInfo
from domain.desk import JobDesk
from domain.errors import ErrorCode, StudioError
from domain.jobs import JobKind
from domain.library import AssetFilter, AssetSort, Library
from domain.pages import PageRequest
from domain.ports import DocStore
from domain.runner import JobRunner
from domain.sharing import Sharing
from domain.teams import TeamRole, Teams, team_roles
from domain.usage import UsageLedger
from domain.users import Directory, Role, UserStatus
from tests.contract.test_docstore import DOC_BACKENDS
from wiring import build_catalog

ASKED = RequestInfo("contract")


@dataclass
class Studio:
    docs: DocStore
    directory: Directory
    teams: Teams
    library: Library
    sharing: Sharing
    desk: JobDesk
    runner: JobRunner

    async def person(self, name: str) -> Actor:
        user = await self.directory.put(f"{name}@example.com", role=Role.USER, status=UserStatus.ACTIVE)
        return await self.fresh(Actor(user))

    async def fresh(self, actor: Actor) -> Actor:
        """The actor as the next request would see it (the Authenticator reloads the teams)."""
        return Actor(actor.user, teams=await team_roles(self.docs, actor.id))

    async def image(self, actor: Actor, prompt: str, team_id: str | None = None) -> str:
        job = await self.desk.submit(actor, JobKind.IMAGE, {"prompt": prompt}, team_id=team_id)
        await self.runner.run(job.id)
        done = await self.desk.get(actor, job.id)
        return str(done.data["asset_ids"][0])

    async def listed(self, actor: Actor, **scope: Any) -> list[str]:
        page = await self.library.list(actor, AssetFilter(**scope), AssetSort(), PageRequest(first=50))
        assert await page.total() == len(page.items)
        return [doc.id for doc in page.items]


@pytest.fixture(params=sorted(DOC_BACKENDS))
async def studio(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Studio]:
    backend = DOC_BACKENDS[request.param]
    for name in backend.fixtures:
        request.getfixturevalue(name)
    database = backend.new_database(tmp_path)
    docs = backend.connect(database)
    directory = Directory(docs)
    audit = AuditLog(docs)
    teams = Teams(docs, directory, audit)
    library = Library(docs)
    catalog = build_catalog(Settings.model_construct())
    blobs = LocalBlobStore(tmp_path / "blobs", base_url="http://127.0.0.1:1", secret=b"s" * 32)
    runner = JobRunner(
        docs, blobs, LocalGenerator(speed=0), catalog, worker_id="w", lease_seconds=5, max_attempts=3
    )
    try:
        yield Studio(
            docs,
            directory,
            teams,
            library,
            Sharing(docs, library, directory, teams, audit),
            JobDesk(docs, DocstoreQueue(docs), catalog),
            runner,
        )
    finally:
        await docs.close()
        if backend.drop_database is not None:
            backend.drop_database(database)


async def test_members_roles_and_the_last_owner(studio: Studio) -> None:
    owner = await studio.person("owner")
    team = await studio.teams.create(owner, "Keepers", ASKED)
    for name, role in (("ed", TeamRole.EDITOR), ("vi", TeamRole.VIEWER), ("ow", TeamRole.OWNER)):
        await studio.teams.add_member(owner, team.doc.id, f"{name}@example.com", role, ASKED)
    editor = await studio.person("ed")
    assert editor.teams == {team.doc.id: "EDITOR"}
    page = await studio.teams.members(team, PageRequest(first=3))
    assert [doc.data["role"] for doc in page.items] == ["OWNER", "EDITOR", "VIEWER"] and page.has_next
    assert await page.total() == 4
    rest = await studio.teams.members(team, PageRequest(first=3, after=page.cursors[-1]))
    assert [doc.data["role"] for doc in rest.items] == ["OWNER"] and not rest.has_next
    second_owner = rest.items[0].data["user_id"]
    await studio.teams.remove_member(owner, team.doc.id, second_owner, ASKED)
    with pytest.raises(StudioError) as refused:
        await studio.teams.set_role(owner, team.doc.id, owner.id, TeamRole.EDITOR, ASKED)
    assert refused.value.code is ErrorCode.CONFLICT


async def test_team_work_is_listed_for_members_with_search_and_for_nobody_else(studio: Studio) -> None:
    owner, stranger = await studio.person("owner"), await studio.person("stranger")
    team = await studio.teams.create(owner, "Keepers", ASKED)
    await studio.teams.add_member(owner, team.doc.id, "vi@example.com", TeamRole.VIEWER, ASKED)
    owner, reader = await studio.fresh(owner), await studio.person("vi")
    lamp = await studio.image(owner, "a keeper's lamp", team.doc.id)
    await studio.image(owner, "a keeper's boat", team.doc.id)
    mine = await studio.image(owner, "a lamp of my own")
    listed = await studio.listed(reader, team_id=team.doc.id)
    assert lamp in listed and mine not in listed and len(listed) == 2
    assert await studio.listed(reader, team_id=team.doc.id, search="lamp") == [lamp]
    assert len(await studio.listed(owner)) == 3  # the caller's own library holds what they made in teams too
    with pytest.raises(StudioError) as hidden:
        await studio.listed(stranger, team_id=team.doc.id)
    assert hidden.value.code is ErrorCode.NOT_FOUND
    start = datetime.now(UTC) - timedelta(days=1)
    report = await UsageLedger(studio.docs).report(
        owner, start, start + timedelta(days=2), ["TEAM"], None, team.doc.id
    )
    assert report.totals.images == 2 and [row.key for row in report.rows] == [[team.doc.id]]


async def test_shared_assets_are_listed_for_the_grantee_until_unshared(studio: Studio) -> None:
    owner, friend = await studio.person("owner"), await studio.person("friend")
    lamp = await studio.image(owner, "a lamp to share")
    await studio.image(owner, "a lamp to keep")
    await studio.sharing.share(owner, lamp, ASKED, with_email="friend@example.com")
    assert await studio.listed(friend, shared_with_me=True) == [lamp]
    assert await studio.listed(friend, shared_with_me=True, search="lamp") == [lamp]
    assert await studio.listed(owner, shared_with_me=True) == []  # their own assets are not "shared with me"
    await studio.sharing.unshare(owner, lamp, ASKED, user_id=friend.id)
    assert await studio.listed(friend, shared_with_me=True) == []
