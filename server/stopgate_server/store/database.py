"""The asyncpg pool of a server process, and the database upkeep it runs."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg

from stopgate_server.config import Settings
from stopgate_server.store import CONNECTION_ERRORS, DbConnection
from stopgate_server.store.migrations import Migration, migrate
from stopgate_server.store.queries import QUERIES

log = logging.getLogger(__name__)

SENDS_MONTHS_AHEAD = 3
"""Monthly partitions of `sends` are kept ready this many months ahead."""


async def open_pool(dsn: str, settings: Settings) -> asyncpg.Pool:
    """Open the pool, waiting up to settings.db_connect_timeout_s for PostgreSQL to accept connections."""
    deadline = time.monotonic() + settings.db_connect_timeout_s
    delay = 0.1
    while True:
        try:
            return await asyncpg.create_pool(
                dsn,
                min_size=1,
                max_size=settings.db_pool_size,
                timeout=min(10.0, settings.db_connect_timeout_s),
                reset=keep_session,
                server_settings={
                    "application_name": "stopgate",
                    "statement_timeout": str(settings.statement_timeout_ms),
                    "timezone": "UTC",
                },
            )
        except CONNECTION_ERRORS as exc:
            if time.monotonic() + delay > deadline:
                raise DatabaseUnreachable(
                    f"PostgreSQL did not accept connections within {settings.db_connect_timeout_s:g}s: {exc}"
                ) from exc
            log.warning("waiting for PostgreSQL", extra={"error": str(exc)})
            await asyncio.sleep(delay)
            delay = min(delay * 2, 2.0)


async def keep_session(_connection: asyncpg.Connection) -> None:
    """What a connection needs before it goes back to the pool: nothing beyond what asyncpg always does
    (roll back an open transaction, drop listeners). Its default reset runs `RESET ALL; UNLISTEN *; ...`:
    one more round trip on every use of the pool. stopgate's SQL keeps no session state (no SET, LISTEN,
    session advisory lock or held cursor: tests/unit/test_no_session_state.py), so there is nothing to
    reset."""


class DatabaseUnreachable(RuntimeError):
    """PostgreSQL could not be reached at start."""


async def prepare_schema(pool: asyncpg.Pool) -> list[Migration]:
    """Apply pending migrations and make sure the coming months' send partitions exist; return the
    migrations applied."""
    async with pool.acquire() as connection:
        applied = await migrate(connection)
        await ensure_sends_partitions(connection)
    return applied


async def ensure_sends_partitions(connection: DbConnection) -> None:
    created = await connection.fetchval(
        *QUERIES["ensure_sends_partitions"].bind(months_ahead=SENDS_MONTHS_AHEAD)
    )
    if created:
        log.info("created sends partitions", extra={"partitions": created})


async def ping(pool: asyncpg.Pool, within_s: float) -> None:
    """Raise unless PostgreSQL answers a trivial query within `within_s` seconds."""
    async with asyncio.timeout(within_s), pool.acquire() as connection:
        await connection.fetchval(QUERIES["ping"].sql)
