"""The studio's services as the API sees them: ports and domain objects, built once by `wiring`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from domain.admin import Admin, AuditLog
from domain.apikeys import ApiKeys
from domain.batches import Batches
from domain.catalog import Catalog
from domain.collections import Collections
from domain.desk import JobDesk
from domain.forecast import QueueForecast
from domain.library import Library
from domain.ports import BlobStore, DocStore, Generator, IdentityProvider, JobQueue, ResultCache
from domain.quotas import QuotaBook
from domain.sharing import Sharing
from domain.teams import Teams
from domain.terms import TermsOfService
from domain.trash import Trash
from domain.uploads import Uploads
from domain.usage import UsageLedger
from domain.users import Directory
from domain.workflow_runs import WorkflowRuns
from domain.workflows import Workflows
from subscriptions.hub import DocumentHub


@dataclass
class Services:
    """Everything a request may need; one instance per process."""

    settings: Any
    docs: DocStore
    blobs: BlobStore
    generator: Generator
    queue: JobQueue
    identity: IdentityProvider
    catalog: Catalog
    directory: Directory
    desk: JobDesk
    library: Library
    ledger: UsageLedger
    jobs_hub: DocumentHub
    audit: AuditLog
    admin: Admin
    forecast: QueueForecast
    result_cache: ResultCache | None
    api_keys: ApiKeys
    teams: Teams
    sharing: Sharing
    quotas: QuotaBook
    terms: TermsOfService
    collections: Collections
    trash: Trash
    uploads: Uploads
    workflows: Workflows
    workflow_runs: WorkflowRuns
    runs_hub: DocumentHub  # one watch per followed workflow run
    batches: Batches
    batches_hub: DocumentHub  # one watch per followed batch
