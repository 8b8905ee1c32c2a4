"""Sharing an asset with a person or a team: an entry in the asset's denormalised `readers` array."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from domain.access import Actor, can_edit, require_active
from domain.admin import AuditLog, RequestInfo
from domain.assets import ASSETS
from domain.errors import ErrorCode, StudioError, bad_input, conflict, forbidden, not_found
from domain.library import Library
from domain.ports import DocStore, Document, Transaction
from domain.teams import Teams
from domain.users import Directory, normalise_email


def _one_target(first: str | None, second: str | None, names: tuple[str, str]) -> None:
    if first is None and second is None:
        raise bad_input(names[0], f"name whom to share with: {names[0]} or {names[1]}")
    if first is not None and second is not None:
        raise bad_input(names[1], f"pass either {names[0]} or {names[1]}, not both")


class Sharing:
    """Grants and withdraws read access to assets; only those who may edit an asset share it."""

    def __init__(
        self, docs: DocStore, library: Library, directory: Directory, teams: Teams, audit: AuditLog
    ) -> None:
        self._docs = docs
        self._library = library
        self._directory = directory
        self._teams = teams
        self._audit = audit

    async def share(
        self,
        actor: Actor | None,
        asset_id: str,
        request: RequestInfo,
        *,
        with_email: str | None = None,
        with_team_id: str | None = None,
    ) -> Document:
        """Let a person (by email) or a team read the asset. An address without an account gets its
        user record now, as its first sign-in would make it, so the answer never tells whether it existed."""
        _one_target(with_email, with_team_id, ("withUserEmail", "withTeamId"))
        address = None
        if with_email is not None:
            try:
                address = normalise_email(with_email)
            except StudioError:
                raise bad_input("withUserEmail", "not an email address") from None

        async def work(who: Actor) -> tuple[Document, str]:
            await self._editable(who, asset_id)
            if address is not None:
                tag = f"user:{(await self._directory.sign_in(address)).id}"
            else:
                assert with_team_id is not None
                await self._teams.get(who, with_team_id)  # NOT_FOUND unless the sharer is in it (or admin)
                tag = f"team:{with_team_id}"
            return await self._change_readers(asset_id, tag, add=True), tag

        return await self._audited("asset.share", actor, asset_id, request, work)

    async def unshare(
        self,
        actor: Actor | None,
        asset_id: str,
        request: RequestInfo,
        *,
        user_id: str | None = None,
        team_id: str | None = None,
    ) -> Document:
        """Withdraw a person's or a team's access; the owner and the asset's own team always keep theirs."""
        _one_target(user_id, team_id, ("userId", "teamId"))
        tag = f"user:{user_id}" if user_id is not None else f"team:{team_id}"

        async def work(who: Actor) -> tuple[Document, str]:
            doc = await self._editable(who, asset_id)
            if user_id is not None and user_id == doc.data.get("owner_id"):
                raise conflict("The owner always sees their own asset.")
            if team_id is not None and team_id == doc.data.get("team_id"):
                raise conflict("The asset belongs to this team; its members always see it.")
            return await self._change_readers(asset_id, tag, add=False), tag

        return await self._audited("asset.unshare", actor, asset_id, request, work)

    async def _editable(self, who: Actor, asset_id: str) -> Document:
        doc = await self._library.get(who, asset_id)
        if not can_edit(who, doc.data):
            raise forbidden("Only those who may edit this asset may share it.")
        return doc

    async def _change_readers(self, asset_id: str, tag: str, *, add: bool) -> Document:
        async def write(tx: Transaction) -> None:
            current = await tx.get(ASSETS, asset_id)
            if current is None:
                raise not_found("asset", asset_id)
            readers = list(current.data.get("readers") or [])
            if add and tag not in readers:
                readers.append(tag)
            elif not add and tag in readers:
                readers.remove(tag)
            else:
                return
            tx.update(ASSETS, asset_id, {"readers": readers})

        await self._docs.run_transaction(write)
        doc = await self._docs.get(ASSETS, asset_id)
        if doc is None:
            raise not_found("asset", asset_id)
        return doc

    async def _audited(
        self,
        action: str,
        actor: Actor | None,
        asset_id: str,
        request: RequestInfo,
        work: Callable[[Actor], Awaitable[tuple[Document, str]]],
    ) -> Document:
        actor_id = actor.id if actor is not None else None
        try:
            doc, tag = await work(require_active(actor))
        except StudioError as error:
            denied = error.code in (ErrorCode.FORBIDDEN, ErrorCode.NOT_FOUND, ErrorCode.UNAUTHENTICATED)
            await self._audit.record(
                action,
                actor_id=actor_id,
                target=asset_id,
                outcome="denied" if denied else "error",
                request=request,
                details={"code": error.code.value, "reason": error.message},
            )
            raise
        await self._audit.record(
            action, actor_id=actor_id, target=asset_id, outcome="ok", request=request, details={"reader": tag}
        )
        return doc
