"""Applying a batch of inbound events in one transaction: duplicates, attribution, block lists, history,
campaign counters and the events themselves, set-based: one statement (queries.sql, ingest_round) applies
a whole batch unless a phone appears in it more than once."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import NamedTuple

import asyncpg

from stopgate_server.domain.ingest import ATTRIBUTION_CLOCK_SKEW, ATTRIBUTION_WINDOW
from stopgate_server.store import DbConnection
from stopgate_server.store.blocklist import BlocklistIndex
from stopgate_server.store.queries import QUERIES

log = logging.getLogger(__name__)
RETRIES = 3  # a concurrent batch with the same event_id, a deadlock or a serialization failure


class Event(NamedTuple):
    """A valid inbound event, read and classified. Its fields are the columns ingest_round takes, in order."""

    phone: str
    event_id: str
    received_at: datetime
    source: str
    recipient: str
    shortcode: str
    network: str
    text: str
    country_prefix: str
    reason: str
    licence_hint: str
    intent_hint: str
    intent: str
    keyword: str
    match_kind: str


@dataclass(frozen=True)
class Rejected:
    """An event refused before it could be applied, kept with its raw input."""

    event_id: str
    received_at: datetime | None
    raw_json: str
    error: str


@dataclass(frozen=True)
class Outcome:
    """What was done with one event (for a duplicate: what was done the first time)."""

    outcome: str
    intent: str
    keyword: str
    match_kind: str
    licence_id: str
    campaign_id: str
    attribution: str  # the rule that attributed it (domain.ingest.Attribution), "" for other intents
    blocked: bool = False


class IngestStore:
    def __init__(self, pool: asyncpg.Pool, index: BlocklistIndex | None = None) -> None:
        self.pool = pool
        self.index = index

    async def ingest(self, events: Sequence[Event], rejected: Sequence[Rejected]) -> list[Outcome]:
        """Apply the events and store the rejected ones, atomically; one outcome per event, in order.
        When it returns, everything is committed and this process's block-list index holds it."""
        batch = _Batch(events)
        statements = len(batch.rounds) + (1 if rejected else 0)
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.acquire() as connection, _atomic(connection, statements):
                    outcomes = await batch.apply(connection)
                    if rejected:
                        await connection.execute(
                            QUERIES["ingest_rejected"],
                            [r.event_id for r in rejected],
                            [r.received_at for r in rejected],
                            [r.raw_json for r in rejected],
                            [r.error for r in rejected],
                        )
                break
            except (asyncpg.UniqueViolationError, asyncpg.DeadlockDetectedError, asyncpg.SerializationError):
                if attempt == RETRIES:
                    raise
                log.info(
                    "ingest batch conflicted with a concurrent one; retrying", extra={"attempt": attempt}
                )
                await asyncio.sleep(0.01 * attempt)
        if self.index is not None:
            await self.index.sync()
        return outcomes


def _atomic(connection: DbConnection, statements: int) -> contextlib.AbstractAsyncContextManager[object]:
    """A transaction around several statements. One statement is atomic on its own: a batch of distinct
    phones with no rejected event (the usual one) saves the BEGIN and COMMIT round trips."""
    return connection.transaction() if statements > 1 else contextlib.nullcontext()


class _Batch:
    """The events of one batch in rounds of one statement each: the events of one phone go to successive
    rounds, so that each round changes a row at most once, in the order the events came. A repeat of an
    event inside the batch is applied once and answered as a DUPLICATE of its first occurrence."""

    def __init__(self, events: Sequence[Event]) -> None:
        self.events = events
        self.first_seen: dict[tuple[str, str], int] = {}
        self.rounds: list[list[int]] = []
        per_phone: dict[str, int] = {}
        for i, event in enumerate(events):
            key = (event.phone, event.event_id)
            if key in self.first_seen:
                continue
            self.first_seen[key] = i
            number = per_phone.get(event.phone, 0)
            per_phone[event.phone] = number + 1
            if number == len(self.rounds):
                self.rounds.append([])
            self.rounds[number].append(i)

    async def apply(self, connection: DbConnection) -> list[Outcome]:
        events = self.events
        outcomes: dict[int, Outcome] = {}
        for indexes in self.rounds:
            applied = [events[i] for i in indexes]
            rows = await connection.fetch(QUERIES["ingest_round"], *round_arguments(applied))
            for row in rows:
                outcomes[indexes[row["idx"] - 1]] = Outcome(
                    outcome=row["outcome"],
                    intent=row["intent"],
                    keyword=row["matched_keyword"],
                    match_kind=row["match_kind"],
                    licence_id=row["licence_id"],
                    campaign_id=row["campaign_id"],
                    attribution=row["attribution"],
                    blocked=row["blocked"],
                )
        for i, event in enumerate(events):
            if i not in outcomes:  # a repeat inside the batch
                first = outcomes[self.first_seen[(event.phone, event.event_id)]]
                outcomes[i] = replace(first, outcome="DUPLICATE", blocked=False)
        return [outcomes[i] for i in range(len(events))]


def round_arguments(events: Sequence[Event]) -> list[object]:
    """The arguments of ingest_round: one array per field of Event, then the attribution window and the
    clock skew allowed between an event and the send it answers."""
    return [
        *(list(column) for column in zip(*events, strict=True)),
        ATTRIBUTION_WINDOW,
        ATTRIBUTION_CLOCK_SKEW,
    ]
