"""Builds the adapters Settings ask for and assembles the services; the only place that knows both."""

from __future__ import annotations

import logging
import os
import secrets
import socket
import time
from collections.abc import Callable, Coroutine
from datetime import timedelta
from functools import cache, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from backends.create_once import create_once
from backends.metrics import record_job_finished, record_refusal, record_tagging
from config import Settings, SettingsError
from domain.admin import Admin, AuditLog
from domain.apikey_signin import ApiKeySignIn
from domain.apikeys import ApiKeyPolicy, ApiKeys
from domain.authn import Authenticator
from domain.batch_tally import BATCHES
from domain.batches import Batches
from domain.catalog import Catalog, model_spec, parse_extra_model
from domain.collections import Collections
from domain.desk import JobDesk
from domain.embeddings import AssetEmbedder, Embedder
from domain.forecast import QueueForecast
from domain.jobs import JOBS
from domain.library import Library
from domain.limits import RateLimits, RatePolicy, parse_rate
from domain.moderation import ModerationPolicy
from domain.ports import (
    BlobStore,
    DocStore,
    Generator,
    IdentityProvider,
    JobQueue,
    RateLimiter,
    ResultCache,
    WebhookSender,
)
from domain.quota_limits import QuotaLimits
from domain.quotas import QuotaBook
from domain.redelivery import WaitingJobs
from domain.requests import InputLimits
from domain.runner import JobRunner
from domain.sharing import Sharing
from domain.tagging import Tagger
from domain.task_delivery import TaskDeliveries
from domain.teams import Teams, team_roles
from domain.terms import Terms, TermsOfService
from domain.trash import Trash
from domain.uploads import UploadLimits, Uploads
from domain.usage import UsageLedger
from domain.users import Directory
from domain.webhook_urls import WebhookUrls, check_secret, secret_from_bytes
from domain.webhooks import WebhookDispatcher
from domain.workflow_runs import WORKFLOW_RUNS, WorkflowRuns
from domain.workflows import Workflows
from resolvers.services import Services
from subscriptions.hub import DocumentHub

if TYPE_CHECKING:
    from backends.identity.local import LocalIssuer
    from endpoints.tasks import TaskEndpoint

log = logging.getLogger("genmedia.wiring")


def build_catalog(settings: Settings) -> Catalog:
    """The default model of each kind, then the extra models settings allow, each with its price."""
    defaults = [
        model_spec("IMAGE", settings.model_image, settings.price_image_usd, default=True),
        model_spec("VIDEO", settings.model_video, settings.price_video_second_usd, default=True),
        model_spec("TEXT", settings.model_text, settings.price_text_1k_tokens_usd, default=True),
        model_spec("UPSCALE", settings.model_upscale, settings.price_upscale_usd, default=True),
    ]
    known = {spec.id for spec in defaults}
    extras = [
        model_spec(kind, model_id, price)
        for kind, model_id, price in (parse_extra_model(entry) for entry in settings.models_extra)
        if model_id not in known
    ]
    return Catalog.of([*defaults, *extras])


def read_or_create_secret(path: Path, size: int = 32) -> bytes:
    """A per-installation secret kept in the data dir (mode 0600); created once, even by racing processes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    value = secrets.token_bytes(size)
    if not create_once(path, value):  # serve and workers started together agree on one secret
        return _read_secret(path)
    return value


def _read_secret(path: Path) -> bytes:
    """The secret's bytes, giving a creator without hard links a moment to finish writing them."""
    for _ in range(50):
        data = path.read_bytes()
        if data:
            return data
        time.sleep(0.01)
    raise SettingsError(f"secret file {path} is empty; remove it to make a new one")


def build_docstore(settings: Settings) -> DocStore:
    if settings.docstore == "sqlite":
        from backends.docstore.counting import CountingDocStore
        from backends.docstore.sqlite import SqliteDocStore

        settings.data_dir.mkdir(parents=True, exist_ok=True)
        return CountingDocStore(SqliteDocStore(settings.data_dir / "studio.db"))
    from backends.docstore.counting import CountingDocStore
    from backends.docstore.firestore import FirestoreDocStore

    if not settings.google_cloud_project:
        raise SettingsError("GENMEDIA_DOCSTORE=firestore needs GOOGLE_CLOUD_PROJECT")
    return CountingDocStore(
        FirestoreDocStore(settings.google_cloud_project, database=settings.firestore_database)
    )


def build_blobs(settings: Settings) -> BlobStore:
    if settings.blobs == "local":
        from backends.blobs.localfs import LocalBlobStore

        secret = read_or_create_secret(settings.secret_path / "url-signing.key")
        return LocalBlobStore(settings.data_dir / "blobs", base_url=settings.base_url, secret=secret)
    from backends.blobs.gcs import GcsBlobStore, iam_signer, key_file_signer

    if not settings.bucket:
        raise SettingsError("GENMEDIA_BLOBS=gcs needs GENMEDIA_BUCKET")
    signer = None  # resolved at first signing: a GOOGLE_APPLICATION_CREDENTIALS key, else IAM as the runtime account
    if settings.signing_key_file is not None:
        signer = key_file_signer(settings.signing_key_file)
    elif settings.signing_service_account:
        signer = iam_signer(settings.signing_service_account, base_url=settings.iam_base_url)
    return GcsBlobStore(
        settings.bucket,
        project=settings.google_cloud_project,
        signer=signer,
        iam_base_url=settings.iam_base_url,
    )


def build_generator(settings: Settings) -> Generator:
    if settings.generator == "local":
        from backends.generators.local import LocalGenerator

        return LocalGenerator(speed=settings.local_speed, fail_rate=settings.local_fail_rate)
    from backends.generators.vertex import (
        BreakerSettings,
        RetryPolicy,
        VertexGenerator,
        VertexModels,
        VertexTimeouts,
    )

    if not settings.google_cloud_project:
        raise SettingsError("GENMEDIA_GENERATOR=vertex needs GOOGLE_CLOUD_PROJECT")
    return VertexGenerator(
        project=settings.google_cloud_project,
        location=settings.google_cloud_location,
        base_url=settings.vertex_base_url,  # set: static credentials; unset: Application Default Credentials
        models=VertexModels(
            image=settings.model_image,
            video=settings.model_video,
            text=settings.model_text,
            upscale=settings.model_upscale,
            tagging=settings.model_tagging,
            embedding=settings.model_embedding,
        ),
        timeouts=VertexTimeouts(
            call_seconds=settings.vertex_timeout_seconds, video_seconds=settings.vertex_video_timeout_seconds
        ),
        retry=RetryPolicy(attempts=settings.vertex_retry_attempts),
        breaker=BreakerSettings(
            failure_threshold=settings.vertex_breaker_failures,
            recovery_seconds=settings.vertex_breaker_recovery_seconds,
        ),
        poll_interval=settings.vertex_poll_seconds,
        typical_video_seconds=settings.vertex_typical_video_seconds,
    )


def build_identity(settings: Settings) -> IdentityProvider:
    if settings.identity == "local":
        return local_issuer(settings)
    from backends.identity.firebase import FirebaseIdentity

    if not settings.google_cloud_project:
        raise SettingsError("GENMEDIA_IDENTITY=firebase needs GOOGLE_CLOUD_PROJECT")
    return FirebaseIdentity(settings.google_cloud_project, certs_url=settings.firebase_certs_url)


def local_issuer(settings: Settings) -> LocalIssuer:
    from backends.identity.local import LocalIssuer

    return LocalIssuer(settings.secret_path / "issuer-key.pem")


def build_queue(settings: Settings, docs: DocStore) -> JobQueue:
    if settings.queue == "docstore":
        from backends.queue.docstore import DocstoreQueue

        return DocstoreQueue(docs)
    from backends.queue.cloudtasks import CloudTasksQueue

    project = settings.cloudtasks_project or settings.google_cloud_project
    if not project:
        raise SettingsError(
            "GENMEDIA_QUEUE=cloudtasks needs GOOGLE_CLOUD_PROJECT (or GENMEDIA_CLOUDTASKS_PROJECT)"
        )
    worker_url, account = _tasks_identity(settings)
    return CloudTasksQueue(
        project=project,
        location=settings.cloudtasks_location or settings.google_cloud_location,
        queue=settings.cloudtasks_queue,
        worker_url=worker_url,
        service_account=account,
        audience=settings.cloudtasks_audience,
        api_endpoint=settings.cloudtasks_api_endpoint,
        dispatch_deadline_seconds=settings.cloudtasks_dispatch_deadline_seconds,
    )


def _tasks_identity(settings: Settings) -> tuple[str, str]:
    """The worker URL and the invoker service account Cloud Tasks deliveries are made with."""
    if not settings.cloudtasks_worker_url:
        raise SettingsError("Cloud Tasks delivery needs GENMEDIA_CLOUDTASKS_WORKER_URL")
    if not settings.cloudtasks_worker_url.startswith(("https://", "http://")):
        raise SettingsError("invalid setting GENMEDIA_CLOUDTASKS_WORKER_URL: expected an http(s) URL")
    account = settings.cloudtasks_service_account or ""
    if "@" not in account:
        raise SettingsError("Cloud Tasks delivery needs GENMEDIA_CLOUDTASKS_SERVICE_ACCOUNT (an email)")
    return settings.cloudtasks_worker_url, account


def tasks_endpoint_enabled(settings: Settings) -> bool:
    if settings.tasks_endpoint is not None:
        return settings.tasks_endpoint
    return settings.queue == "cloudtasks"


def build_task_endpoint(services: Services, runner: JobRunner) -> TaskEndpoint:
    """`/internal/tasks/run`: OIDC-verified Cloud Tasks deliveries, run by `runner`."""
    from backends.identity.google_oidc import GoogleOidcVerifier
    from endpoints.tasks import TaskEndpoint

    settings = services.settings
    worker_url, account = _tasks_identity(settings)
    verifier = GoogleOidcVerifier(
        audience=settings.cloudtasks_audience or worker_url,
        service_account=account,
        certs_url=settings.cloudtasks_certs_url,
    )
    deliveries = TaskDeliveries(services.docs, runner, max_attempts=settings.job_max_attempts)
    return TaskEndpoint(verifier.verify, deliveries)


def build_webhook_sender(settings: Settings) -> WebhookSender:
    from backends.webhooks.sender import HttpWebhookSender

    return HttpWebhookSender()


def build_webhook_urls(settings: Settings) -> WebhookUrls:
    return WebhookUrls(
        build_webhook_sender(settings),
        allow_private=settings.webhook_allow_private,
        timeout=settings.webhook_timeout_seconds,
    )


def webhook_secret(settings: Settings) -> str:
    """GENMEDIA_WEBHOOK_SECRET, else a secret made once and kept in the data dir
    (`secrets/webhook-signing.key`, raw bytes: its whsec_ form is "whsec_" + their base64)."""
    if settings.webhook_secret is not None:
        try:
            return check_secret(settings.webhook_secret.get_secret_value())
        except ValueError as error:  # the message never repeats the secret
            raise SettingsError(f"invalid setting GENMEDIA_WEBHOOK_SECRET: {error}") from None
    path = settings.secret_path / "webhook-signing.key"
    raw = read_or_create_secret(path, 32)
    try:
        return secret_from_bytes(raw)
    except ValueError:
        raise SettingsError(
            f"{path} holds {len(raw)} bytes, not 24 to 64; remove it to make a new one"
        ) from None


def _delivery_secret(settings: Settings) -> str:
    if settings.webhook_secret is None and settings.docstore != "sqlite":
        log.warning(
            "GENMEDIA_WEBHOOK_SECRET is unset: this process signs webhooks with a secret of its own data dir;"
            " set it so that every process signs alike"
        )
    try:
        return webhook_secret(settings)
    except SettingsError as error:  # a SystemExit: in a delivery it fails the attempt, not the process
        raise ValueError(str(error)) from None


def build_webhooks(services: Services, worker_id: str) -> WebhookDispatcher:
    settings = services.settings
    return WebhookDispatcher(
        services.docs,
        build_webhook_sender(settings),
        secret=partial(_delivery_secret, settings),  # made (if unset) only when a webhook is signed
        worker_id=worker_id,
        schedule=settings.webhook_retry_schedule,
        timeout=settings.webhook_timeout_seconds,
        allow_private=settings.webhook_allow_private,
        poll_seconds=settings.webhook_poll_seconds,
    )


def build_services(settings: Settings) -> Services:
    """Every adapter and domain service for one process."""
    if settings.webhook_secret is not None:
        webhook_secret(settings)  # a bad secret stops start-up, not the first delivery
    docs = build_docstore(settings)
    blobs = build_blobs(settings)
    catalog = build_catalog(settings)
    queue = build_queue(settings, docs)
    directory = Directory(
        docs,
        admin_emails=frozenset(settings.admin_emails),
        auto_approve_domains=frozenset(settings.auto_approve_domains),
    )
    audit = AuditLog(docs, max_page_size=settings.max_page_size)
    result_cache = build_result_cache(settings, docs)
    generator = build_generator(settings)
    library = Library(
        docs,
        max_page_size=settings.max_page_size,
        vectors=settings.embeddings != "off",
        embed_asset=build_asset_embedder(settings, generator),
    )
    teams = Teams(docs, directory, audit, max_page_size=settings.max_page_size)
    quotas = build_quotas(settings, docs)
    terms = build_terms(settings, docs)
    limits = InputLimits(max_prompt_chars=settings.max_prompt_chars)
    desk = JobDesk(
        docs,
        queue,
        catalog,
        limits=limits,
        max_page_size=settings.max_page_size,
        webhooks=build_webhook_urls(settings),
        cache=result_cache,
        quotas=quotas,
        terms=terms,
        moderation=ModerationPolicy(
            settings.moderation_blocked_terms, settings.moderation_categories, on_refused=record_refusal
        ),
    )
    workflows = Workflows(
        docs,
        catalog,
        limits=limits,
        max_nodes=settings.workflow_max_nodes,
        max_page_size=settings.max_page_size,
    )
    return Services(
        settings=settings,
        docs=docs,
        blobs=blobs,
        generator=generator,
        queue=queue,
        identity=build_identity(settings),
        catalog=catalog,
        directory=directory,
        desk=desk,
        library=library,
        ledger=UsageLedger(docs),
        jobs_hub=DocumentHub(docs, JOBS),
        audit=audit,
        admin=Admin(docs, directory, audit, max_page_size=settings.max_page_size),
        forecast=QueueForecast(docs, parallelism=settings.workers),
        result_cache=result_cache,
        api_keys=ApiKeys(
            docs,
            audit,
            ApiKeyPolicy(
                max_active=settings.api_key_max_active, max_lifetime=timedelta(days=settings.api_key_max_days)
            ),
        ),
        teams=teams,
        sharing=Sharing(docs, library, directory, teams, audit),
        quotas=quotas,
        terms=terms,
        collections=Collections(docs, max_page_size=settings.max_page_size),
        trash=Trash(docs, blobs, audit, trash_days=settings.trash_days),
        uploads=build_uploads(settings, docs, blobs, generator),
        workflows=workflows,
        workflow_runs=WorkflowRuns(
            docs,
            desk,
            workflows,
            directory,
            webhooks=build_webhook_urls(settings),
            max_page_size=settings.max_page_size,
            recheck_seconds=settings.workflow_recheck_seconds,
        ),
        runs_hub=DocumentHub(docs, WORKFLOW_RUNS),
        batches=Batches(docs, desk, queue, quotas=quotas, terms=terms, max_jobs=settings.batch_max_jobs),
        batches_hub=DocumentHub(docs, BATCHES),
    )


def build_quotas(settings: Settings, docs: DocStore) -> QuotaBook:
    defaults = QuotaLimits(
        images_per_day=settings.quota_images_per_day,
        videos_per_month=settings.quota_videos_per_month,
        monthly_budget_usd=settings.quota_monthly_budget_usd,
    )
    return QuotaBook(docs, defaults)


def build_terms(settings: Settings, docs: DocStore) -> TermsOfService:
    current = Terms(settings.terms_version, settings.terms_url, settings.terms_published_at)
    return TermsOfService(docs, current)


def build_uploads(settings: Settings, docs: DocStore, blobs: BlobStore, generator: Generator) -> Uploads:
    from backends.media_probe import inspect_media

    limits = UploadLimits(
        max_image_bytes=settings.upload_max_image_bytes,
        max_video_bytes=settings.upload_max_video_bytes,
        ttl_seconds=settings.upload_ttl_seconds,
    )
    from backends.media_colours import ColourDescriber

    colours = Tagger(
        ColourDescriber(videos=True),
        enabled=settings.auto_tags,
        timeout_seconds=settings.tagging_timeout_seconds,
        on_outcome=record_tagging,
    )
    return Uploads(
        docs, blobs, inspect_media, limits, colours, embed_asset=build_asset_embedder(settings, generator)
    )


def build_authenticator(services: Services) -> Authenticator:
    api_keys = ApiKeySignIn(services.docs, services.directory, audit=services.audit)
    services.api_keys.on_revoked(api_keys.forget_key)
    authenticator = Authenticator(
        services.identity,
        services.directory,
        audit=services.audit,
        api_keys=api_keys,
        team_roles=partial(team_roles, services.docs),
    )
    services.admin.on_user_changed(authenticator.forget)
    services.teams.on_membership_changed(authenticator.forget)
    services.terms.on_user_changed(authenticator.forget)
    return authenticator


def build_followers(services: Services) -> list[Callable[[], Coroutine[Any, Any, None]]]:
    """The loops every worker process runs beside its jobs: workflow runs, abandoned uploads, and
    (with Cloud Tasks) the redelivery of jobs whose enqueue failed."""
    followers: list[Callable[[], Coroutine[Any, Any, None]]] = [
        services.workflow_runs.follow,
        services.uploads.keep_swept,
    ]
    settings = services.settings
    if settings.queue == "cloudtasks":
        waiting = WaitingJobs(services.docs, services.queue, after_seconds=settings.redeliver_after_seconds)
        followers.append(waiting.keep_redelivering)
    return followers


def build_runner(services: Services) -> JobRunner:
    settings = services.settings
    worker_id = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(3)}"
    runner = JobRunner(
        services.docs,
        services.blobs,
        services.generator,
        services.catalog,
        worker_id=worker_id,
        lease_seconds=settings.job_lease_seconds,
        max_attempts=settings.job_max_attempts,
        on_finished=record_job_finished,
        webhooks=build_webhooks(services, worker_id),
        cache=services.result_cache,
        cache_ttl_seconds=settings.request_cache_ttl_seconds,
        queue=services.queue,  # the sweeper re-enqueues what it recovers (Cloud Tasks needs a new task)
        tagger=Tagger(
            services.generator,
            enabled=settings.auto_tags,
            timeout_seconds=settings.tagging_timeout_seconds,
            on_outcome=record_tagging,
        ),
    )
    runner.embed_asset = build_asset_embedder(settings, services.generator)
    return runner


def build_asset_embedder(settings: Settings, generator: Generator) -> AssetEmbedder | None:
    """New assets get a text embedding: from the packaged model (`local`, loaded on first use) or
    from the Vertex embedding model through the Vertex generator (`vertex`)."""
    if settings.embeddings == "off":
        return None
    if settings.embeddings == "vertex":
        if not isinstance(generator, Embedder):
            raise SettingsError("GENMEDIA_EMBEDDINGS=vertex needs GENMEDIA_GENERATOR=vertex")
        return AssetEmbedder(generator)
    from backends.embeddings import LocalEmbedder

    return AssetEmbedder(_shared_embedder(LocalEmbedder))


@cache
def _shared_embedder(make: Callable[[], Embedder]) -> Embedder:
    return make()  # one model per process, however many runners


def build_result_cache(settings: Settings, docs: DocStore) -> ResultCache | None:
    """The identical-request cache: Redis when GENMEDIA_REDIS_URL is set, else the docstore; or none."""
    if not settings.request_cache:
        return None
    if settings.redis_url:
        from backends.cache.redis import RedisResultCache

        return RedisResultCache(settings.redis_url, prefix=settings.rate_limit_prefix)
    from backends.cache.docstore import DocstoreResultCache

    return DocstoreResultCache(docs)


def build_rate_limiter(settings: Settings) -> RateLimiter:
    """The `limits` moving window: process memory, or Redis (shared by every process) with GENMEDIA_REDIS_URL."""
    from backends.ratelimit.limits_adapter import LimitsRateLimiter, storage_uri

    return LimitsRateLimiter(storage_uri(settings.redis_url), key_prefix=settings.rate_limit_prefix)


def build_rate_limits(settings: Settings, limiter: RateLimiter | None = None) -> RateLimits:
    policy = RatePolicy(
        generate=parse_rate(settings.rate_generate),
        read=parse_rate(settings.rate_read),
        subscribe=parse_rate(settings.rate_subscribe),
    )
    key_policy = RatePolicy(
        generate=parse_rate(settings.rate_key_generate),
        read=parse_rate(settings.rate_key_read),
        subscribe=parse_rate(settings.rate_key_subscribe),
    )
    return RateLimits(limiter or build_rate_limiter(settings), policy, key_policy)
