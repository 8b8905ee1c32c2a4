"""Root fields of collections and the trash, merged into Query and Mutation by schema.root."""

from __future__ import annotations

import strawberry

from resolvers import collections, trash
from schema.assets import Asset
from schema.collections import Collection, CollectionConnection


@strawberry.type
class CollectionQuery:
    collection: Collection | None = strawberry.field(resolver=collections.collection)
    collections: CollectionConnection = strawberry.field(
        resolver=collections.collections,
        description="The caller's personal collections, or a team's with teamId; newest first.",
    )


@strawberry.type
class CollectionMutation:
    create_collection: Collection = strawberry.mutation(resolver=collections.create_collection)
    update_collection: Collection = strawberry.mutation(resolver=collections.update_collection)
    delete_collection: bool = strawberry.mutation(
        resolver=collections.delete_collection, description="Its assets are kept."
    )
    add_to_collection: Collection = strawberry.mutation(
        resolver=collections.add_to_collection, description="Idempotent; new assets go after the others."
    )
    remove_from_collection: Collection = strawberry.mutation(resolver=collections.remove_from_collection)


@strawberry.type
class TrashMutation:
    delete_asset: Asset = strawberry.mutation(
        resolver=trash.delete_asset, description="Soft delete: restorable until its purgeAt."
    )
    restore_asset: Asset = strawberry.mutation(resolver=trash.restore_asset)
    purge_deleted: int = strawberry.mutation(
        resolver=trash.purge_deleted,
        description="Administrators: remove for good what has been in the trash longer than olderThanDays.",
    )
