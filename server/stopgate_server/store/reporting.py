"""Reads for reports and exports: campaign counters (one row per campaign), and exports a page at a time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import datetime
from typing import TypeVar

import asyncpg

from stopgate_server.domain.ingest import Source
from stopgate_server.domain.reports import CampaignCounters, DailyActivity, Interaction, QuarantineRow
from stopgate_server.domain.times import from_micros
from stopgate_server.store.queries import QUERIES, Query

EXPORT_CHUNK = 1000
"""Rows per message of an export (the protos promise chunks of up to 1,000 rows)."""
EXPORT_PAGE = 5 * EXPORT_CHUNK
"""Rows per query of an export. Each query plans, pins a connection and finds its STOPs once: larger pages
spread that over more rows, smaller ones hold less memory per export (a page waits in memory while its client
does not read) and a connection for less time. Not a setting: neither side of the trade depends on the
deployment."""
Row = TypeVar("Row")
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
        """Every send of a campaign in send order, with the STOP attributed to it, in chunks (`_pages` says
        which rows an export includes)."""
        campaign = {"licence_id": licence_id, "campaign_id": campaign_id}
        pages = self._pages(
            QUERIES["export_interactions_end"],
            QUERIES["export_interactions_page"],
            _send_position,
            **campaign,
        )
        async for sends in pages:
            # The page's STOPs by a query of their own: one index range (joined in the page's query, they
            # cost more per row)
            times = {
                "first_sent_at": from_micros(sends[0]["sent_us"]),
                "last_sent_at": from_micros(sends[-1]["sent_us"]),
            }
            stops = await self.pool.fetch(*QUERIES["export_interactions_stops"].bind(**campaign, **times))
            by_send = {
                send_id: (stopped_us, Source(source), event_id)
                for send_id, stopped_us, source, event_id in stops
            }
            rows = [
                Interaction(phone, sender, sent_us, *by_send.get(send_id, _NOT_STOPPED))
                for phone, sender, sent_us, send_id in sends
            ]
            for chunk in _chunks(rows):
                yield chunk

    async def quarantine(self, licence_id: str) -> AsyncIterator[list[QuarantineRow]]:
        """A licence's quarantine, oldest first, in chunks (`_pages` says which rows an export includes)."""
        pages = self._pages(
            QUERIES["export_quarantine_end"],
            QUERIES["export_quarantine_page"],
            _entry_position,
            licence_id=licence_id,
        )
        async for entries in pages:
            rows = [
                QuarantineRow(phone, since, Source(source), campaign_id or "", event_id or "")
                for phone, since, source, campaign_id, event_id in entries
            ]
            for chunk in _chunks(rows):
                yield chunk

    async def _pages(
        self,
        end_query: Query,
        page_query: Query,
        position: Callable[[asyncpg.Record], dict[str, object]],
        **parameters: object,
    ) -> AsyncIterator[list[asyncpg.Record]]:
        """The rows of an export, a page at a time by keyset (the position of the last row read): each page
        is one short query on a connection that goes back to the pool as soon as it answers, so nothing is
        held in PostgreSQL however long the caller takes to read (at most one page is read ahead of it).

        `end_query` gives the key of the last row in export order (its columns name `page_query`'s
        `:last_<column>` and `:after_<column>` parameters), read when the export starts: rows stored later
        whose key comes after it are left out, so that an export ends even while rows keep arriving. Every row
        present at the start and still present when the export reaches it comes exactly once, in order; a row
        stored or removed meanwhile, before the end, comes at most once, in its place. `position` gives the
        key of a row of `page_query`."""
        end = await self.pool.fetchrow(*end_query.bind(**parameters))
        if end is None:
            return
        last = {f"last_{column}": value for column, value in end.items()}

        def read(after: dict[str, object]) -> asyncio.Task[list[asyncpg.Record]]:
            """The page after the key `after` (None in every column: the first page)."""
            positioned = {f"after_{column}": value for column, value in after.items()}
            query = page_query.bind(**parameters, **last, **positioned, limit=EXPORT_PAGE)
            return asyncio.create_task(self.pool.fetch(*query))

        # The next page is read while the caller sends this one: PostgreSQL and this process work at once
        upcoming = read({column: None for column, _ in end.items()})
        try:
            while True:
                rows = await upcoming
                more = len(rows) == EXPORT_PAGE
                if more:
                    upcoming = read(position(rows[-1]))
                if rows:
                    yield rows
                if not more:
                    return
        finally:
            # A caller that stops early leaves a page being read ahead: cancel it, its outcome unread
            upcoming.cancel()
            upcoming.add_done_callback(_ignore_outcome)

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


_NOT_STOPPED = (None, None, None)  # the STOP fields of an Interaction without one


def _chunks(rows: list[Row]) -> Iterator[list[Row]]:
    """A page's rows as messages take them: EXPORT_CHUNK at a time."""
    for start in range(0, len(rows), EXPORT_CHUNK):
        yield rows[start : start + EXPORT_CHUNK]


def _ignore_outcome(task: asyncio.Task[object]) -> None:
    """Marks a task's exception as seen (asyncio logs those that nobody retrieved)."""
    if not task.cancelled():
        task.exception()


def _send_position(row: asyncpg.Record) -> dict[str, object]:
    """The key of a row of export_interactions_page (its time is exact in microseconds)."""
    return {"sent_at": from_micros(row["sent_us"]), "phone": row["phone"], "send_id": row["send_id"]}


def _entry_position(row: asyncpg.Record) -> dict[str, object]:
    """The key of a row of export_quarantine_page."""
    return {"since": row["since"], "phone": row["phone"]}
