"""Saved workflows: graphs of generation steps people keep, share with a team, clone and run.

Who may do what: a personal workflow is its owner's (and readable by administrators); a team
workflow is readable by every member and changed or run by the team's OWNERs and EDITORs. Viewers
(Role.VIEWER) read, never create, change or run. Deleting is the owner's or an administrator's; it
hides the workflow and keeps its runs and their jobs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from domain.access import Actor, require_active, require_generate
from domain.catalog import Catalog
from domain.clock import new_id, now_iso
from domain.errors import bad_input, forbidden, not_found
from domain.pages import PageRequest, check_page_size, encode_cursor, paginate
from domain.ports import DocStore, Document, Filter, Order, Transaction
from domain.requests import InputLimits
from domain.workflow_graph import MAX_NAME_CHARS, WorkflowGraph, check_name, check_workflow

WORKFLOWS = "workflows"
TEAM_EDITORS = frozenset({"OWNER", "EDITOR"})


def may_read(actor: Actor, data: Mapping[str, Any]) -> bool:
    """Owner, administrators, and any member of the workflow's team."""
    if actor.user.is_admin or data.get("owner_id") == actor.id:
        return True
    team_id = data.get("team_id")
    return bool(team_id) and actor.team_role(str(team_id)) is not None


def may_change(actor: Actor, data: Mapping[str, Any]) -> bool:
    """Owner, administrators, and the team's OWNERs and EDITORs: who may edit and run it."""
    if actor.user.is_admin or data.get("owner_id") == actor.id:
        return True
    team_id = data.get("team_id")
    return bool(team_id) and actor.team_role(str(team_id)) in TEAM_EDITORS


def _check_team(actor: Actor, team_id: str | None) -> None:
    """A workflow goes into a team only by one of its OWNERs or EDITORs."""
    if team_id is None:
        return
    role = actor.team_role(team_id)
    if role is None:
        raise not_found("Team", team_id)
    if role not in TEAM_EDITORS:
        raise forbidden("Team viewers cannot add workflows to the team.")


class Workflows:
    """Creates, changes, copies, hides and finds workflows, always through the caller's rights."""

    def __init__(
        self,
        docs: DocStore,
        catalog: Catalog,
        *,
        limits: InputLimits = InputLimits(),
        max_nodes: int = 50,
        max_page_size: int = 100,
    ) -> None:
        self._docs = docs
        self._catalog = catalog
        self._limits = limits
        self._max_nodes = max_nodes
        self._max_page_size = max_page_size

    def check(self, draft: Mapping[str, Any]) -> WorkflowGraph:
        """The draft checked by the graph rules and each node's generation rules."""
        return check_workflow(draft, self._catalog, self._limits, max_nodes=self._max_nodes)

    async def create(self, actor: Actor | None, draft: Mapping[str, Any]) -> Document:
        who = require_generate(actor)
        graph = self.check(draft)
        team_id = draft.get("teamId")
        _check_team(who, team_id)
        return await self._docs.create(WORKFLOWS, new_id(), self._fields(graph, who.id, team_id))

    async def get(self, actor: Actor | None, workflow_id: str) -> Document:
        """A workflow the caller may read; NOT_FOUND otherwise, and once deleted."""
        who = require_active(actor)
        doc = await self._docs.get(WORKFLOWS, workflow_id)
        if doc is None or doc.data.get("deleted") or not may_read(who, doc.data):
            raise not_found("Workflow", workflow_id)
        return doc

    async def get_any(self, workflow_id: str) -> Document | None:
        """The stored workflow, deleted or not: what a run was made from."""
        return await self._docs.get(WORKFLOWS, workflow_id)

    async def update(self, actor: Actor | None, workflow_id: str, draft: Mapping[str, Any]) -> Document:
        """Replace name, description, team, nodes and edges; runs already made keep their own copy."""
        who = require_generate(actor)
        graph = self.check(draft)
        current = await self.get(who, workflow_id)
        if not may_change(who, current.data):
            raise forbidden("Only the workflow's owner and its team's owners and editors may change it.")
        team_id = draft.get("teamId")
        if team_id != current.data.get("team_id"):
            if not (who.user.is_admin or current.data.get("owner_id") == who.id):
                raise forbidden("Only the workflow's owner may move it to another team.")
            _check_team(who, team_id)
        changes = self._fields(graph, current.data["owner_id"], team_id)
        changes.pop("created_at")
        return await self._docs.update(WORKFLOWS, workflow_id, changes, if_version=current.version)

    async def clone(self, actor: Actor | None, workflow_id: str, name: str | None) -> Document:
        """A personal copy of a workflow the caller may read, named `name` or "<name> (copy)"."""
        who = require_generate(actor)
        given = check_name(name, "name") if name is not None else None
        source = await self.get(who, workflow_id)
        data = source.data
        copy_name = given or f"{data['name']} (copy)"[:MAX_NAME_CHARS]
        graph = WorkflowGraph(copy_name, data.get("description"), data["nodes"], data["edges"])
        return await self._docs.create(WORKFLOWS, new_id(), self._fields(graph, who.id, None))

    async def delete(self, actor: Actor | None, workflow_id: str) -> bool:
        """Hide the workflow from everyone; its runs and their jobs stay. Deleting twice is harmless."""
        who = require_generate(actor)
        doc = await self._docs.get(WORKFLOWS, workflow_id)
        if doc is None or not may_read(who, doc.data):
            raise not_found("Workflow", workflow_id)
        if not (who.user.is_admin or doc.data.get("owner_id") == who.id):
            raise forbidden("Only the workflow's owner or an administrator may delete it.")

        async def hide(tx: Transaction) -> None:
            current = await tx.get(WORKFLOWS, workflow_id)
            if current is not None and not current.data.get("deleted"):
                now = now_iso()
                tx.update(WORKFLOWS, workflow_id, {"deleted": True, "deleted_at": now, "updated_at": now})

        await self._docs.run_transaction(hide)
        return True

    async def list(
        self, actor: Actor | None, team_id: str | None, first: int | None, after: str | None
    ) -> list[Document]:
        """The caller's workflows, or a team's (members only), newest first; `after` is a workflow id."""
        who = require_active(actor)
        check_page_size(PageRequest(first=first), self._max_page_size)
        if team_id is not None and not who.user.is_admin and who.team_role(team_id) is None:
            raise not_found("Team", team_id)
        cursor = None
        if after is not None:
            last = await self._docs.get(WORKFLOWS, after)
            if last is None or not may_read(who, last.data):
                raise bad_input("after", f"workflow {after} is not one of these")
            cursor = encode_cursor([last.data["created_at"], last.id])
        owner = Filter("team_id", "==", team_id) if team_id is not None else Filter("owner_id", "==", who.id)
        found = await paginate(
            self._docs,
            WORKFLOWS,
            [owner, Filter("deleted", "==", False)],
            Order("created_at", True),
            PageRequest(first=first, after=cursor),
            max_size=self._max_page_size,
        )
        return found.items

    @staticmethod
    def _fields(graph: WorkflowGraph, owner_id: str, team_id: str | None) -> dict[str, Any]:
        now = now_iso()
        return {
            "name": graph.name,
            "description": graph.description,
            "owner_id": owner_id,
            "team_id": team_id,
            "nodes": graph.nodes,
            "edges": graph.edges,
            "deleted": False,
            "deleted_at": None,
            "created_at": now,
            "updated_at": now,
        }
