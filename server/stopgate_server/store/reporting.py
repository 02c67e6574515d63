"""Reads for reports and exports: campaign counters (one row per campaign), and cursors for exports."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from stopgate_server.domain.ingest import Source
from stopgate_server.domain.reports import CampaignCounters, DailyActivity, Interaction, QuarantineRow
from stopgate_server.store.queries import QUERIES, Query

EXPORT_CHUNK = 1000
_SOURCE_COLUMNS = {
    Source.SMS_REPLY: "unsubscribes_sms_reply",
    Source.OPERATOR_NOTIFICATION: "unsubscribes_operator",
    Source.WEB_UNSUBSCRIBE: "unsubscribes_web",
    Source.GATEWAY: "unsubscribes_gateway",
    Source.IMPORT: "unsubscribes_import",
}


class ReportingStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def campaign(self, licence_id: str, campaign_id: str) -> CampaignCounters | None:
        row = await self.pool.fetchrow(
            *QUERIES["report_campaign"].bind(licence_id=licence_id, campaign_id=campaign_id)
        )
        return None if row is None else _counters(row)

    async def campaigns_page(
        self,
        licence_id: str,
        start: datetime | None,
        end: datetime | None,
        after: tuple[datetime, str] | None,
        limit: int,
    ) -> list[CampaignCounters]:
        """The campaigns sent within [start, end) (None: unbounded), first sends newest first, after the
        keyset `after` (first send, campaign) of the previous page."""
        after_first_send_at, after_campaign_id = after if after else (None, "")
        rows = await self.pool.fetch(
            *QUERIES["report_campaigns_page"].bind(
                licence_id=licence_id,
                start_time=start,
                end_time=end,
                after_first_send_at=after_first_send_at,
                after_campaign_id=after_campaign_id,
                limit=limit,
            )
        )
        return [_counters(row) for row in rows]

    async def interactions(self, licence_id: str, campaign_id: str) -> AsyncIterator[list[Interaction]]:
        """Every send of a campaign in send order, with the STOP attributed to it, in chunks."""
        query = QUERIES["export_interactions"]
        async for rows in self._export(query, licence_id=licence_id, campaign_id=campaign_id):
            yield [
                Interaction(phone, sender, sent_us, stopped_us, Source(source) if source else None, event_id)
                for phone, sender, sent_us, stopped_us, source, event_id in rows
            ]

    async def quarantine(self, licence_id: str) -> AsyncIterator[list[QuarantineRow]]:
        """A licence's quarantine, oldest first, in chunks."""
        async for rows in self._export(QUERIES["export_quarantine"], licence_id=licence_id):
            yield [
                QuarantineRow(phone, since, Source(source), campaign_id or "", event_id or "")
                for phone, since, source, campaign_id, event_id in rows
            ]

    async def _export(self, query: Query, **parameters: object) -> AsyncIterator[list[asyncpg.Record]]:
        """Stream a query's rows in chunks from a server-side cursor: memory stays flat whatever the size.
        Closing the iterator early (a cancelled call) ends the transaction and frees the connection."""
        async with self.pool.acquire() as connection, connection.transaction(readonly=True):
            cursor = await connection.cursor(*query.bind(**parameters))
            while rows := await cursor.fetch(EXPORT_CHUNK):
                yield rows

    async def licence_activity(
        self, licence_id: str, start: datetime, end: datetime, top: int
    ) -> tuple[int, list[DailyActivity], list[CampaignCounters]]:
        """In one snapshot: the quarantine's size, the days of [start, end) with opt-outs or opt-ins, and the
        `top` campaigns sent within it with the highest unsubscribe rates."""
        period = {"licence_id": licence_id, "start_time": start, "end_time": end}
        async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            size = await connection.fetchval(*QUERIES["licence_quarantine_size"].bind(licence_id=licence_id))
            daily = await connection.fetch(*QUERIES["licence_daily_activity"].bind(**period))
            campaigns = await connection.fetch(*QUERIES["licence_top_campaigns"].bind(**period, limit=top))
        return (
            int(size),
            [DailyActivity(row["day"].date(), row["stops"], row["opt_ins"]) for row in daily],
            [_counters(row) for row in campaigns],
        )


def _counters(row: asyncpg.Record) -> CampaignCounters:
    return CampaignCounters(
        licence_id=row["licence_id"],
        campaign_id=row["campaign_id"],
        sent_count=row["sent_count"],
        unique_recipients=row["unique_recipients"],
        unsubscribe_count=row["unsubscribe_count"],
        unsubscribes_by_source={
            source: row[column] for source, column in _SOURCE_COLUMNS.items() if row[column]
        },
        first_send_at=row["first_send_at"],
        last_send_at=row["last_send_at"],
        first_stop_at=row["first_stop_at"],
        last_stop_at=row["last_stop_at"],
    )
