"""`genmedia`: serve, worker, token, user set, generate --watch, purge, export-schema, migrate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from datetime import timedelta
from typing import Any

from config import Settings, load_settings


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


def _serve(settings: Settings, args: argparse.Namespace) -> int:
    import uvicorn

    from app import create_app
    from logs import configure_logging

    configure_logging(settings)
    app = create_app(settings)
    # uvicorn shuts down gracefully on SIGTERM/SIGINT, then raises the signal again under the handler
    # that was in place before it started: with these, a stop asked for ends the process with 0
    # (not -15, nor a KeyboardInterrupt traceback).
    for stop in (signal.SIGTERM, signal.SIGINT):
        signal.signal(stop, _stopped)
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        log_config=None,
        access_log=False,
        ws="websockets-sansio",
        ws_max_size=settings.ws_max_message_bytes,
        timeout_graceful_shutdown=10,
    )
    return 0


def _worker(settings: Settings, args: argparse.Namespace) -> int:
    from domain.workers import run_workers
    from logs import configure_logging
    from wiring import build_followers, build_runner, build_services

    configure_logging(settings)
    concurrency = args.concurrency or max(settings.workers, 1)

    async def main() -> None:
        services = build_services(settings)
        runner = build_runner(services)
        task = asyncio.create_task(
            run_workers(
                services.queue,
                runner,
                concurrency=concurrency,
                sweep_seconds=max(settings.job_lease_seconds / 2, 0.5),
                followers=build_followers(services),
            )
        )
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, task.cancel)
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await services.docs.close()

    asyncio.run(main())
    return 0


def _token(settings: Settings, args: argparse.Namespace) -> int:
    from domain.users import Role, UserStatus
    from wiring import build_docstore, local_issuer

    if settings.identity != "local":
        print("genmedia token works only with GENMEDIA_IDENTITY=local", file=sys.stderr)
        return 2

    async def main() -> str:
        from domain.users import Directory

        docs = build_docstore(settings)
        try:
            user = await Directory(docs).put(
                args.email,
                role=Role(args.role.upper()),
                status=UserStatus.ACTIVE,
                terms_version=None if args.no_terms else settings.terms_version,
            )
        finally:
            await docs.close()
        issuer = local_issuer(settings)
        return str(issuer.issue(user.id, user.email, ttl=timedelta(hours=args.hours)))

    print(asyncio.run(main()))
    return 0


def _user_set(settings: Settings, args: argparse.Namespace) -> int:
    from domain.users import Directory, Role, UserStatus
    from wiring import build_docstore

    async def main() -> dict[str, Any]:
        docs = build_docstore(settings)
        try:
            user = await Directory(docs).put(
                args.email,
                role=Role(args.role.upper()) if args.role else None,
                status=UserStatus(args.status.upper()) if args.status else None,
            )
        finally:
            await docs.close()
        return {"id": user.id, "email": user.email, "role": user.role.value, "status": user.status.value}

    print(json.dumps(asyncio.run(main())))
    return 0


def _export_schema(settings: Settings, args: argparse.Namespace) -> int:
    from strawberry.printer import print_schema

    from schema.root import schema

    print(print_schema(schema))
    return 0


def _generate(settings: Settings, args: argparse.Namespace) -> int:
    import httpx
    from websockets.exceptions import WebSocketException

    from client import generate_and_watch

    token = args.token or settings.token
    if not token:
        print(
            "set GENMEDIA_TOKEN (from `genmedia token --email you@example.com`) or pass --token",
            file=sys.stderr,
        )
        return 2
    url = args.url or settings.base_url
    try:
        return asyncio.run(
            generate_and_watch(url, token, args.kind, args.prompt, watch=args.watch, extra=args.param)
        )
    except (OSError, httpx.TransportError, WebSocketException) as error:  # refused, unreachable, dropped
        detail = str(error) or type(error).__name__
        print(f"error: the connection to the studio at {url} failed: {detail}", file=sys.stderr)
        return 1


def _migrate(settings: Settings, args: argparse.Namespace) -> int:
    from backends.legacy import LegacyBucket, probe_media
    from domain.legacy_records import BadRecord, parse_bucket_url
    from domain.migration import MigrationReport, Migrator, report_lines
    from domain.users import Directory
    from wiring import build_blobs, build_docstore

    try:
        bucket, prefix = parse_bucket_url(args.from_bucket, args.prefix)
    except BadRecord as error:
        print(f"error: {error.reason}", file=sys.stderr)
        return 2

    async def main() -> MigrationReport:
        docs = build_docstore(settings)
        blobs = build_blobs(settings)
        source = LegacyBucket(bucket, project=settings.google_cloud_project)
        try:
            migrator = Migrator(
                docs,
                blobs,
                Directory(docs, admin_emails=frozenset(settings.admin_emails)),
                source,
                probe_media,
                owner_domain=args.owner_domain,
                dry_run=args.dry_run,
                concurrency=args.concurrency,
            )
            return await migrator.run(prefix)
        finally:
            await source.close()
            close = getattr(blobs, "close", None)
            if close is not None:
                await close()
            await docs.close()

    try:
        report = asyncio.run(main())
    except Exception as error:  # the bucket cannot be listed, the studio's stores cannot be reached
        print(f"error: the migration could not run: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    for line in report_lines(report, verbose=args.verbose or args.dry_run):
        print(line)
    return 1 if report.failed else 0


def _purge(settings: Settings, args: argparse.Namespace) -> int:
    from domain.admin import AuditLog, RequestInfo
    from domain.trash import Trash
    from wiring import build_blobs, build_docstore

    days = settings.trash_days if args.older_than_days is None else args.older_than_days

    async def main() -> int:
        docs = build_docstore(settings)
        blobs = build_blobs(settings)
        try:
            trash = Trash(docs, blobs, AuditLog(docs), trash_days=settings.trash_days)
            request = RequestInfo(request_id="genmedia-purge")
            return await trash.purge(None, days, request, dry_run=args.dry_run, by_operator=True)
        finally:
            close = getattr(blobs, "close", None)
            if close is not None:
                await close()
            await docs.close()

    count = asyncio.run(main())
    done = "would be purged (dry run)" if args.dry_run else "purged"
    print(f"{count} assets {done}: in the trash for more than {days} days")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="genmedia", description="GenMedia Studio API")
    commands = parser.add_subparsers(dest="command", required=True)

    commands.add_parser("serve", help="run the API (and GENMEDIA_WORKERS workers)").set_defaults(run=_serve)

    worker = commands.add_parser("worker", help="run job workers only")
    worker.add_argument(
        "--concurrency", type=int, default=0, help="jobs at a time (default GENMEDIA_WORKERS)"
    )
    worker.set_defaults(run=_worker)

    token = commands.add_parser(
        "token", help="local identity: make the user ACTIVE (terms accepted) and print a token"
    )
    token.add_argument("--email", required=True)
    token.add_argument("--role", default="user", choices=["admin", "user", "viewer"])
    token.add_argument("--hours", type=float, default=12.0, help="validity (default 12)")
    token.add_argument(
        "--no-terms", action="store_true", help="do not accept the current terms of service for the user"
    )
    token.set_defaults(run=_token)

    user = commands.add_parser("user", help="manage users")
    user_commands = user.add_subparsers(dest="user_command", required=True)
    user_set = user_commands.add_parser("set", help="create or change a user")
    user_set.add_argument("--email", required=True)
    user_set.add_argument("--role", choices=["admin", "user", "viewer"])
    user_set.add_argument("--status", choices=["active", "pending", "blocked"])
    user_set.set_defaults(run=_user_set)

    generate = commands.add_parser("generate", help="submit a generation and watch it")
    generate.add_argument("kind", choices=["image", "video", "text"])
    generate.add_argument("prompt")
    generate.add_argument("--watch", action="store_true", help="show live progress, then print the asset URL")
    generate.add_argument("--token", help="bearer token (default GENMEDIA_TOKEN)")
    generate.add_argument("--url", help="API base URL (default http://GENMEDIA_HOST:GENMEDIA_PORT)")
    generate.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra input, e.g. aspectRatio=16:9",
    )
    generate.set_defaults(run=_generate)

    purge = commands.add_parser(
        "purge", help="remove assets in the trash longer than the window, with their files"
    )
    purge.add_argument("--older-than-days", type=int, default=None, help="default GENMEDIA_TRASH_DAYS (30)")
    purge.add_argument("--dry-run", action="store_true", help="count what would be removed; remove nothing")
    purge.set_defaults(run=_purge)

    commands.add_parser("export-schema", help="print the GraphQL SDL").set_defaults(run=_export_schema)

    migrate = commands.add_parser("migrate", help="import the old backend's metadata files and media")
    migrate.add_argument("--from-bucket", required=True, help="the old bucket: gs://old-bucket")
    migrate.add_argument("--prefix", help="where the JSON metadata files lie, e.g. metadata/")
    migrate.add_argument("--dry-run", action="store_true", help="write nothing; report what would happen")
    migrate.add_argument("--owner-domain", help="complete bare user names with @DOMAIN; refuse other domains")
    migrate.add_argument("--concurrency", type=int, default=4, help="files imported at a time (default 4)")
    migrate.add_argument("--verbose", action="store_true", help="report every file, not only failed ones")
    migrate.set_defaults(run=_migrate)
    return parser


def main(argv: list[str] | None = None) -> int:
    from domain.errors import StudioError

    args = build_parser().parse_args(argv)
    settings = load_settings()
    try:
        return int(args.run(settings, args))
    except StudioError as error:  # bad input such as `--email notanemail`: one line, no traceback
        print(f"error: {error.message} ({error.code.value})", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
