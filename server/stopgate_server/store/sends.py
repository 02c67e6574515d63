"""Sends in PostgreSQL: the log that opt-outs are attributed from, and the campaign counters they move."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import asyncpg

from stopgate_server.domain.numbers import SendRecord
from stopgate_server.domain.senders import Sender
from stopgate_server.store import DbConnection
from stopgate_server.store.queries import QUERIES


class SendsStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(
        self, licence_id: str, campaign_id: str, sender: Sender, sent_at: datetime, phones: Sequence[str]
    ) -> int:
        """Record one send per phone (each gets its send_id; with the sender's reply shortcode) and move the
        campaign's counters, atomically; return how many were recorded."""
        if not phones:
            return 0
        recorded = await self.pool.fetchval(
            *QUERIES["record_sends"].bind(
                licence_id=licence_id,
                campaign_id=campaign_id,
                sender=sender.address,
                reply_shortcode=sender.reply_shortcode,
                sent_at=sent_at,
                phones=list(phones),
            )
        )
        return int(recorded)


async def last_send(connection: DbConnection, phone: str, licence_id: str) -> SendRecord | None:
    """The most recent send to `phone` in a licence."""
    row = await connection.fetchrow(*QUERIES["number_last_send"].bind(phone=phone, licence_id=licence_id))
    if row is None:
        return None
    return SendRecord(row["campaign_id"], row["sender"], row["reply_shortcode"], row["sent_at"])
