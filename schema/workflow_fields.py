"""The workflow area's root fields: queries, mutations and the run progress subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers import workflows as resolve
from schema.workflows import Workflow, WorkflowRun


@strawberry.type
class WorkflowQuery:
    workflow: Workflow | None = strawberry.field(resolver=resolve.workflow)
    workflows: list[Workflow] = strawberry.field(
        resolver=resolve.workflows,
        description="The caller's workflows, or a team's, newest first; `after` is a workflow id.",
    )
    workflow_run: WorkflowRun | None = strawberry.field(resolver=resolve.workflow_run)


@strawberry.type
class WorkflowMutation:
    create_workflow: Workflow = strawberry.mutation(
        resolver=resolve.create_workflow, description="Refuses cycles, unknown node ids and bad node inputs."
    )
    update_workflow: Workflow = strawberry.mutation(resolver=resolve.update_workflow)
    clone_workflow: Workflow = strawberry.mutation(
        resolver=resolve.clone_workflow, description="A personal copy; `name` defaults to '<name> (copy)'."
    )
    delete_workflow: bool = strawberry.mutation(
        resolver=resolve.delete_workflow, description="Hides the workflow; its runs and their jobs stay."
    )
    run_workflow: WorkflowRun = strawberry.mutation(
        resolver=resolve.run_workflow,
        description="Start a run: each step's job is submitted once its inputs exist; "
        "`webhook` is given to every step's job.",
    )


@strawberry.type
class WorkflowSubscription:
    @strawberry.subscription(description="The run each time it changes; completes after a final status.")
    async def workflow_run_progress(
        self, info: resolve.Ctx, id: strawberry.ID
    ) -> AsyncGenerator[WorkflowRun, None]:
        async for run in resolve.workflow_run_progress(info, id):
            yield run
