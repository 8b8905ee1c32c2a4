"""What every resolver receives: the services, who is asking, and per-request loaders."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from aiodataloader import DataLoader

from domain.access import Actor
from domain.assets import ASSETS
from domain.batch_tally import BATCHES
from domain.collection_rules import COLLECTIONS
from domain.jobs import JOBS
from domain.ports import Document
from domain.teams import TEAM_MEMBERS, TEAMS
from domain.users import USERS

if TYPE_CHECKING:
    from resolvers.services import Services


class Loaders:
    """Per-request (per-connection on WebSocket) batching of document reads by id.

    Each loader is made on first use: most requests need none, and making three costs more than
    a `{ me { id } }` request's own work.
    """

    def __init__(self, make: Callable[[str], DataLoader[str, Document | None]]) -> None:
        self._make = make

    @cached_property
    def users(self) -> DataLoader[str, Document | None]:
        return self._make(USERS)

    @cached_property
    def jobs(self) -> DataLoader[str, Document | None]:
        return self._make(JOBS)

    @cached_property
    def assets(self) -> DataLoader[str, Document | None]:
        return self._make(ASSETS)

    @cached_property
    def teams(self) -> DataLoader[str, Document | None]:
        return self._make(TEAMS)

    @cached_property
    def team_members(self) -> DataLoader[str, Document | None]:
        """Membership documents by `<team id>:<user id>` (who may see whose private fields)."""
        return self._make(TEAM_MEMBERS)

    @cached_property
    def batches(self) -> DataLoader[str, Document | None]:
        return self._make(BATCHES)

    @cached_property
    def collections(self) -> DataLoader[str, Document | None]:
        return self._make(COLLECTIONS)


@dataclass
class StudioContext:
    """Per HTTP request, or per WebSocket connection (shared by its operations)."""

    services: Services
    request_id: str
    loaders: Loaders
    request: Any = None
    response: Any = None
    connection_params: dict[str, Any] | None = None
    principal: Actor | None = None
    auth_error: Exception | None = None
    extras: dict[str, Any] = field(default_factory=dict)

    @property
    def actor(self) -> Actor | None:
        """The caller; a bad credential surfaces here, as UNAUTHENTICATED, in whichever field asks."""
        if self.auth_error is not None:
            raise self.auth_error
        return self.principal
