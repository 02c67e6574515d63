"""Erasure of a number's personal data in one transaction, and the retention of raw texts in short batches.

`erase` is the one place that erases: every statement that removes or clears a kind of personal data runs in
its transaction, with the audit record last. `purge_raw_texts` walks the rows stored since it last got to,
in ranges of time, a batch per statement (each its own short transaction), so no lock is held for long and
ingest is not held up (BENCHMARKS.md, "The change feed and erasure").
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import asyncpg

from stopgate_server.domain.erasure import Erasure, ErasureCounts, ErasureRequest, Purged
from stopgate_server.store import DbConnection
from stopgate_server.store.queries import QUERIES

PURGE_BATCH = 5_000
"""Rows emptied per statement by the retention: each batch is its own short transaction."""
FIRST_STEP = timedelta(hours=1)
"""The first range of time a retention round reads; it halves when a batch fills it and doubles when
one does not, so that each range holds about a batch."""
SHORTEST_STEP = timedelta(seconds=1)
LONGEST_STEP = timedelta(days=7)
# The raw data of each table the retention purges, and the statement that purges a batch of it.
_RETAINED = {"inbound_events": "purge_raw_texts", "rejected_events": "purge_raw_events"}


class ErasureStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def erase(self, request: ErasureRequest) -> Erasure:
        """Erase the number's personal data within the request's scope and record the audit row, in one
        transaction; what each statement erased is counted in the audit row and the result."""
        scope = {"phone": request.phone, "licence_id": request.licence_id}
        async with self.pool.acquire() as connection, connection.transaction():
            counts = ErasureCounts(
                inbound_events_cleared=await _count(connection, "erase_inbound_events", scope),
                sends_deleted=await _count(connection, "erase_sends", scope),
                campaign_memberships_deleted=await _count(connection, "erase_campaign_recipients", scope),
                history_entries_cleared=await _count(connection, "erase_number_history", scope),
                quarantine_entries_minimised=await _count(connection, "minimise_quarantine", scope),
                feed_changes_minimised=await _count(connection, "minimise_blocklist_changes", scope),
            )
            row = await connection.fetchrow(
                *QUERIES["record_erasure"].bind(
                    **scope, actor=request.actor, reason=request.reason, counts=json.dumps(counts.as_dict())
                )
            )
        assert row is not None
        return Erasure(row["id"], row["erased_at"], counts)


async def _count(connection: DbConnection, query: str, scope: dict[str, str | None]) -> int:
    return int(await connection.fetchval(*QUERIES[query].bind(**scope)))


async def purge_raw_texts(connection: DbConnection, retention: timedelta) -> Purged:
    """Empty the raw texts of inbound events and the raw input of rejected events stored more than
    `retention` ago; return how many of each."""
    purged = {}
    for table, query in _RETAINED.items():
        purged[table] = await _purge(connection, table, query, retention)
    return Purged(inbound_texts=purged["inbound_events"], rejected_events=purged["rejected_events"])


async def _purge(connection: DbConnection, table: str, query: str, retention: timedelta) -> int:
    """Walk [where the last round got, now - retention) in ranges of time, a batch per statement; record
    each range once no row of it holds raw data, so the next round starts after it."""
    before = datetime.now(UTC) - retention
    after = await connection.fetchval(*QUERIES["raw_text_purged_before"].bind(table_name=table))
    step, purged = FIRST_STEP, 0
    while after < before:
        until = _min(after + step, before)
        row = await connection.fetchrow(*QUERIES[query].bind(after=after, before=until, batch=PURGE_BATCH))
        assert row is not None
        purged += row["purged"]
        if row["selected"] >= PURGE_BATCH:  # maybe more in this range: again, in a shorter one
            step = max(step / 2, SHORTEST_STEP)
            continue
        done = QUERIES["raw_text_purged_up_to"].bind(table_name=table, purged_before=until)
        await connection.execute(*done)
        after, step = until, min(step * 2, LONGEST_STEP)
    return purged


def _min(a: datetime, b: datetime) -> datetime:
    return a if a <= b else b
