"""The `stopgate` command: `serve`, `migrate` and `token`."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import sys
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from stopgate_server import config
from stopgate_server.domain.policies import PolicyError
from stopgate_server.obs.logging import configure as configure_logging
from stopgate_server.store.database import DatabaseUnreachable, open_pool, prepare_schema
from stopgate_server.store.embedded import EmbeddedPostgres, EmbeddedPostgresError
from stopgate_server.store.migrations import MigrationError
from stopgate_server.store.tokens import (
    ROLES,
    TokenError,
    TokenRecord,
    create_token,
    list_tokens,
    revoke_token,
)

log = logging.getLogger("stopgate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stopgate",
        description="stopgate: gRPC service that keeps SMS traffic compliant with opt-outs (STOP).",
        epilog="Every flag can also be set by its STOPGATE_* environment variable; flags win.",
    )
    parser.add_argument("--version", action=_PrintVersion)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve gRPC and metrics until SIGTERM/SIGINT",
        description="Serve the stopgate gRPC services and Prometheus metrics until SIGTERM or SIGINT. "
        "Without a database URL, a private PostgreSQL cluster is started under DATA_DIR/pg (initialised "
        "on first use, reused afterwards) and stopped on shutdown. Pending migrations are applied first. "
        "SIGTERM/SIGINT drain: health NOT_SERVING for DRAIN_DELAY_S (a second SIGINT skips it), then no new "
        "calls and SHUTDOWN_GRACE_S for those in flight. A second server on a port already served fails.",
    )
    config.add_arguments(serve)
    migrate_command = commands.add_parser(
        "migrate",
        help="apply pending database migrations and exit",
        description="Apply pending schema migrations (forward-only), create the coming months' partitions "
        "of the send log, and exit. Without a database URL, migrates the embedded cluster under DATA_DIR/pg.",
    )
    config.add_arguments(migrate_command, config.DATABASE_OPTIONS)

    token = commands.add_parser(
        "token",
        help="create, list and revoke API tokens",
        description="Manage the API tokens callers present (`authorization: Bearer <token>`). Roles: "
        "sender (CheckBatch, RecordSends, MessageCompliance), ingest (StopIngest), reporting (Reporting, "
        "GetNumberStatus), admin (QuarantineNumbers, ReleaseNumbers). Servers see a new token at once "
        "and a revocation within 5 seconds.",
    )
    actions = token.add_subparsers(dest="action", required=True, metavar="ACTION")
    create = actions.add_parser("create", help="create a token and print it (shown only once)")
    create.add_argument("name", help="who uses it, e.g. billing-sender (unique among active tokens)")
    create.add_argument(
        "--role", dest="roles", action="append", choices=ROLES, required=True, help="repeat for several"
    )
    create.add_argument(
        "--licence", dest="licences", action="append", default=[], help="limit to a licence (repeatable)"
    )
    actions.add_parser("list", help="list tokens (never the tokens themselves)")
    revoke = actions.add_parser("revoke", help="revoke a token by id or name")
    revoke.add_argument("token", metavar="ID_OR_NAME")
    for action in (create, actions.choices["list"], revoke):
        config.add_arguments(action, config.DATABASE_OPTIONS)
        action.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


class _PrintVersion(argparse.Action):
    """`--version`: print stopgate's version and what it runs on, and exit (grpc loads only then)."""

    def __init__(self, option_strings: list[str], dest: str, **kwargs: Any) -> None:
        super().__init__(
            option_strings, dest, nargs=0, default=argparse.SUPPRESS, help="print the version and exit"
        )

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from stopgate_server.version import version_text

        sys.stdout.write(version_text())
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = config.load(vars(args))
    except config.ConfigError as exc:
        print(f"stopgate: {exc}", file=sys.stderr)
        return 2
    # A server process marks its lines with its worker index (the supervisor's own lines carry none).
    serving = args.command == "serve" and settings.workers == 1
    worker = (settings.worker_index or 0) if serving else None
    # `stopgate token create` prints the token alone on stdout, for `TOKEN=$(stopgate token create ...)`.
    configure_logging(settings.log_level, sys.stderr if args.command == "token" else sys.stdout, worker)
    try:
        if args.command == "serve" and settings.workers > 1:
            from stopgate_server.workers import serve_workers

            asyncio.run(serve_workers(settings))
        elif args.command == "serve":
            from stopgate_server.app import serve  # grpc and the services load only when serving

            asyncio.run(serve(settings))
        elif args.command == "token":
            asyncio.run(_database_task(settings, lambda pool: _token(pool, args)))
        else:
            asyncio.run(_database_task(settings, _migrate))
    except (
        EmbeddedPostgresError,
        DatabaseUnreachable,
        MigrationError,
        PolicyError,
        TokenError,
        OSError,
        RuntimeError,
    ) as exc:
        log.error("stopgate %s failed: %s", args.command, exc)
        print(f"stopgate: {exc}", file=sys.stderr)
        return 1
    except asyncpg.PostgresError as exc:
        log.error("stopgate %s failed: database error %s", args.command, exc.sqlstate)
        print(f"stopgate: database error: {exc}", file=sys.stderr)
        return 1
    except Exception:
        log.exception("stopgate %s failed unexpectedly", args.command)
        return 1
    return 0


async def _database_task(settings: config.Settings, task: Callable[[asyncpg.Pool], Awaitable[None]]) -> None:
    """Run `task` on a migrated database: the configured one, or the embedded cluster (started and
    stopped around it)."""
    embedded = EmbeddedPostgres(settings.data_dir / "pg") if settings.database_url is None else None
    dsn = await asyncio.to_thread(embedded.start) if embedded else settings.database_url
    assert dsn is not None
    try:
        pool = await open_pool(dsn, settings)
        try:
            await task(pool)
        finally:
            await pool.close()
    finally:
        if embedded:
            await asyncio.to_thread(embedded.stop)


async def _migrate(pool: asyncpg.Pool) -> None:
    applied = await prepare_schema(pool)
    names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (schema is current)"
    print(f"applied migrations: {names}")


async def _token(pool: asyncpg.Pool, args: argparse.Namespace) -> None:
    await prepare_schema(pool)
    async with pool.acquire() as connection:
        if args.action == "create":
            record, token = await create_token(connection, args.name, args.roles, args.licences)
            if args.json:
                print(json.dumps({**_token_fields(record), "token": token}))
            else:
                print(token)
                print(
                    f"created {record.token_id} ({record.name}): {_describe(record)}. Store it now: it "
                    "cannot be shown again.",
                    file=sys.stderr,
                )
        elif args.action == "list":
            records = await list_tokens(connection)
            if args.json:
                print(json.dumps([_token_fields(record) for record in records]))
            for record in [] if args.json else records:
                state = f"revoked {record.revoked_at:%Y-%m-%d %H:%M}" if record.revoked_at else "active"
                print(f"{record.token_id}\t{record.name}\t{_describe(record)}\t{state}")
        else:
            token_id = await revoke_token(connection, args.token)
            print(json.dumps({"revoked": token_id}) if args.json else f"revoked {token_id}")


def _describe(record: TokenRecord) -> str:
    licences = ", ".join(record.licences) if record.licences else "every licence"
    return f"roles {', '.join(record.roles)}; {licences}"


def _token_fields(record: TokenRecord) -> dict[str, Any]:
    return {
        "token_id": record.token_id,
        "name": record.name,
        "roles": list(record.roles),
        "licences": list(record.licences),
        "created_at": record.created_at.isoformat() if record.created_at else None,
        "revoked_at": record.revoked_at.isoformat() if record.revoked_at else None,
    }


if __name__ == "__main__":
    sys.exit(main())
