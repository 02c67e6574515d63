"""The change feed in PostgreSQL: ticks recorded, changes read a page at a time, old ones purged
(migration 0013 and the queries of queries.sql say how ticks order the changes)."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime

import asyncpg

from stopgate_server.domain.change_feed import Change, ChangeKind, Position
from stopgate_server.domain.ingest import Source
from stopgate_server.store.queries import QUERIES

TICKER_LOCK_KEY = 0x5709_7111  # any constant; identifies "the change feed's ticker" among advisory locks
_WHOLE_TICK = 2**63 - 1  # the change id after every change of a tick
_SOURCES = {source.value: source for source in Source}


class ChangeFeedStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def tick(self) -> int:
        """Record a tick if changes have committed since the last one; the latest tick either way."""
        return int(
            await self.pool.fetchval(*QUERIES["tick_blocklist_changes"].bind(lock_key=TICKER_LOCK_KEY))
        )

    async def bounds(self) -> tuple[int, int]:
        """The oldest tick kept (the feed can be read from its end) and the latest."""
        row = await self.pool.fetchrow(QUERIES["blocklist_change_ticks_bounds"].sql)
        assert row is not None
        return int(row["oldest"]), int(row["latest"])

    async def page(
        self, after: Position, to_tick: int, licences: Collection[str] | None, limit: int
    ) -> tuple[int, list[Change]]:
        """The oldest tick kept, and up to `limit` changes after `after`, to the end of tick `to_tick`, in
        feed order; only those of `licences` (their quarantines and their shortcodes' stop lists) unless
        None. Read in one snapshot: when `after` is older than the oldest tick, ticks it needed were purged
        and the changes read are not all that followed it."""
        page = QUERIES["blocklist_changes_page"].bind(
            from_tick=after.tick,
            after_id=_WHOLE_TICK if after.change_id is None else after.change_id,
            to_tick=to_tick,
            licences=None if licences is None else list(licences),
            limit=limit,
        )
        async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            oldest = await connection.fetchval(QUERIES["blocklist_change_ticks_oldest"].sql)
            rows = await connection.fetch(*page)
        return int(oldest), [_change(row) for row in rows]

    async def purge(self, before: datetime, batch: int) -> tuple[int, int]:
        """Forget the ticks recorded before `before` (but the latest), then their changes, `batch` rows per
        statement; how many ticks and changes were purged."""
        ticks = await self.pool.execute(*QUERIES["purge_blocklist_change_ticks"].bind(before=before))
        changes = 0
        while purged := int(await self.pool.fetchval(*QUERIES["purge_blocklist_changes"].bind(batch=batch))):
            changes += purged
        return int(ticks.rsplit(" ", 1)[-1]), changes


def _change(row: asyncpg.Record) -> Change:
    quarantine = row["list"] == "q"
    return Change(
        position=Position(int(row["tick"]), int(row["id"])),
        kind=ChangeKind.of(quarantine, row["added"]),
        licence_id=row["owner"] if quarantine else "",
        shortcode="" if quarantine else row["owner"],
        phone=row["phone"],
        changed_at=row["changed_at"],
        since=row["since"],
        source=_SOURCES.get(row["source"]),
        campaign_id=row["campaign_id"] or "",
        event_id=row["event_id"] or "",
    )
