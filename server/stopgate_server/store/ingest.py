"""Applying a batch of inbound events in one transaction: duplicates, attribution, block lists, history,
campaign counters and the events themselves, all set-based (a few statements per batch, not per event)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from stopgate_server.store import DbConnection
from stopgate_server.store.blocklist import BlocklistIndex
from stopgate_server.store.queries import QUERIES

log = logging.getLogger(__name__)
RETRIES = 3  # a concurrent batch with the same event_id, a deadlock or a serialization failure


@dataclass(frozen=True)
class Event:
    """A valid inbound event, read and classified."""

    event_id: str
    phone: str
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
    blocked: bool = False


class IngestStore:
    def __init__(self, pool: asyncpg.Pool, index: BlocklistIndex | None = None) -> None:
        self.pool = pool
        self.index = index

    async def ingest(self, events: Sequence[Event], rejected: Sequence[Rejected]) -> list[Outcome]:
        """Apply the events and store the rejected ones, atomically; one outcome per event, in order.
        When it returns, everything is committed and this process's block-list index holds it."""
        for attempt in range(1, RETRIES + 1):
            try:
                async with self.pool.acquire() as connection, connection.transaction():
                    outcomes = await _apply(connection, events)
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


async def _apply(connection: DbConnection, events: Sequence[Event]) -> list[Outcome]:
    outcomes: list[Outcome | None] = [None] * len(events)
    first_seen: dict[tuple[str, str], int] = {}
    fresh: list[int] = []
    stored = {
        (row["phone"], row["event_id"]): row
        for row in await connection.fetch(
            QUERIES["ingest_existing_events"], [e.phone for e in events], [e.event_id for e in events]
        )
    }
    for i, event in enumerate(events):
        key = (event.phone, event.event_id)
        if key in stored:
            row = stored[key]
            outcomes[i] = Outcome(
                "DUPLICATE", row["intent"], row["matched_keyword"], row["match_kind"],
                row["licence_id"] or "", row["campaign_id"] or "",
            )  # fmt: skip
        elif key in first_seen:
            continue  # a repeat inside the batch: answered from the first once it is applied
        else:
            first_seen[key] = i
            fresh.append(i)

    # Events of one phone go to successive rounds, so each round changes a row at most once, in order.
    rounds: list[list[int]] = []
    per_phone: dict[str, int] = {}
    for i in fresh:
        number = per_phone.get(events[i].phone, 0)
        per_phone[events[i].phone] = number + 1
        if number == len(rounds):
            rounds.append([])
        rounds[number].append(i)
    for round_indexes in rounds:
        for i, outcome in zip(
            round_indexes, await _apply_round(connection, events, round_indexes), strict=True
        ):
            outcomes[i] = outcome

    for i, event in enumerate(events):
        if outcomes[i] is None:
            original = outcomes[first_seen[(event.phone, event.event_id)]]
            assert original is not None
            outcomes[i] = Outcome(
                "DUPLICATE", original.intent, original.keyword, original.match_kind,
                original.licence_id, original.campaign_id,
            )  # fmt: skip
    return [o for o in outcomes if o is not None]


async def _apply_round(
    connection: DbConnection, all_events: Sequence[Event], indexes: list[int]
) -> list[Outcome]:
    events = [all_events[i] for i in indexes]
    acting = [e for e in events if e.intent in ("OPT_OUT", "OPT_IN")]
    latest = {}
    if acting:
        rows = await connection.fetch(
            QUERIES["ingest_latest_sends"], [e.phone for e in acting], [e.shortcode for e in acting]
        )
        latest = {id(acting[row["idx"] - 1]): row for row in rows}

    licence: dict[int, str] = {}
    campaign: dict[int, str] = {}
    sent_at: dict[int, datetime | None] = {}
    for event in acting:
        send = latest.get(id(event))
        licence[id(event)] = send["licence_id"] if send else event.licence_hint
        campaign[id(event)] = send["campaign_id"] if send else ""
        sent_at[id(event)] = send["sent_at"] if send else None

    opt_outs = [e for e in acting if e.intent == "OPT_OUT"]
    opt_ins = [e for e in acting if e.intent == "OPT_IN"]
    quarantine_new: set[tuple[str, str]] = set()
    quarantined: set[tuple[str, str]] = set()
    listed_new: set[tuple[str, str]] = set()
    listed: set[tuple[str, str]] = set()
    released: set[tuple[str, str]] = set()
    unlisted: set[tuple[str, str]] = set()

    to_quarantine = [e for e in opt_outs if licence[id(e)]]
    if to_quarantine:
        for row in await connection.fetch(
            QUERIES["ingest_quarantine"],
            [e.phone for e in to_quarantine],
            [licence[id(e)] for e in to_quarantine],
            [e.received_at for e in to_quarantine],
            [e.source for e in to_quarantine],
            [campaign[id(e)] or None for e in to_quarantine],
            [e.event_id for e in to_quarantine],
        ):
            key = (row["phone"], row["licence_id"])
            quarantined.add(key)
            if row["inserted"]:
                quarantine_new.add(key)
    to_list = [e for e in opt_outs if e.shortcode]
    if to_list:
        for row in await connection.fetch(
            QUERIES["ingest_stop_list"],
            [e.phone for e in to_list],
            [e.shortcode for e in to_list],
            [e.received_at for e in to_list],
            [e.event_id for e in to_list],
        ):
            key = (row["phone"], row["shortcode"])
            listed.add(key)
            if row["inserted"]:
                listed_new.add(key)
    to_release = [e for e in opt_ins if licence[id(e)]]
    if to_release:
        rows = await connection.fetch(
            QUERIES["ingest_release_quarantine"],
            [e.phone for e in to_release],
            [licence[id(e)] for e in to_release],
        )
        released = {(row["phone"], row["licence_id"]) for row in rows}
    to_unlist = [e for e in opt_ins if e.shortcode]
    if to_unlist:
        rows = await connection.fetch(
            QUERIES["ingest_release_stop_list"],
            [e.phone for e in to_unlist],
            [e.shortcode for e in to_unlist],
        )
        unlisted = {(row["phone"], row["shortcode"]) for row in rows}

    outcomes: list[Outcome] = []
    new_stops: list[Event] = []
    for event in events:
        lic, camp = licence.get(id(event), ""), campaign.get(id(event), "")
        if event.intent == "OPT_OUT":
            in_quarantine = (event.phone, lic) in quarantined
            on_list = (event.phone, event.shortcode) in listed
            is_new = (event.phone, lic) in quarantine_new or (event.phone, event.shortcode) in listed_new
            result = (
                "QUARANTINED"
                if is_new
                else "ALREADY_QUARANTINED"
                if in_quarantine or on_list
                else "NO_ACTION"
            )
            if is_new and camp:  # a campaign's unsubscribes: the STOPs attributed to it that blocked anew
                new_stops.append(event)
            blocked = in_quarantine or on_list
        elif event.intent == "OPT_IN":
            changed = (event.phone, lic) in released or (event.phone, event.shortcode) in unlisted
            result, blocked = ("RELEASED" if changed else "NO_ACTION"), False
        else:
            result, blocked = "NO_ACTION", False
        outcomes.append(Outcome(result, event.intent, event.keyword, event.match_kind, lic, camp, blocked))

    if acting:
        await connection.execute(
            QUERIES["ingest_history"],
            [e.phone for e in acting],
            [e.received_at for e in acting],
            [e.intent for e in acting],
            [e.source for e in acting],
            [licence[id(e)] or None for e in acting],
            [campaign[id(e)] or None for e in acting],
            [e.shortcode or None for e in acting],
            [e.event_id for e in acting],
            [e.reason or None for e in acting],
        )
    await connection.execute(
        QUERIES["ingest_events"],
        [e.phone for e in events],
        [e.event_id for e in events],
        [e.received_at for e in events],
        [e.source for e in events],
        [e.recipient for e in events],
        [e.network for e in events],
        [e.text for e in events],
        [e.country_prefix for e in events],
        [e.reason for e in events],
        [e.licence_hint for e in events],
        [e.intent_hint for e in events],
        [e.intent for e in events],
        [e.keyword for e in events],
        [e.match_kind for e in events],
        [o.outcome for o in outcomes],
        [o.licence_id or None for o in outcomes],
        [o.campaign_id or None for o in outcomes],
        [sent_at.get(id(e)) for e in events],
    )
    # Last: a campaign's counter row is shared by every stream, and its lock is held until commit.
    if new_stops:
        await connection.execute(
            QUERIES["ingest_campaign_stops"],
            [licence[id(e)] for e in new_stops],
            [campaign[id(e)] for e in new_stops],
            [e.source for e in new_stops],
            [e.received_at for e in new_stops],
        )
    return outcomes
