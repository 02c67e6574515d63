"""The `stopgate` command: `serve` and `migrate`."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys

import asyncpg

from stopgate_server import config
from stopgate_server.domain.policies import PolicyError
from stopgate_server.obs.logging import configure as configure_logging
from stopgate_server.store.database import DatabaseUnreachable, open_pool, prepare_schema
from stopgate_server.store.embedded import EmbeddedPostgres, EmbeddedPostgresError
from stopgate_server.store.migrations import MigrationError

log = logging.getLogger("stopgate")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stopgate",
        description="stopgate: gRPC service that keeps SMS traffic compliant with opt-outs (STOP).",
        epilog="Every flag can also be set by its STOPGATE_* environment variable; flags win.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="serve gRPC and metrics until SIGTERM/SIGINT",
        description="Serve the stopgate gRPC services and Prometheus metrics until SIGTERM or SIGINT. "
        "Without a database URL, a private PostgreSQL cluster is started under DATA_DIR/pg (initialised "
        "on first use, reused afterwards) and stopped on shutdown. Pending migrations are applied first.",
    )
    config.add_arguments(serve)
    migrate_command = commands.add_parser(
        "migrate",
        help="apply pending database migrations and exit",
        description="Apply pending schema migrations (forward-only), create the coming months' partitions "
        "of the send log, and exit. Without a database URL, migrates the embedded cluster under DATA_DIR/pg.",
    )
    config.add_arguments(migrate_command, config.DATABASE_OPTIONS)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = config.load(vars(args))
    except config.ConfigError as exc:
        print(f"stopgate: {exc}", file=sys.stderr)
        return 2
    configure_logging(settings.log_level)
    try:
        if args.command == "serve" and settings.workers > 1:
            from stopgate_server.workers import serve_workers

            asyncio.run(serve_workers(settings))
        elif args.command == "serve":
            from stopgate_server.app import serve  # grpc and the services load only when serving

            asyncio.run(serve(settings))
        else:
            asyncio.run(_migrate(settings))
    except (
        EmbeddedPostgresError,
        DatabaseUnreachable,
        MigrationError,
        PolicyError,
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


async def _migrate(settings: config.Settings) -> None:
    embedded = EmbeddedPostgres(settings.data_dir / "pg") if settings.database_url is None else None
    dsn = await asyncio.to_thread(embedded.start) if embedded else settings.database_url
    assert dsn is not None
    try:
        pool = await open_pool(dsn, settings)
        try:
            applied = await prepare_schema(pool)
        finally:
            await pool.close()
        names = ", ".join(f"{m.version:04d}_{m.name}" for m in applied) or "none (schema is current)"
        print(f"applied migrations: {names}")
    finally:
        if embedded:
            await asyncio.to_thread(embedded.stop)


if __name__ == "__main__":
    sys.exit(main())
