"""The batch area's root fields: the batch query, generateBatch and the batchProgress subscription."""

from __future__ import annotations

from collections.abc import AsyncGenerator

import strawberry

from resolvers import batches as resolve
from schema.batches import Batch


@strawberry.type
class BatchQuery:
    batch: Batch | None = strawberry.field(resolver=resolve.batch)


@strawberry.type
class BatchMutation:
    generate_batch: Batch = strawberry.mutation(
        resolver=resolve.generate_batch,
        description="Create every generation or none: all items are checked, then booked in one go.",
    )


@strawberry.type
class BatchSubscription:
    @strawberry.subscription(description="The batch each time it changes; completes after a final status.")
    async def batch_progress(self, info: resolve.Ctx, id: strawberry.ID) -> AsyncGenerator[Batch, None]:
        async for doc in resolve.batch_progress(info, id):
            yield Batch.from_doc(doc)
