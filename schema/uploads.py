"""Uploads in the schema: the ticket a client uploads with, and the two mutations."""

from __future__ import annotations

from datetime import datetime
from typing import cast

import strawberry

from resolvers import uploads
from schema.assets import Asset
from schema.scalars import JSON


@strawberry.type(
    description="Where to send an upload: `method` to `uploadUrl` with exactly `headers`, before "
    "`expiresAt`, at most `maxBytes`. A POST (Cloud Storage) starts a resumable session: PUT the "
    "bytes to the `Location` it answers with. Then call completeUpload with the asset's id."
)
class UploadTicket:
    asset: Asset = strawberry.field(description="The asset-to-be; visible to others once completed.")
    upload_url: str
    method: str
    headers: JSON
    expires_at: datetime
    max_bytes: int

    @classmethod
    def of(cls, ticket: uploads.DomainTicket) -> UploadTicket:
        target = ticket.target
        return cls(
            asset=Asset.from_doc(ticket.asset),
            upload_url=target.url,
            method=target.method,
            headers=cast(JSON, dict(target.headers)),
            expires_at=target.expires_at,
            max_bytes=ticket.max_bytes,
        )


@strawberry.type
class UploadMutation:
    create_upload: UploadTicket = strawberry.mutation(
        resolver=uploads.create_upload,
        description="Start an upload of a PNG, JPEG, WebP or MP4 of `bytes` bytes: a signed, "
        "expiring, size-capped upload URL.",
    )
    complete_upload: Asset = strawberry.mutation(
        resolver=uploads.complete_upload,
        description="Check the uploaded bytes (type, size, that they decode) and show the asset; idempotent.",
    )
