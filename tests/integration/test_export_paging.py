"""Exports read a page per query, outside any transaction: a client that does not read holds nothing in
PostgreSQL, and an export delivers what the protos promise (its end fixed at the start, every row once, in
order), page boundaries and rows stored meanwhile included."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from stopgate.interceptors import bearer_token
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)
from stopgate_server.app import Application
from stopgate_server.domain.times import to_micros
from stopgate_server.store.reporting import EXPORT_CHUNK, EXPORT_PAGE, ReportingStore

pb, qc, si = reporting_pb2, quarantine_check_pb2, stop_ingest_pb2
START = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)

# The export of a campaign, in export order, as one query over the tables (the export before it was paged,
# with send_id to order a number sent twice at the same instant): what a paged export must equal.
SINGLE_QUERY = """
SELECT s.phone, s.sender, s.sent_at, stop.received_at, stop.source, stop.event_id
FROM sends s
LEFT JOIN (
    SELECT DISTINCT ON (attributed_send_id) attributed_send_id, received_at, source, event_id
    FROM inbound_events
    WHERE licence_id = $1 AND campaign_id = $2 AND intent = 'OPT_OUT'
      AND outcome IN ('QUARANTINED', 'ALREADY_QUARANTINED')
    ORDER BY attributed_send_id, received_at
) stop ON stop.attributed_send_id = s.send_id
WHERE s.licence_id = $1 AND s.campaign_id = $2
ORDER BY s.sent_at, s.phone, s.send_id
"""
Row = tuple[str, str, int, int | None, str | None, str | None]


def phone(i: int) -> str:
    return f"+3361{i:07d}"


async def seed_sends(db: asyncpg.Connection, campaign: str, sends: Iterable[tuple[str, datetime]]) -> None:
    """Sends of campaign `campaign` of licence acme, by COPY (fast enough for a few MB of export)."""
    await db.copy_records_to_table(
        "sends",
        records=((number, at, "acme", campaign, "36180") for number, at in sends),
        columns=["phone", "sent_at", "licence_id", "campaign_id", "sender"],
    )


def quarantined(i: int) -> str:
    return f"+3362{i:07d}"


async def seed_quarantine(db: asyncpg.Connection, entries: Iterable[tuple[str, datetime]]) -> None:
    """Entries of licence acme's quarantine, by COPY."""
    await db.copy_records_to_table(
        "quarantine",
        records=((number, "acme", since, "MANUAL") for number, since in entries),
        columns=["phone", "licence_id", "since", "source"],
    )


async def stop_sends(db: asyncpg.Connection, campaign: str, indexes: Iterable[int]) -> None:
    """A STOP attributed to each of the sends at `indexes` in export order, as ingest records it."""
    await db.execute(
        """INSERT INTO inbound_events (phone, event_id, received_at, source, intent, outcome, licence_id,
                                       campaign_id, attributed_sent_at, attributed_send_id)
           SELECT phone, 'stop-' || send_id, sent_at + interval '1 hour', 'SMS_REPLY', 'OPT_OUT',
                  'QUARANTINED', licence_id, campaign_id, sent_at, send_id
           FROM (SELECT *, row_number() OVER (ORDER BY sent_at, phone, send_id) - 1 AS position
                 FROM sends WHERE licence_id = 'acme' AND campaign_id = $1) s
           WHERE position = ANY($2::bigint[])""",
        campaign,
        list(indexes),
    )


async def single_query(db: asyncpg.Connection, campaign: str) -> list[Row]:
    rows = await db.fetch(SINGLE_QUERY, "acme", campaign)
    return [
        (
            r["phone"],
            r["sender"],
            to_micros(r["sent_at"]),
            None if r["received_at"] is None else to_micros(r["received_at"]),
            r["source"],
            r["event_id"],
        )
        for r in rows
    ]


def exported(interaction: pb.Interaction) -> Row:
    stopped = interaction.status == pb.INTERACTION_STATUS_STOPPED
    return (
        interaction.phone_number,
        interaction.sender,
        interaction.sent_at.ToMicroseconds(),
        interaction.stopped_at.ToMicroseconds() if stopped else None,
        common_pb2.EventSource.Name(interaction.stop_source).removeprefix("EVENT_SOURCE_")
        if stopped
        else None,
        interaction.stop_event_id if stopped else None,
    )


async def held_transactions(db: asyncpg.Connection) -> set[tuple[int, datetime]]:
    """The transactions of the test's database (other than `db`'s) that are open while their backend waits
    for its client, by (backend, start of the transaction)."""
    rows = await db.fetch(
        """SELECT pid, xact_start FROM pg_stat_activity
           WHERE datname = current_database() AND pid <> pg_backend_pid()
             AND state IN ('idle in transaction', 'idle in transaction (aborted)')"""
    )
    return {(row["pid"], row["xact_start"]) for row in rows}


async def transactions_held_for_a_second(db: asyncpg.Connection) -> set[tuple[int, datetime]]:
    """The transactions idle in transaction both now and a second later: a held one, not a statement
    between two others (the block-list reconciliation has some)."""
    before = await held_transactions(db)
    await asyncio.sleep(1)
    return before & await held_transactions(db)


async def wait_until_pool_whole(app: Application) -> None:
    """Every connection of the server's pool back and idle (health probes borrow one for a moment)."""
    assert app.pool is not None
    for _ in range(250):
        if app.pool.get_idle_size() == app.pool.get_size():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{app.pool.get_size() - app.pool.get_idle_size()} connections still in use")


def stop_of(i: int) -> si.InboundEvent:
    return si.InboundEvent(
        event_id=f"e-{i}",
        source=common_pb2.EVENT_SOURCE_SMS_REPLY,
        phone_number=phone(i),
        recipient="36180",
        text="STOP",
    )


async def export_all(stub: Any, campaign: str) -> list[Row]:
    rows: list[Row] = []
    request = pb.ExportInteractionsRequest(licence_id="acme", campaign_id=campaign)
    async for chunk in stub.ExportInteractions(request, timeout=60):
        assert 0 < len(chunk.interactions) <= EXPORT_CHUNK
        rows.extend(exported(interaction) for interaction in chunk.interactions)
    return rows


@pytest.fixture
async def unread_channel(app: Application, api_token: str) -> AsyncIterator[grpc.aio.Channel]:
    """A channel whose HTTP/2 windows stay at their initial 64 KiB while nothing is read: without BDP probing
    they do not grow (to a few MB), so a few MB of export fill them, where tens would be needed otherwise."""
    target = f"127.0.0.1:{app.grpc_port}"
    options = [("grpc.http2.bdp_probe", 0)]
    async with grpc.aio.insecure_channel(
        target, interceptors=bearer_token(api_token), options=options
    ) as channel:
        yield channel


async def test_unread_exports_hold_no_transaction_and_leave_ingest_and_recording_alone(
    app: Application, unread_channel: grpc.aio.Channel, channel: grpc.aio.Channel, db: asyncpg.Connection
) -> None:
    """Issue 21: exports whose client reads nothing used to keep the pool's connections idle in transaction,
    and ingest and recording waited for them until their deadlines."""
    await seed_sends(db, "big", ((phone(i), START + timedelta(milliseconds=i)) for i in range(100_000)))
    await seed_quarantine(db, ((quarantined(i), START + timedelta(milliseconds=i)) for i in range(100_000)))
    reports = reporting_pb2_grpc.ReportingStub(unread_channel)
    interactions = pb.ExportInteractionsRequest(licence_id="acme", campaign_id="big")
    quarantine = pb.ExportQuarantineRequest(licence_id="acme")
    exports: list[grpc.aio.UnaryStreamCall[Any, Any]] = [
        reports.ExportInteractions(interactions, timeout=120) for _ in range(10)
    ]
    exports += [reports.ExportQuarantine(quarantine, timeout=120) for _ in range(10)]
    try:
        # Each has started: the server sends the initial metadata with the first chunk (read here by nobody)
        await asyncio.wait_for(asyncio.gather(*(call.initial_metadata() for call in exports)), 30)

        ingest = stop_ingest_pb2_grpc.StopIngestStub(channel)
        ack = (await ingest.IngestEvent(si.IngestEventRequest(event=stop_of(1)), timeout=10)).ack
        assert ack.outcome == si.INGEST_OUTCOME_QUARANTINED
        stream = ingest.StreamEvents(timeout=10)
        await stream.write(si.StreamEventsRequest(events=[stop_of(2)]))
        response = await stream.read()
        assert isinstance(response, si.StreamEventsResponse)
        assert [a.outcome for a in response.acks] == [si.INGEST_OUTCOME_QUARANTINED]
        await stream.done_writing()
        checks = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
        recorded = await checks.RecordSends(
            qc.RecordSendsRequest(
                licence_id="acme",
                campaign_id="other",
                sender=common_pb2.Sender(address="36180"),
                phone_numbers=[phone(3), phone(4)],
            ),
            timeout=10,
        )
        assert recorded.recorded_count == 2

        assert await transactions_held_for_a_second(db) == set()
        assert not any(call.done() for call in exports)  # still open, and unread
    finally:
        for call in exports:
            call.cancel()
    await wait_until_pool_whole(app)


async def test_a_paged_export_is_the_single_query_of_its_start(
    unread_channel: grpc.aio.Channel, db: asyncpg.Connection
) -> None:
    """Ten pages and some: numbers sent twice at one instant across a page boundary (told apart by send_id),
    many sends at one instant, STOPs on the sends at the boundaries. No transaction is held while the client
    pauses; sends stored meanwhile, before the export's first row or after its last, are not included;
    nothing comes twice or out of order."""
    total = 10 * EXPORT_PAGE + 321
    times = [START + timedelta(milliseconds=i // 7) for i in range(total)]  # 7 sends per instant
    numbers = [phone(i) for i in range(total)]
    for i in range(EXPORT_PAGE - 2, EXPORT_PAGE + 2):  # one number, four sends at one instant, across pages
        numbers[i], times[i] = numbers[EXPORT_PAGE - 2], times[EXPORT_PAGE - 2]
    await seed_sends(db, "spring", zip(numbers, times, strict=True))
    boundaries = {k * EXPORT_PAGE + offset for k in range(1, 11) for offset in (-1, 0)}
    stopped = {0, 1, EXPORT_PAGE - 2, *boundaries, total - 1}  # 3 of that number's 4 sends
    await stop_sends(db, "spring", stopped)
    expected = await single_query(db, "spring")
    assert len(expected) == total
    assert sum(row[5] is not None for row in expected) == len(stopped)

    call = reporting_pb2_grpc.ReportingStub(unread_channel).ExportInteractions(
        pb.ExportInteractionsRequest(licence_id="acme", campaign_id="spring"), timeout=60
    )
    first = await call.read()
    assert isinstance(first, pb.ExportInteractionsResponse)
    assert await transactions_held_for_a_second(db) == set()
    await seed_sends(db, "spring", [(phone(9_000_001), times[0] - timedelta(seconds=1))])  # before it
    await seed_sends(db, "spring", [(phone(9_000_002), times[-1] + timedelta(seconds=1))])  # after it
    rows = [exported(interaction) for interaction in first.interactions]
    async for chunk in call:
        assert 0 < len(chunk.interactions) <= EXPORT_CHUNK
        rows.extend(exported(interaction) for interaction in chunk.interactions)
    assert rows == expected
    assert len(await single_query(db, "spring")) == total + 2


async def test_rows_stored_or_removed_during_an_export_come_at_most_once_in_their_place(
    app: Application, db: asyncpg.Connection
) -> None:
    """What the protos promise of a paged export, page by page (the store reads one page ahead): a send
    stored behind the export's position is not included, one stored ahead of it is, once and in its place,
    one removed ahead of it is not."""
    total = 6 * EXPORT_PAGE
    sends = [(phone(i), START + timedelta(milliseconds=i)) for i in range(total)]
    await seed_sends(db, "autumn", sends)
    assert app.pool is not None
    chunks = ReportingStore(app.pool).interactions("acme", "autumn")
    received = [row.phone for row in await anext(chunks)]  # pages 1 and 2 are read by now, no further

    behind, ahead, removed = sends[10], sends[4 * EXPORT_PAGE + 10], sends[4 * EXPORT_PAGE + 20]
    await seed_sends(db, "autumn", [(phone(9_000_001), behind[1]), (phone(9_000_002), ahead[1])])
    await db.execute("DELETE FROM sends WHERE campaign_id = 'autumn' AND phone = $1", removed[0])
    async for chunk in chunks:
        received.extend(row.phone for row in chunk)

    expected = [number for number, _ in sends if number != removed[0]]
    expected.insert(4 * EXPORT_PAGE + 11, phone(9_000_002))  # sent at the same instant, after in phone order
    assert received == expected


async def test_the_quarantine_export_pages_through_entries_of_one_instant(
    app: Application, db: asyncpg.Connection
) -> None:
    """A manual quarantine gives thousands of entries one `since`: pages of them follow the phone order. As
    for every export, an entry added behind the position is not included, one released ahead is not."""
    since = START + timedelta(hours=1)
    entries = [(quarantined(i), since + timedelta(seconds=i % 3)) for i in range(3 * EXPORT_PAGE + 5)]
    await seed_quarantine(db, entries)
    expected = [
        row["phone"]
        for row in await db.fetch(
            "SELECT phone FROM quarantine WHERE licence_id = 'acme' ORDER BY since, phone"
        )
    ]
    assert app.pool is not None
    chunks = ReportingStore(app.pool).quarantine("acme")
    received = [row.phone for row in await anext(chunks)]  # pages 1 and 2 are read by now, no further
    await seed_quarantine(db, [(phone(0), since)])  # behind the position: first in (since, phone) order
    await db.execute("DELETE FROM quarantine WHERE phone = $1", expected[-1])
    async for chunk in chunks:
        assert 0 < len(chunk) <= EXPORT_CHUNK
        received.extend(row.phone for row in chunk)
    assert received == expected[:-1]


async def test_a_cancelled_export_frees_its_connection(
    app: Application, unread_channel: grpc.aio.Channel, channel: grpc.aio.Channel, db: asyncpg.Connection
) -> None:
    """Between two pages an export holds no transaction; cancelled, it leaves the pool whole. (This test
    once expected the export's transaction to be open after the first chunk: it was flaky, as the HTTP/2
    windows could take the whole export before the test looked and the transaction had ended by then.)"""
    await seed_sends(
        db, "big", ((phone(i), START + timedelta(milliseconds=i)) for i in range(10 * EXPORT_PAGE))
    )
    call = reporting_pb2_grpc.ReportingStub(unread_channel).ExportInteractions(
        pb.ExportInteractionsRequest(licence_id="acme", campaign_id="big"), timeout=60
    )
    first = await call.read()
    assert isinstance(first, pb.ExportInteractionsResponse)
    assert len(first.interactions) == EXPORT_CHUNK
    assert await transactions_held_for_a_second(db) == set()
    call.cancel()
    await wait_until_pool_whole(app)
    assert len(await export_all(reporting_pb2_grpc.ReportingStub(channel), "big")) == 10 * EXPORT_PAGE
