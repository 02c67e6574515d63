"""A synchronous streaming standby of an embedded cluster and its promotion (drilled by bench/failover.py)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import asyncpg
import pytest
from stopgate_server.store.embedded import EmbeddedPostgres, EmbeddedPostgresError


async def test_a_synchronous_standby_holds_every_commit_and_takes_over(reachable_tmp: Path) -> None:
    name = f"drill-{uuid.uuid4().hex[:6]}"
    primary = EmbeddedPostgres(reachable_tmp / f"{name}-primary")
    standby = EmbeddedPostgres(reachable_tmp / f"{name}-standby")
    primary_dsn = await asyncio.to_thread(primary.start)
    try:
        await asyncio.to_thread(standby.make_standby_of, primary, "standby_a")
        standby_dsn = await asyncio.to_thread(standby.start)
        writer = await asyncpg.connect(primary_dsn)
        try:
            await writer.execute("ALTER SYSTEM SET synchronous_standby_names = 'standby_a'")
            await writer.execute("SELECT pg_reload_conf()")
            for _ in range(100):
                state = await writer.fetchval(
                    "SELECT sync_state FROM pg_stat_replication WHERE application_name = 'standby_a'"
                )
                if state == "sync":
                    break
                await asyncio.sleep(0.05)
            assert state == "sync"
            await writer.execute("CREATE TABLE acked (id integer PRIMARY KEY)")
            await writer.execute("INSERT INTO acked SELECT generate_series(1, 100)")
        finally:
            await writer.close()

        await asyncio.to_thread(primary.stop)  # the standby alone from here on
        await asyncio.to_thread(standby.promote)
        reader = await asyncpg.connect(standby_dsn)
        try:
            assert await reader.fetchval("SELECT count(*) FROM acked") == 100
            assert not await reader.fetchval("SELECT pg_is_in_recovery()")
            await reader.execute("INSERT INTO acked VALUES (101)")  # promoted: it takes writes
        finally:
            await reader.close()
        with pytest.raises(EmbeddedPostgresError, match="already holds a cluster"):
            standby.make_standby_of(primary, "standby_b")
    finally:
        await asyncio.to_thread(standby.stop)
        await asyncio.to_thread(primary.stop)
