"""Mutation resolvers."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.types import Info

from domain.admin import RequestInfo
from domain.jobs import JobKind
from resolvers.inputs import image_input, team_ref, text_input, upscale_input, video_input, webhook_input
from schema.assets import Asset
from schema.context import StudioContext
from schema.jobs import GenerateImageInput, GenerateTextInput, GenerateVideoInput, Job, UpscaleImageInput
from schema.nodes import decode_id
from schema.scalars import Role, UserStatus
from schema.users import User

Ctx = Info[StudioContext, None]


GenerateInput = GenerateImageInput | GenerateVideoInput | GenerateTextInput | UpscaleImageInput


async def _generate(info: Ctx, kind: JobKind, raw: dict[str, Any], given: GenerateInput) -> Job:
    """One generation: the decoded input plus the options every generate input shares."""
    doc = await info.context.services.desk.submit(
        info.context.actor,
        kind,
        raw,
        idempotency_key=given.idempotency_key,
        webhook=webhook_input(given.webhook),
        use_cache=given.cache is not False,
        team_id=team_ref(given.team_id),
    )
    return Job.from_doc(doc)


async def generate_image(info: Ctx, input: GenerateImageInput) -> Job:
    return await _generate(info, JobKind.IMAGE, image_input(input), input)


async def generate_video(info: Ctx, input: GenerateVideoInput) -> Job:
    return await _generate(info, JobKind.VIDEO, video_input(input), input)


async def generate_text(info: Ctx, input: GenerateTextInput) -> Job:
    return await _generate(info, JobKind.TEXT, text_input(input), input)


async def upscale_image(info: Ctx, input: UpscaleImageInput) -> Job:
    return await _generate(info, JobKind.UPSCALE, upscale_input(input), input)


async def cancel_job(info: Ctx, id: strawberry.ID) -> Job:
    doc = await info.context.services.desk.cancel(info.context.actor, decode_id(id, "Job"))
    return Job.from_doc(doc)


async def update_asset(
    info: Ctx,
    id: strawberry.ID,
    title: str | None = None,
    tags: list[str] | None = None,
    favorite: bool | None = None,
) -> Asset:
    doc = await info.context.services.library.update(
        info.context.actor, decode_id(id, "Asset"), title=title, tags=tags, favorite=favorite
    )
    return Asset.from_doc(doc)


def _request(info: Ctx) -> RequestInfo:
    client = getattr(info.context.request, "client", None)
    return RequestInfo(request_id=info.context.request_id, ip=getattr(client, "host", None))


async def set_user_status(info: Ctx, user_id: strawberry.ID, status: UserStatus) -> User:
    updated = await info.context.services.admin.set_status(
        info.context.actor, decode_id(user_id, "User", "userId"), status, _request(info)
    )
    return User.of(updated)


async def set_user_role(info: Ctx, user_id: strawberry.ID, role: Role) -> User:
    updated = await info.context.services.admin.set_role(
        info.context.actor, decode_id(user_id, "User", "userId"), role, _request(info)
    )
    return User.of(updated)


async def revoke_sessions(info: Ctx, user_id: strawberry.ID) -> User:
    updated = await info.context.services.admin.revoke_sessions(
        info.context.actor, decode_id(user_id, "User", "userId"), _request(info)
    )
    return User.of(updated)
