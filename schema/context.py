"""What every resolver receives: the services, who is asking, and per-request loaders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiodataloader import DataLoader

from domain.access import Actor
from domain.ports import Document

if TYPE_CHECKING:
    from resolvers.services import Services


@dataclass
class Loaders:
    """Per-request (per-connection on WebSocket) batching of document reads by id."""

    users: DataLoader[str, Document | None]
    jobs: DataLoader[str, Document | None]
    assets: DataLoader[str, Document | None]


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
