"""API keys in the schema: the key (never its secret), the one-time secret on creation, root fields."""

from __future__ import annotations

from datetime import datetime

import strawberry

from domain.apikeys import ApiKey as DomainApiKey
from resolvers import apikeys as resolvers
from schema.nodes import Node, encode_id
from schema.scalars import moment


@strawberry.type(description="A credential for scripts, sent as `X-API-Key`; its secret is shown only once.")
class ApiKey(Node):
    _key: strawberry.Private[DomainApiKey]

    @classmethod
    def of(cls, key: DomainApiKey) -> ApiKey:
        return cls(id=encode_id("ApiKey", key.id), _key=key)

    @strawberry.field
    def name(self) -> str:
        return self._key.name

    @strawberry.field(description="The secret's first characters (`gms_<key id>`), to recognise a key.")
    def prefix(self) -> str:
        return self._key.prefix

    @strawberry.field(description="read (queries, subscriptions), write (other mutations), generate.")
    def scopes(self) -> list[str]:
        return list(self._key.scopes)

    @strawberry.field
    def created_at(self) -> datetime:
        value = moment(self._key.created_at)
        assert value is not None
        return value

    @strawberry.field(description="Recorded at most once a minute.")
    def last_used_at(self) -> datetime | None:
        return moment(self._key.last_used_at)

    @strawberry.field
    def expires_at(self) -> datetime | None:
        return moment(self._key.expires_at)

    @strawberry.field
    def revoked_at(self) -> datetime | None:
        return moment(self._key.revoked_at)


@strawberry.type(description="A new key and its secret: store the secret now, it is never shown again.")
class CreateApiKeyPayload:
    api_key: ApiKey
    secret: str


@strawberry.type
class ApiKeyQuery:
    @strawberry.field(description="The caller's API keys, newest first (revoked and expired ones too).")
    async def api_keys(self, info: resolvers.Ctx) -> list[ApiKey]:
        return [ApiKey.of(key) for key in await resolvers.api_keys(info)]


@strawberry.type
class ApiKeyMutation:
    @strawberry.mutation(
        description="A new key for the caller (signed in with a token). `scopes` default to read and "
        "generate (viewers: read); `expiresAt` defaults to the longest lifetime allowed."
    )
    async def create_api_key(
        self,
        info: resolvers.Ctx,
        name: str,
        scopes: list[str] | None = None,
        expires_at: datetime | None = None,
    ) -> CreateApiKeyPayload:
        key, secret = await resolvers.create_api_key(info, name, scopes, expires_at)
        return CreateApiKeyPayload(api_key=ApiKey.of(key), secret=secret)

    @strawberry.mutation(description="Stop a key working at once; owners and administrators.")
    async def revoke_api_key(self, info: resolvers.Ctx, id: strawberry.ID) -> ApiKey:
        return ApiKey.of(await resolvers.revoke_api_key(info, id))
