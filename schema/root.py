"""The root types and the Schema with its extensions."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry
from strawberry.extensions import (
    MaxAliasesLimiter,
    MaxTokensLimiter,
    QueryDepthLimiter,
    ValidationCache,
)
from strawberry.tools import merge_types

from resolvers import mutations, queries, subscriptions
from schema.apikeys import ApiKey, ApiKeyMutation, ApiKeyQuery
from schema.assets import Asset, AssetConnection
from schema.batch_fields import BatchMutation, BatchQuery, BatchSubscription
from schema.batches import Batch
from schema.collections import Collection
from schema.errors import CachedParser, ErrorFormatter
from schema.execution import StudioExecutionContext
from schema.jobs import Job, JobConnection, JobEvent, ModelInfo
from schema.library_roots import CollectionMutation, CollectionQuery, TrashMutation
from schema.nodes import Node
from schema.quota_fields import QuotaMutation, QuotaQuery
from schema.scalars import JobStatus
from schema.team_roots import TeamMutation, TeamQuery
from schema.teams import Team
from schema.uploads import UploadMutation
from schema.usage import UsageReport
from schema.users import AuditEventConnection, User
from schema.workflow_fields import WorkflowMutation, WorkflowQuery, WorkflowSubscription


@strawberry.type
class CoreQuery:
    node: Node | None = strawberry.field(resolver=queries.node, description="Any object by its global id.")
    me: User = strawberry.field(resolver=queries.me, description="The caller.")
    models: list[ModelInfo] = strawberry.field(resolver=queries.models)
    asset: Asset | None = strawberry.field(resolver=queries.asset)
    assets: AssetConnection = strawberry.field(resolver=queries.assets, description="The caller's library.")
    job: Job | None = strawberry.field(resolver=queries.job)
    jobs: JobConnection = strawberry.field(
        resolver=queries.jobs, description="The caller's jobs, newest first."
    )
    usage: UsageReport = strawberry.field(resolver=queries.usage)
    users: list[User] = strawberry.field(
        resolver=queries.users, description="Administrators: people, by email; `after` is a user id."
    )
    audit_log: AuditEventConnection = strawberry.field(
        resolver=queries.audit_log, description="Administrators: audited actions, newest first."
    )


@strawberry.type
class CoreMutation:
    generate_image: Job = strawberry.mutation(resolver=mutations.generate_image)
    generate_video: Job = strawberry.mutation(resolver=mutations.generate_video)
    generate_text: Job = strawberry.mutation(resolver=mutations.generate_text)
    upscale_image: Job = strawberry.mutation(resolver=mutations.upscale_image)
    cancel_job: Job = strawberry.mutation(resolver=mutations.cancel_job)
    update_asset: Asset = strawberry.mutation(resolver=mutations.update_asset)
    set_user_status: User = strawberry.mutation(
        resolver=mutations.set_user_status, description="Administrators: approve or block someone."
    )
    set_user_role: User = strawberry.mutation(resolver=mutations.set_user_role)
    revoke_sessions: User = strawberry.mutation(
        resolver=mutations.revoke_sessions, description="Refuse every token signed in before now."
    )


@strawberry.type
class CoreSubscription:
    @strawberry.subscription(description="Every change of one job; completes after a final status.")
    async def job_progress(self, info: queries.Ctx, id: strawberry.ID) -> AsyncGenerator[JobEvent, None]:
        async for event in subscriptions.job_progress(info, id):
            yield event

    @strawberry.subscription(description="Every change of any of the caller's jobs.")
    async def my_jobs(
        self, info: queries.Ctx, statuses: list[JobStatus] | None = None
    ) -> AsyncGenerator[JobEvent, None]:
        async for event in subscriptions.my_jobs(info, statuses):
            yield event


# Each area of the API keeps its root fields beside its types; the roots are their union.
Query = merge_types(
    "Query", (CoreQuery, ApiKeyQuery, TeamQuery, QuotaQuery, CollectionQuery, WorkflowQuery, BatchQuery)
)
Mutation = merge_types(
    "Mutation",
    (
        CoreMutation,
        ApiKeyMutation,
        TeamMutation,
        QuotaMutation,
        CollectionMutation,
        TrashMutation,
        UploadMutation,
        WorkflowMutation,
        BatchMutation,
    ),
)
Subscription = merge_types("Subscription", (CoreSubscription, WorkflowSubscription, BatchSubscription))


def build_schema(*, max_depth: int = 12, max_aliases: int = 30, max_tokens: int = 5000) -> strawberry.Schema:
    return strawberry.Schema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[User, Asset, Job, ApiKey, Team, Collection, Batch],
        execution_context_class=StudioExecutionContext,
        extensions=[
            ErrorFormatter,
            CachedParser,
            ValidationCache,
            lambda: QueryDepthLimiter(max_depth=max_depth),
            lambda: MaxAliasesLimiter(max_alias_count=max_aliases),
            lambda: MaxTokensLimiter(max_token_count=max_tokens),
        ],
    )


schema = build_schema()
