"""Sends in PostgreSQL: the log that opt-outs are attributed from, and the campaign counters they move."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

import asyncpg

from stopgate_server.domain.numbers import SendRecord
from stopgate_server.domain.request_ids import FirstAnswer, RequestId
from stopgate_server.domain.senders import Sender
from stopgate_server.store import DbConnection
from stopgate_server.store.queries import QUERIES

NO_REQUEST_ID = {"request_id": None, "method": None, "fingerprint": None, "answer": None}
"""The `record_sends` parameters of a recording without a request id (benchmarks bind the query directly)."""


class SendsStore:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    async def record(
        self,
        licence_id: str,
        campaign_id: str,
        sender: Sender,
        sent_at: datetime,
        phones: Sequence[str],
        request: RequestId | None = None,
        answer: bytes = b"",
    ) -> int | None:
        """Record one send per phone (each gets its send_id; with the sender's reply shortcode) and move the
        campaign's counters, atomically; return how many were recorded.

        With a `request` id, the id is recorded with `answer` in the same statement, and nothing is recorded
        (None is returned) when the id was recorded before: see `first_answer`. A copy of the request still
        being recorded is waited for."""
        if not phones and request is None:
            return 0
        row = await self.pool.fetchrow(
            *QUERIES["record_sends"].bind(
                licence_id=licence_id,
                campaign_id=campaign_id,
                sender=sender.address,
                reply_shortcode=sender.reply_shortcode,
                sent_at=sent_at,
                phones=list(phones),
                **(
                    NO_REQUEST_ID
                    if request is None
                    else {
                        "request_id": request.value,
                        "method": request.method,
                        "fingerprint": request.fingerprint,
                        "answer": answer,
                    }
                ),
            )
        )
        assert row is not None  # the statement returns one row
        return int(row["recorded"]) if row["claimed"] else None

    async def first_answer(self, request: RequestId) -> FirstAnswer | None:
        """What `request`'s id was recorded with; None when it is not recorded (or no longer)."""
        row = await self.pool.fetchrow(
            *QUERIES["send_request"].bind(
                request_id=request.value, licence_id=request.licence_id, method=request.method
            )
        )
        return None if row is None else FirstAnswer(row["fingerprint"], row["answer"])


PURGE_BATCH = 10_000
"""Request ids deleted per statement by `purge_request_ids`: each batch is its own short transaction."""


async def purge_request_ids(connection: DbConnection, retention: timedelta) -> int:
    """Delete the request ids recorded more than `retention` ago, in batches; return how many."""
    purged = 0
    while True:
        deleted = await connection.fetchval(
            *QUERIES["purge_send_requests"].bind(retention=retention, batch=PURGE_BATCH)
        )
        purged += int(deleted)
        if deleted < PURGE_BATCH:
            return purged


async def last_send(connection: DbConnection, phone: str, licence_id: str) -> SendRecord | None:
    """The most recent send to `phone` in a licence."""
    row = await connection.fetchrow(*QUERIES["number_last_send"].bind(phone=phone, licence_id=licence_id))
    if row is None:
        return None
    return SendRecord(row["campaign_id"], row["sender"], row["reply_shortcode"], row["sent_at"])
