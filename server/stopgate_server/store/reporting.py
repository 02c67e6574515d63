"""Reads for reports and exports: campaign counters (one row per campaign), and cursors for exports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from stopgate_server.store.queries import QUERIES

EXPORT_CHUNK = 1000


class ReportingStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def campaign(self, licence_id: str, campaign_id: str) -> asyncpg.Record | None:
        return await self.pool.fetchrow(QUERIES["report_campaign"], licence_id, campaign_id)

    async def campaigns_page(
        self,
        licence_id: str,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[asyncpg.Record]:
        after_time, after_campaign = after if after else (None, "")
        return list(
            await self.pool.fetch(
                QUERIES["report_campaigns_page"], licence_id, start, end, after_time, after_campaign, limit
            )
        )

    async def export(self, query: str, *args: object) -> AsyncIterator[list[asyncpg.Record]]:
        """Stream a query's rows in chunks from a server-side cursor: memory stays flat whatever the size.
        Closing the iterator early (a cancelled call) ends the transaction and frees the connection."""
        async with self.pool.acquire() as connection, connection.transaction(readonly=True):
            cursor = await connection.cursor(QUERIES[query], *args)
            while rows := await cursor.fetch(EXPORT_CHUNK):
                yield rows

    async def licence_summary(
        self, licence_id: str, start: datetime, end: datetime, top: int
    ) -> tuple[int, list[asyncpg.Record], list[asyncpg.Record]]:
        async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            size = await connection.fetchval(QUERIES["licence_quarantine_size"], licence_id)
            daily = await connection.fetch(QUERIES["licence_daily_activity"], licence_id, start, end)
            campaigns = await connection.fetch(QUERIES["licence_top_campaigns"], licence_id, start, end, top)
        return int(size), list(daily), list(campaigns)
