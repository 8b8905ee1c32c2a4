"""One typed Settings object, read from GENMEDIA_* environment variables."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Literal

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from domain.terms import DEFAULT_TERMS_PUBLISHED_AT, DEFAULT_TERMS_VERSION
from domain.webhook_urls import DEFAULT_RETRY_SCHEDULE, parse_retry_schedule


class Settings(BaseSettings):
    """Everything the studio can be told; adapters are chosen here and built in `wiring`."""

    model_config = SettingsConfigDict(env_prefix="GENMEDIA_", extra="ignore", frozen=True)

    # serving
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=0, le=65535)
    data_dir: Path = Path(".genmedia")
    workers: int = Field(2, ge=0, le=64)
    public_url: str | None = None  # base of signed /files URLs; default http://host:port
    cors_origins: Annotated[list[str], NoDecode] = []
    log_format: Literal["json", "text"] = "text"
    log_level: str = "INFO"
    ws_max_message_bytes: int = Field(64 * 1024, ge=1024)
    token: str | None = None  # for `genmedia generate`: the bearer token to act with

    # adapters
    docstore: Literal["sqlite", "firestore"] = "sqlite"
    blobs: Literal["local", "gcs"] = "local"
    generator: Literal["local", "vertex"] = "local"
    queue: Literal["docstore", "cloudtasks"] = "docstore"
    identity: Literal["local", "firebase"] = "local"
    embeddings: Literal["off", "local", "vertex"] = "off"  # similarTo by text embeddings; see README
    admin_emails: Annotated[list[str], NoDecode] = []  # made ACTIVE ADMIN on first sign-in
    auto_approve_domains: Annotated[list[str], NoDecode] = []  # their addresses start ACTIVE USER

    # Google Cloud
    google_cloud_project: str | None = Field(
        None, validation_alias=AliasChoices("GOOGLE_CLOUD_PROJECT", "GENMEDIA_GOOGLE_CLOUD_PROJECT")
    )
    firestore_database: str = "(default)"  # GENMEDIA_DOCSTORE=firestore: the database id
    bucket: str | None = None  # GENMEDIA_BLOBS=gcs: the private media bucket
    signing_key_file: Path | None = None  # a service-account key that signs URLs (else IAM signBlob)
    signing_service_account: str | None = None  # sign through IAM as this account (default: the runtime one)
    iam_base_url: str = "https://iamcredentials.googleapis.com"
    firebase_certs_url: str = (
        "https://www.googleapis.com/robot/v1/metadata/x509/securetoken@system.gserviceaccount.com"
    )
    google_cloud_location: str = Field(
        "us-central1",
        validation_alias=AliasChoices("GOOGLE_CLOUD_LOCATION", "GENMEDIA_GOOGLE_CLOUD_LOCATION"),
    )
    # GENMEDIA_QUEUE=cloudtasks: the queue jobs are enqueued to, and the worker endpoint it calls
    cloudtasks_queue: str = "genmedia-jobs"
    # a job QUEUED this long is handed to Cloud Tasks again (its first enqueue may have failed)
    redeliver_after_seconds: float = Field(300.0, ge=1, le=86400)
    cloudtasks_location: str | None = None  # default GOOGLE_CLOUD_LOCATION
    cloudtasks_project: str | None = None  # default GOOGLE_CLOUD_PROJECT
    cloudtasks_worker_url: str | None = None  # https://<worker service>/internal/tasks/run
    cloudtasks_service_account: str | None = None  # the invoker account the OIDC token names
    cloudtasks_audience: str | None = None  # the OIDC token's audience; default the worker URL
    cloudtasks_api_endpoint: str = "https://cloudtasks.googleapis.com"
    cloudtasks_certs_url: str = "https://www.googleapis.com/oauth2/v3/certs"
    cloudtasks_dispatch_deadline_seconds: int = Field(1800, ge=15, le=1800)
    tasks_endpoint: bool | None = None  # serve /internal/tasks/run; default: when GENMEDIA_QUEUE=cloudtasks
    vertex_base_url: str | None = None  # another Vertex AI endpoint, called with static credentials
    vertex_timeout_seconds: float = Field(120.0, gt=0)
    vertex_video_timeout_seconds: float = Field(900.0, gt=0)
    vertex_poll_seconds: float = Field(5.0, ge=0)
    vertex_typical_video_seconds: float = Field(60.0, gt=0)
    vertex_retry_attempts: int = Field(5, ge=1, le=20)
    vertex_breaker_failures: int = Field(5, ge=1)
    vertex_breaker_recovery_seconds: float = Field(30.0, ge=0)

    # models (ids only here, never in code paths)
    model_image: str = "gemini-3.1-flash-image"
    model_video: str = "veo-3.1-generate-001"
    model_text: str = "gemini-3-flash"
    model_upscale: str = "imagen-4.0-upscale-preview"
    model_embedding: str = "text-embedding-005"  # GENMEDIA_EMBEDDINGS=vertex

    # more models callers may choose, each `KIND:model-id:price` (comma-separated), listed by `models`
    models_extra: Annotated[list[str], NoDecode] = []

    # prices in USD, per image / video second / 1k tokens / upscaled image
    price_image_usd: float = Field(0.039, ge=0)
    price_video_second_usd: float = Field(0.40, ge=0)
    price_text_1k_tokens_usd: float = Field(0.002, ge=0)
    price_upscale_usd: float = Field(0.06, ge=0)

    # local generator
    local_speed: float = Field(1.0, ge=0, le=100)
    local_fail_rate: float = Field(0.0, ge=0, le=1)

    # jobs
    job_lease_seconds: float = Field(30.0, gt=0)
    job_max_attempts: int = Field(3, ge=1, le=20)
    signed_url_ttl_seconds: int = Field(3600, ge=60, le=7 * 24 * 3600)
    workflow_max_nodes: int = Field(50, ge=1, le=500)
    batch_max_jobs: int = Field(50, ge=1, le=200)  # generations in one generateBatch (one transaction)
    workflow_recheck_seconds: float = Field(10.0, gt=0)  # how often workers re-check unfinished runs

    # library
    trash_days: int = Field(30, ge=1, le=3650)  # a deleted asset is restorable this long, then purgeable

    # tags for new images and videos (a Gemini call each on Vertex; prompt words and colours locally)
    auto_tags: bool = True
    tagging_timeout_seconds: float = Field(10.0, gt=0, le=300)
    model_tagging: str = "gemini-3-flash"  # GENMEDIA_GENERATOR=vertex: the model that describes media

    # moderation before generation: whole words, case- and accent-insensitive (domain.moderation)
    moderation_blocked_terms: Annotated[list[str], NoDecode] = []
    moderation_categories: Annotated[list[str], NoDecode] = []  # built-in lists: violence, sexual, self-harm

    # webhooks
    # whsec_...; unset: one kept in the data dir's secrets. Checked in `wiring`, whose error never echoes it.
    webhook_secret: SecretStr | None = None
    webhook_allow_private: bool = False  # local testing only: http and private addresses allowed
    webhook_retry_schedule: Annotated[tuple[float, ...], NoDecode] = DEFAULT_RETRY_SCHEDULE
    webhook_timeout_seconds: float = Field(5.0, gt=0, le=60)
    webhook_poll_seconds: float = Field(1.0, gt=0, le=60)

    # limits
    max_prompt_chars: int = Field(4000, ge=1)
    max_page_size: int = Field(100, ge=1, le=1000)
    max_body_bytes: int = Field(256 * 1024, ge=256)  # HTTP request bodies (not /files)
    # uploads (createUpload): the largest file per kind, and how long a ticket and its link live
    upload_max_image_bytes: int = Field(20 * 1024 * 1024, ge=1, le=2**31 - 1)
    upload_max_video_bytes: int = Field(100 * 1024 * 1024, ge=1, le=2**31 - 1)
    upload_ttl_seconds: int = Field(3600, ge=5, le=7 * 24 * 3600)
    max_query_depth: int = Field(12, ge=1)
    max_query_aliases: int = Field(30, ge=0)
    max_query_tokens: int = Field(5000, ge=10)
    max_query_cost: int = Field(5000, ge=1)
    # per caller, moving window, in the `limits` format ("30/minute", "10 per 2 hours")
    rate_generate: str = "120/minute"
    rate_read: str = "600/minute"
    rate_subscribe: str = "60/minute"
    request_cache: bool = True  # identical deterministic requests answered from earlier results
    request_cache_ttl_seconds: int = Field(7 * 24 * 3600, ge=60, le=90 * 24 * 3600)
    # per API key as well (besides its owner's limits above): one runaway key cannot spend them all
    rate_key_generate: str = "60/minute"
    rate_key_read: str = "300/minute"
    rate_key_subscribe: str = "30/minute"
    api_key_max_active: int = Field(10, ge=1, le=1000)  # active (not revoked, not expired) keys per user
    api_key_max_days: int = Field(365, ge=1, le=3650)  # expiresAt at most this far ahead (and the default)
    redis_url: str | None = None  # rate limits (and caches) shared by every process; memory when unset
    rate_limit_prefix: str = Field("genmedia", min_length=1, max_length=64, pattern=r"^[A-Za-z0-9:._-]+$")
    ws_max_subscriptions_per_socket: int = Field(20, ge=1)
    ws_max_subscriptions_per_user: int = Field(50, ge=1)  # across a user's sockets, per process
    ws_init_timeout_seconds: float = Field(10.0, gt=0)

    # terms of service: generation needs the current version accepted (`acceptTerms`)
    terms_version: str = Field(DEFAULT_TERMS_VERSION, min_length=1, max_length=64)
    terms_url: str | None = None
    terms_published_at: datetime = DEFAULT_TERMS_PUBLISHED_AT

    # quotas per user (admins override them per user with `setQuota`); periods are UTC days and months
    quota_images_per_day: int = Field(1000, ge=0)
    quota_videos_per_month: int = Field(200, ge=0)
    quota_monthly_budget_usd: float | None = Field(None, ge=0)  # unset: no budget

    @field_validator(
        "rate_generate",
        "rate_read",
        "rate_subscribe",
        "rate_key_generate",
        "rate_key_read",
        "rate_key_subscribe",
    )
    @classmethod
    def _check_rate(cls, value: str) -> str:
        from domain.limits import parse_rate

        parse_rate(value)  # ValueError names what is expected
        return value.strip()

    @field_validator("terms_published_at")
    @classmethod
    def _utc_published_at(cls, value: datetime) -> datetime:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value

    @field_validator("redis_url")
    @classmethod
    def _check_redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        url = value.strip().removeprefix("async+")
        if not url.startswith(("redis://", "rediss://", "redis+unix://")):
            raise ValueError("expected redis://host:port[/db], rediss://... or redis+unix:///path")
        return url

    @field_validator(
        "admin_emails",
        "auto_approve_domains",
        "cors_origins",
        "models_extra",
        "moderation_blocked_terms",
        "moderation_categories",
        mode="before",
    )
    @classmethod
    def _split_list(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [item.strip() for item in text.split(",") if item.strip()]
        return value

    @field_validator("webhook_retry_schedule", mode="before")
    @classmethod
    def _parse_schedule(cls, value: object) -> object:
        if isinstance(value, str | list | tuple):
            return parse_retry_schedule(value)
        return value

    @field_validator("models_extra")
    @classmethod
    def _check_models(cls, value: list[str]) -> list[str]:
        from domain.catalog import parse_extra_model

        for entry in value:
            parse_extra_model(entry)  # ValueError says what is expected
        return value

    @field_validator("moderation_categories")
    @classmethod
    def _check_categories(cls, value: list[str]) -> list[str]:
        from domain.moderation import CATEGORIES

        names = [name.strip().lower() for name in value]
        for name in names:
            if name not in CATEGORIES:
                raise ValueError(f"unknown moderation category {name!r}; known: {', '.join(CATEGORIES)}")
        return names

    @field_validator("admin_emails")
    @classmethod
    def _lower_emails(cls, value: list[str]) -> list[str]:
        return [email.lower() for email in value]

    @field_validator("auto_approve_domains")
    @classmethod
    def _lower_domains(cls, value: list[str]) -> list[str]:
        domains = [domain.strip().lower().removeprefix("@") for domain in value]
        for domain in domains:
            if "." not in domain or "@" in domain or " " in domain:
                raise ValueError(f"not a domain: {domain!r}")
        return domains

    @property
    def base_url(self) -> str:
        return (self.public_url or f"http://{self.host}:{self.port}").rstrip("/")

    @property
    def secret_path(self) -> Path:
        return self.data_dir / "secrets"


class SettingsError(SystemExit):
    """Start-up stops with one line that names the setting at fault."""


def load_settings(**overrides: object) -> Settings:
    """Read Settings from the environment, turning validation errors into one clear line each."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for error in exc.errors():
            loc = error.get("loc") or ("?",)
            name = str(loc[0])
            env = name if name.isupper() else f"GENMEDIA_{name.upper()}"
            lines.append(f"invalid setting {env}: {error.get('msg')} (got {error.get('input')!r})")
        raise SettingsError("\n".join(lines)) from None
