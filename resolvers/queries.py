"""Query resolvers."""

from __future__ import annotations

import strawberry
from strawberry.types import Info

from domain.access import require_active, require_actor
from domain.clock import to_iso
from domain.errors import ErrorCode, StudioError
from domain.library import AssetFilter as DomainAssetFilter
from domain.library import AssetSort as DomainAssetSort
from domain.pages import PageRequest
from resolvers.apikeys import api_key
from resolvers.inputs import asset_ref
from resolvers.pages import asset_connection, audit_connection, job_connection
from schema.assets import Asset, AssetConnection, AssetFilter, AssetSort, SortDirection
from schema.context import StudioContext
from schema.jobs import Job, JobConnection, JobFilter, ModelInfo
from schema.nodes import Node, decode_id, split_id
from schema.scalars import JobKind, UserStatus
from schema.usage import UsageQuery, UsageReport
from schema.users import AuditEventConnection, User

Ctx = Info[StudioContext, None]


def me(info: Ctx) -> User:
    actor = require_actor(info.context.actor)
    return User.of(actor.user)


def models(info: Ctx) -> list[ModelInfo]:
    require_active(info.context.actor)
    return [
        ModelInfo(
            id=spec.id,
            kind=JobKind(spec.kind),
            display_name=spec.display_name,
            unit_cost_usd=spec.unit_cost_usd,
            cost_unit=spec.cost_unit,
            max_count=spec.max_count,
            durations_seconds=list(spec.durations_seconds) or None,
            aspect_ratios=list(spec.aspect_ratios),
            is_default=spec.default,
        )
        for spec in info.context.services.catalog.models
    ]


async def asset(info: Ctx, id: strawberry.ID) -> Asset | None:
    doc = await info.context.services.library.get(info.context.actor, decode_id(id, "Asset"))
    return Asset.from_doc(doc)


async def job(info: Ctx, id: strawberry.ID) -> Job | None:
    doc = await info.context.services.desk.get(info.context.actor, decode_id(id, "Job"))
    return Job.from_doc(doc)


async def node(info: Ctx, id: strawberry.ID) -> Node | None:
    type_name, _ = split_id(id)
    if type_name == "Asset":
        return await asset(info, id)
    if type_name == "Job":
        return await job(info, id)
    if type_name == "Collection":
        from resolvers.collections import collection

        return await collection(info, id)
    if type_name == "User":
        actor = require_active(info.context.actor)
        raw = decode_id(id, "User")
        if raw != actor.id and not actor.user.is_admin:
            raise StudioError(ErrorCode.NOT_FOUND, f"User {id} not found")
        return User.of(await info.context.services.directory.require(raw))
    if type_name == "ApiKey":
        from schema.apikeys import ApiKey  # the schema module imports resolvers

        return ApiKey.of(await api_key(info, id))
    if type_name == "Team":
        from resolvers.teams import team

        return await team(info, id)
    if type_name == "Batch":
        from resolvers.batches import batch

        return await batch(info, id)
    if type_name in ("Workflow", "WorkflowRun"):
        from resolvers import workflows

        return await (workflows.workflow if type_name == "Workflow" else workflows.workflow_run)(info, id)
    raise StudioError(ErrorCode.NOT_FOUND, f"{id} not found")


async def assets(
    info: Ctx,
    filter: AssetFilter | None = None,
    sort: AssetSort | None = None,
    first: int | None = None,
    after: str | None = None,
    last: int | None = None,
    before: str | None = None,
) -> AssetConnection:
    given = filter or AssetFilter()
    order = sort or AssetSort()
    domain_filter = DomainAssetFilter(
        kinds=[kind.value for kind in given.kinds] if given.kinds is not None else None,
        search=given.search,
        created_after=to_iso(given.created_after) if given.created_after else None,
        created_before=to_iso(given.created_before) if given.created_before else None,
        model=given.model,
        tags=given.tags,
        favorite=given.favorite,
        deleted=given.deleted,
        team_id=decode_id(given.team_id, "Team", "filter.teamId") if given.team_id else None,
        shared_with_me=bool(given.shared_with_me),
        collection_id=decode_id(given.collection_id, "Collection", "filter.collectionId")
        if given.collection_id is not None
        else None,
        similar_to=asset_ref(given.similar_to, "filter.similarTo") if given.similar_to is not None else None,
    )
    domain_sort = DomainAssetSort(order.field.value, order.direction is SortDirection.DESC)
    page = await info.context.services.library.list(
        info.context.actor, domain_filter, domain_sort, PageRequest(first, after, last, before)
    )
    return asset_connection(page)


async def jobs(
    info: Ctx, filter: JobFilter | None = None, first: int | None = 20, after: str | None = None
) -> JobConnection:
    given = filter or JobFilter()
    page = await info.context.services.desk.list(
        info.context.actor,
        PageRequest(first=first, after=after),
        statuses=[s.value for s in given.statuses] if given.statuses is not None else None,
        kinds=[k.value for k in given.kinds] if given.kinds is not None else None,
        team_id=decode_id(given.team_id, "Team", "filter.teamId") if given.team_id else None,
        batch_id=decode_id(given.batch_id, "Batch", "filter.batchId") if given.batch_id else None,
    )
    return job_connection(page)


async def usage(info: Ctx, query: UsageQuery) -> UsageReport:
    user_id = decode_id(query.user_id, "User", "query.userId") if query.user_id else None
    team_id = decode_id(query.team_id, "Team", "query.teamId") if query.team_id else None
    groups = [group.value for group in (query.group_by or [])]
    report = await info.context.services.ledger.report(
        info.context.actor, query.from_, query.to, groups, user_id, team_id
    )
    return UsageReport.of(report)


async def users(
    info: Ctx, status: UserStatus | None = None, first: int | None = 50, after: str | None = None
) -> list[User]:
    after_id = decode_id(after, "User", "after") if after is not None else None
    found = await info.context.services.admin.list_users(
        info.context.actor, status=status, first=first, after=after_id
    )
    return [User.of(user) for user in found]


async def audit_log(
    info: Ctx,
    action: str | None = None,
    actor_id: strawberry.ID | None = None,
    first: int | None = 50,
    after: str | None = None,
) -> AuditEventConnection:
    raw_actor = decode_id(actor_id, "User", "actorId") if actor_id is not None else None
    page = await info.context.services.audit.list(
        info.context.actor, PageRequest(first=first, after=after), action=action, actor_id=raw_actor
    )
    return audit_connection(page)
