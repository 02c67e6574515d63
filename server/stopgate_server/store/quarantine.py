"""Licence quarantine, shortcode stop lists, sends and number history in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import asyncpg

from stopgate_server.domain.senders import Sender
from stopgate_server.domain.verdicts import CONFIRMATION_WINDOW
from stopgate_server.store.blocklist import BlocklistIndex
from stopgate_server.store.queries import QUERIES

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def from_epoch_us(microseconds: int) -> datetime:
    """The time of a block-list entry as the index holds it (microseconds since the epoch, exact)."""
    return EPOCH + timedelta(microseconds=microseconds)


@dataclass
class Blocks:
    """What blocks the numbers of one check: phone → since, per kind of list."""

    quarantined: dict[str, datetime] = field(default_factory=dict)
    stop_listed: dict[str, datetime] = field(default_factory=dict)


@dataclass(frozen=True)
class HistoryRow:
    occurred_at: datetime
    action: str
    source: str
    licence_id: str | None
    campaign_id: str | None
    shortcode: str | None
    event_id: str | None
    actor: str | None
    reason: str | None
    consent_reference: str | None
    attribution: str


@dataclass(frozen=True)
class NumberStatus:
    """Everything known about one number in one licence."""

    quarantine: asyncpg.Record | None
    stop_lists: list[asyncpg.Record]
    last_send: asyncpg.Record | None
    history: list[HistoryRow]


class QuarantineStore:
    """Queries and writes of the block lists. Checks are answered by the in-memory index when it can prove
    it is current; otherwise by PostgreSQL."""

    def __init__(self, pool: asyncpg.Pool, index: BlocklistIndex | None = None) -> None:
        self.pool = pool
        self.index = index

    async def find_blocks(self, licence_id: str, shortcode: str, phones: Sequence[str]) -> Blocks:
        """The quarantine (licence) and stop-list (shortcode, when not "") entries among `phones`."""
        if self.index is not None and self.index.is_current():
            found = self.index.find(licence_id, shortcode, phones)
            if found is not None:
                quarantined, stop_listed = found
                return Blocks(
                    {phone: from_epoch_us(us) for phone, us in quarantined.items()},
                    {phone: from_epoch_us(us) for phone, us in stop_listed.items()},
                )
        blocks = Blocks()
        rows = await self.pool.fetch(QUERIES["find_blocks"], licence_id, shortcode, list(set(phones)))
        for row in rows:
            target = blocks.quarantined if row["kind"] == "q" else blocks.stop_listed
            target[row["phone"]] = row["since"]
        return blocks

    async def claim_confirmations(self, licence_id: str, shortcode: str, phones: Sequence[str]) -> set[str]:
        """Use up the free confirmation of the blocked phones whose STOP allows one now; return them."""
        rows = await self.pool.fetch(
            QUERIES["claim_confirmations"], licence_id, shortcode, list(set(phones)), CONFIRMATION_WINDOW
        )
        return {row["phone"] for row in rows}

    async def record_sends(
        self, licence_id: str, campaign_id: str, sender: Sender, sent_at: datetime, phones: Sequence[str]
    ) -> int:
        """Record one send per phone (with the sender's reply shortcode) and move the campaign's counters,
        atomically."""
        if not phones:
            return 0
        recorded = await self.pool.fetchval(
            QUERIES["record_sends"],
            licence_id,
            campaign_id,
            sender.address,
            sent_at,
            list(phones),
            sender.reply_shortcode,
        )
        return int(recorded)

    async def quarantine(self, licence_id: str, phones: Sequence[str], actor: str, reason: str) -> set[str]:
        """Quarantine by hand; return the phones that were not quarantined before."""
        rows = await self.pool.fetch(QUERIES["quarantine_numbers"], licence_id, list(phones), actor, reason)
        await self._sync_index()
        return {row["phone"] for row in rows}

    async def release(
        self, licence_id: str, phones: Sequence[str], actor: str, reason: str, consent_reference: str
    ) -> set[str]:
        """Release by hand; return the phones that were quarantined."""
        rows = await self.pool.fetch(
            QUERIES["release_numbers"], licence_id, list(phones), actor, reason, consent_reference
        )
        await self._sync_index()
        return {row["phone"] for row in rows}

    async def number_status(self, licence_id: str, phone: str) -> NumberStatus:
        async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            quarantine = await connection.fetchrow(QUERIES["number_quarantine"], phone, licence_id)
            stop_lists = await connection.fetch(QUERIES["number_stop_lists"], phone)
            last_send = await connection.fetchrow(QUERIES["number_last_send"], phone, licence_id)
            history = await connection.fetch(QUERIES["number_history"], phone, licence_id)
        return NumberStatus(quarantine, list(stop_lists), last_send, [HistoryRow(**dict(r)) for r in history])

    async def _sync_index(self) -> None:
        """Make this process's index reflect what was just committed before the caller is answered."""
        if self.index is not None:
            await self.index.sync()
