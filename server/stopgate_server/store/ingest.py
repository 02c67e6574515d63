"""Applying a batch of inbound events in one transaction: duplicates, attribution, block lists, history,
campaign counters and the events themselves, set-based: one statement (queries.sql, ingest_round) applies
a whole batch unless a phone appears in it more than once. usecases/ingest.py documents the rules."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import replace

import asyncpg

from stopgate_server.domain.ingest import (
    Applied,
    Attribution,
    AttributionBounds,
    Classified,
    IngestOutcome,
    Rejected,
)
from stopgate_server.domain.keywords import Intent, MatchKind
from stopgate_server.store import DbConnection
from stopgate_server.store.blocklist import BlocklistIndex
from stopgate_server.store.queries import QUERIES

log = logging.getLogger(__name__)
RETRIES = 3  # a concurrent batch with the same event_id, a deadlock or a serialization failure


# Each stored name's member, looked up per row (a dict is cheaper than the enum's own look-up)
_OUTCOMES = {outcome.value: outcome for outcome in IngestOutcome}
_INTENTS = {intent.value: intent for intent in Intent}
_MATCH_KINDS = {kind.value: kind for kind in MatchKind} | {"": MatchKind.NONE}
_ATTRIBUTIONS: dict[str, Attribution | None] = {rule.value: rule for rule in Attribution} | {"": None}


class IngestStore:
    def __init__(self, pool: asyncpg.Pool, index: BlocklistIndex | None = None) -> None:
        self.pool = pool
        self.index = index

    async def apply(
        self, events: Sequence[Classified], rejected: Sequence[Rejected], bounds: AttributionBounds
    ) -> list[Applied]:
        """Apply the events and store the rejected ones, atomically; one result per event, in order.
        When it returns, everything is committed and this process's block-list index holds it."""
        batch = _Batch(events, bounds)
        statements = len(batch.rounds) + (1 if rejected else 0)
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.acquire() as connection, _atomic(connection, statements):
                    applied = await batch.apply(connection)
                    if rejected:
                        await connection.execute(
                            *QUERIES["ingest_rejected"].bind(
                                event_ids=[r.event_id for r in rejected],
                                received_ats=[r.received_at for r in rejected],
                                raw_events=[r.raw_json for r in rejected],
                                errors=[r.error for r in rejected],
                            )
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
        return applied


def _atomic(connection: DbConnection, statements: int) -> contextlib.AbstractAsyncContextManager[object]:
    """A transaction around several statements. One statement is atomic on its own: a batch of distinct
    phones with no rejected event (the usual one) saves the BEGIN and COMMIT round trips."""
    return connection.transaction() if statements > 1 else contextlib.nullcontext()


class _Batch:
    """The events of one batch in rounds of one statement each: the events of one phone go to successive
    rounds, so that each round changes a row at most once, in the order the events came. A repeat of an
    event inside the batch is applied once and answered as a DUPLICATE of its first occurrence."""

    def __init__(self, events: Sequence[Classified], bounds: AttributionBounds) -> None:
        self.events = events
        self.bounds = bounds
        self.first_seen: dict[tuple[str, str], int] = {}
        self.rounds: list[list[int]] = []
        per_phone: dict[str, int] = {}
        for i, item in enumerate(events):
            key = (item.event.phone, item.event.event_id)
            if key in self.first_seen:
                continue
            self.first_seen[key] = i
            number = per_phone.get(item.event.phone, 0)
            per_phone[item.event.phone] = number + 1
            if number == len(self.rounds):
                self.rounds.append([])
            self.rounds[number].append(i)

    async def apply(self, connection: DbConnection) -> list[Applied]:
        events = self.events
        results: dict[int, Applied] = {}
        for indexes in self.rounds:
            parameters = round_parameters([events[i] for i in indexes], self.bounds)
            for row in await connection.fetch(*QUERIES["ingest_round"].bind(**parameters)):
                results[indexes[row["idx"] - 1]] = Applied(
                    outcome=_OUTCOMES[row["outcome"]],
                    intent=_INTENTS[row["intent"]],
                    keyword=row["matched_keyword"],
                    match_kind=_MATCH_KINDS[row["match_kind"]],
                    licence_id=row["licence_id"],
                    campaign_id=row["campaign_id"],
                    attribution=_ATTRIBUTIONS[row["attribution"]],
                    blocked=row["blocked"],
                )
        for i, item in enumerate(events):
            if i not in results:  # a repeat inside the batch
                first = results[self.first_seen[(item.event.phone, item.event.event_id)]]
                results[i] = replace(first, outcome=IngestOutcome.DUPLICATE, blocked=False)
        return [results[i] for i in range(len(events))]


def round_parameters(events: Sequence[Classified], bounds: AttributionBounds) -> dict[str, object]:
    """The parameters of ingest_round: one array per field of the events, and the attribution bounds."""
    inbound = [item.event for item in events]
    read = [item.classification for item in events]
    return {
        "phones": [e.phone for e in inbound],
        "event_ids": [e.event_id for e in inbound],
        "received_ats": [e.received_at for e in inbound],
        "sources": [e.source.value for e in inbound],
        "recipients": [e.recipient for e in inbound],
        "shortcodes": [e.shortcode for e in inbound],
        "networks": [e.network for e in inbound],
        "texts": [e.text for e in inbound],
        "country_prefixes": [e.country_prefix for e in inbound],
        "reasons": [e.reason for e in inbound],
        "licence_hints": [e.licence_hint for e in inbound],
        "intent_hints": [e.intent_hint.value if e.intent_hint else "" for e in inbound],
        "intents": [r.intent.value for r in read],
        "keywords": [r.keyword for r in read],
        "match_kinds": [r.kind.value for r in read],
        "attribution_window": bounds.window,
        "clock_skew": bounds.clock_skew,
    }
