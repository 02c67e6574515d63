"""Licence quarantines, shortcode stop lists and number history in PostgreSQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import asyncpg

from stopgate_server.domain.ingest import Attribution, Source
from stopgate_server.domain.numbers import (
    HistoryAction,
    HistoryEntry,
    NumberStatus,
    QuarantineEntry,
    StopListEntry,
)
from stopgate_server.domain.times import from_micros
from stopgate_server.store import sends
from stopgate_server.store.blocklist import BlocklistIndex
from stopgate_server.store.queries import QUERIES


@dataclass
class Blocks:
    """What blocks the numbers of one check: phone → since, per kind of list."""

    quarantined: dict[str, datetime] = field(default_factory=dict)
    stop_listed: dict[str, datetime] = field(default_factory=dict)


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
                    {phone: from_micros(us) for phone, us in quarantined.items()},
                    {phone: from_micros(us) for phone, us in stop_listed.items()},
                )
        blocks = Blocks()
        rows = await self.pool.fetch(
            *QUERIES["find_blocks"].bind(licence_id=licence_id, shortcode=shortcode, phones=list(set(phones)))
        )
        for row in rows:
            target = blocks.quarantined if row["kind"] == "q" else blocks.stop_listed
            target[row["phone"]] = row["since"]
        return blocks

    async def claim_confirmations(
        self, licence_id: str, shortcode: str, phones: Sequence[str], window: timedelta
    ) -> set[str]:
        """Use up the free confirmation of the blocked phones whose STOP came within `window` and whose
        confirmation is unused; return them. Two concurrent claims never both win one."""
        rows = await self.pool.fetch(
            *QUERIES["claim_confirmations"].bind(
                licence_id=licence_id,
                shortcode=shortcode,
                phones=list(set(phones)),
                confirmation_window=window,
            )
        )
        return {row["phone"] for row in rows}

    async def quarantine(self, licence_id: str, phones: Sequence[str], actor: str, reason: str) -> set[str]:
        """Quarantine by hand, audited; return the phones that were not quarantined before."""
        rows = await self.pool.fetch(
            *QUERIES["quarantine_numbers"].bind(
                licence_id=licence_id, phones=list(phones), actor=actor, reason=reason
            )
        )
        await self._sync_index()
        return {row["phone"] for row in rows}

    async def release(
        self, licence_id: str, phones: Sequence[str], actor: str, reason: str, consent_reference: str
    ) -> set[str]:
        """Release by hand, audited; return the phones that were quarantined."""
        rows = await self.pool.fetch(
            *QUERIES["release_numbers"].bind(
                licence_id=licence_id,
                phones=list(phones),
                actor=actor,
                reason=reason,
                consent_reference=consent_reference,
            )
        )
        await self._sync_index()
        return {row["phone"] for row in rows}

    async def number_status(self, licence_id: str, phone: str) -> NumberStatus:
        number = {"phone": phone, "licence_id": licence_id}
        async with self.pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            quarantine = await connection.fetchrow(*QUERIES["number_quarantine"].bind(**number))
            stop_lists = await connection.fetch(*QUERIES["number_stop_lists"].bind(phone=phone))
            last_send = await sends.last_send(connection, phone, licence_id)
            history = await connection.fetch(*QUERIES["number_history"].bind(**number))
        return NumberStatus(
            quarantine=None
            if quarantine is None
            else QuarantineEntry(
                since=quarantine["since"],
                source=Source(quarantine["source"]),
                campaign_id=quarantine["campaign_id"] or "",
                event_id=quarantine["event_id"] or "",
                attribution=attribution(quarantine["attribution"]),
            ),
            stop_lists=[StopListEntry(r["shortcode"], r["since"], r["event_id"] or "") for r in stop_lists],
            last_send=last_send,
            history=[
                HistoryEntry(
                    occurred_at=r["occurred_at"],
                    action=HistoryAction(r["action"]),
                    source=Source(r["source"]),
                    licence_id=r["licence_id"] or "",
                    campaign_id=r["campaign_id"] or "",
                    shortcode=r["shortcode"] or "",
                    event_id=r["event_id"] or "",
                    actor=r["actor"] or "",
                    reason=r["reason"] or "",
                    consent_reference=r["consent_reference"] or "",
                    attribution=attribution(r["attribution"]),
                )
                for r in history
            ],
        )

    async def _sync_index(self) -> None:
        """Make this process's index reflect what was just committed before the caller is answered."""
        if self.index is not None:
            await self.index.sync()


def attribution(stored: str) -> Attribution | None:
    """The rule as stored: "" when none attributed the row (other intents, manual actions)."""
    return Attribution(stored) if stored else None
