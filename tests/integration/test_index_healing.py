"""Invariant 8: the block-list index heals. Its listening connection terminated again and again, or hung,
it is current again within seconds and never lets a quarantined number through; writes that bypass the
triggers are found by reconciliation. Real PostgreSQL, real server, no mocks."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import logging
import os
import signal
import urllib.request
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import grpc
import pytest
from clients import new_token, wait_until_index_current
from prometheus_client.parser import text_string_to_metric_families
from stopgate.interceptors import bearer_token
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)
from stopgate_server.app import Application
from stopgate_server.config import Settings
from stopgate_server.store.blocklist import APPLICATION_NAME, BlocklistIndex
from stopgate_server.store.queries import QUERIES

qc = quarantine_check_pb2
CURRENT_WITHIN_S = 5.0
LISTENER = "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()"


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Any:
    return quarantine_check_pb2_grpc.QuarantineCheckStub(channel)


async def verdicts(stub: Any, phones: list[str], licence: str = "acme", sender: str = "ACME") -> list[str]:
    request = qc.CheckBatchRequest(
        licence_id=licence,
        sender=common_pb2.Sender(address=sender),
        category=common_pb2.MESSAGE_CATEGORY_MARKETING,
        phone_numbers=phones,
    )
    response = await stub.CheckBatch(request, timeout=10)
    return [qc.Verdict.Name(result.verdict) for result in response.results]


async def quarantine(stub: Any, phone: str) -> None:
    request = qc.QuarantineNumbersRequest(
        licence_id="acme", phone_numbers=[phone], actor="ops", reason="test"
    )
    await stub.QuarantineNumbers(request, timeout=10)


async def terminate_listener(db: asyncpg.Connection) -> None:
    """End the index's listening backend, as an operator's pg_terminate_backend would."""
    pids = [row["pid"] for row in await db.fetch(LISTENER, APPLICATION_NAME)]
    assert len(pids) == 1
    assert await db.fetchval("SELECT pg_terminate_backend($1)", pids[0])


def holds(index: BlocklistIndex, phone: str, shortcode: str = "") -> bool:
    """Whether the index is current and answers that the phone is quarantined in acme."""
    found = index.find("acme", shortcode, [phone])
    return index.is_current() and found is not None and phone in found[0]


def scrape(app: Application) -> dict[str, float]:
    """{sample name with its labels: value} of the server's /metrics."""
    url = f"http://127.0.0.1:{app.metrics_port}/metrics"
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    return {
        sample.name + "".join(f",{k}={v}" for k, v in sorted(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def test_fifty_terminations_of_the_listening_connection(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    """After each termination the index is current again within 5 s; a number quarantined meanwhile (by
    this process) is blocked throughout, never allowed."""
    assert app.index is not None
    await wait_until_index_current(app)
    quarantined: list[str] = []
    loop = asyncio.get_running_loop()
    for i in range(50):
        await terminate_listener(db)
        terminated_at = loop.time()
        quarantined.append(f"+3361000{i:04d}")
        await quarantine(stub, quarantined[-1])
        while not holds(app.index, quarantined[-1]):
            assert set(await verdicts(stub, quarantined)) == {"VERDICT_BLOCK"}
            assert loop.time() - terminated_at < CURRENT_WITHIN_S, f"termination {i + 1}: not current in time"
            await asyncio.sleep(0.01)
        assert set(await verdicts(stub, quarantined)) == {"VERDICT_BLOCK"}


async def test_a_restart_is_logged_and_counted(
    app: Application, db: asyncpg.Connection, caplog: pytest.LogCaptureFixture
) -> None:
    await wait_until_index_current(app)
    before = scrape(app)["stopgate_blocklist_index_restarts_total"]
    with caplog.at_level(logging.ERROR, logger="stopgate_server.store.blocklist"):
        await terminate_listener(db)
        await asyncio.sleep(0.2)
        await wait_until_index_current(app)
    assert scrape(app)["stopgate_blocklist_index_restarts_total"] >= before + 1
    failures = [r for r in caplog.records if r.levelno == logging.ERROR and r.exc_info]
    assert failures, "the failure is logged at ERROR with its exception"


async def test_a_hung_listening_backend_delays_an_ack_by_at_most_1_5_s(
    app: Application, channel: grpc.aio.Channel, stub: Any, db: asyncpg.Connection
) -> None:
    """SIGSTOP the listening backend: heartbeats are no longer answered. An ingest ack (which waits for
    this process's index) comes within 1.5 s, the STOP blocks, and the index replaces the connection."""
    assert app.index is not None
    await wait_until_index_current(app)
    pid = await db.fetchval(LISTENER, APPLICATION_NAME)
    ingest = stop_ingest_pb2_grpc.StopIngestStub(channel)
    loop = asyncio.get_running_loop()
    os.kill(pid, signal.SIGSTOP)
    try:
        event = stop_ingest_pb2.InboundEvent(
            event_id="hung-1",
            source=common_pb2.EVENT_SOURCE_SMS_REPLY,
            phone_number="+33612345678",
            recipient="36180",
            text="STOP",
            licence_id="acme",
        )
        started = loop.time()
        await ingest.IngestEvent(stop_ingest_pb2.IngestEventRequest(event=event), timeout=10)
        assert loop.time() - started <= 1.5
        assert await verdicts(stub, ["+33612345678"]) == ["VERDICT_BLOCK"]
        while not holds(app.index, "+33612345678"):
            assert loop.time() - started < CURRENT_WITHIN_S
            await asyncio.sleep(0.01)
        assert {row["pid"] for row in await db.fetch(LISTENER, APPLICATION_NAME)} - {pid}  # a new connection
    finally:
        os.kill(pid, signal.SIGCONT)


@pytest.fixture
async def reconciling_app(
    database_url: str, server_settings: Callable[[str], Settings]
) -> AsyncIterator[tuple[Application, grpc.aio.Channel]]:
    """A server whose index compares itself with PostgreSQL every 0.5 s."""
    token = await new_token(database_url)
    settings = dataclasses.replace(server_settings(database_url), index_reconcile_interval_s=0.5)
    application = Application(settings)
    await application.start()
    try:
        target = f"127.0.0.1:{application.grpc_port}"
        async with grpc.aio.insecure_channel(target, interceptors=bearer_token(token)) as channel:
            yield application, channel
    finally:
        await application.stop()


async def test_writes_that_bypass_the_triggers_are_found_by_reconciliation(
    reconciling_app: tuple[Application, grpc.aio.Channel],
    db: asyncpg.Connection,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """An insert into quarantine and a delete from a stop list made with session_replication_role =
    replica (as logical replication and pg_restore --disable-triggers do) announce nothing; reconciliation
    finds both lists different, reloads them, says so at WARNING and counts them."""
    app, channel = reconciling_app
    stub = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
    assert app.index is not None
    await db.execute(
        "INSERT INTO shortcode_stop_list (phone, shortcode, since) VALUES ('+33698765432', '36180', now())"
    )
    await wait_until_index_current(app)
    await app.index.sync()
    assert await verdicts(stub, ["+33612345678", "+33698765432"], sender="36180") == [
        "VERDICT_ALLOW",
        "VERDICT_BLOCK",
    ]
    before = scrape(app)
    with caplog.at_level(logging.WARNING, logger="stopgate_server.store.blocklist"):
        async with db.transaction():
            await db.execute("SET LOCAL session_replication_role = replica")
            await db.execute(
                "INSERT INTO quarantine (phone, licence_id, since, source)"
                " VALUES ('+33612345678', 'acme', now(), 'IMPORT')"
            )
            await db.execute("DELETE FROM shortcode_stop_list WHERE phone = '+33698765432'")
        loop = asyncio.get_running_loop()
        started = loop.time()
        while not (app.index.is_current() and holds(app.index, "+33612345678", shortcode="36180")):
            assert loop.time() - started < 10, "reconciliation did not find the writes"
            await asyncio.sleep(0.05)
    found = app.index.find("acme", "36180", ["+33698765432"])
    assert found is not None
    assert found[1] == {}  # the stop list's entry deleted bypassing the triggers is gone too
    assert await verdicts(stub, ["+33612345678", "+33698765432"], sender="36180") == [
        "VERDICT_BLOCK",
        "VERDICT_ALLOW",
    ]
    after = scrape(app)
    for kind in ("quarantine", "stop_list"):
        key = f"stopgate_blocklist_index_reloaded_lists_total,list={kind}"
        assert after[key] >= before[key] + 1
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING and "reloading" in r.getMessage()]
    assert warnings
    assert any(getattr(r, "quarantine", None) == ["acme"] for r in warnings)


async def test_postgresql_and_the_index_sum_up_lists_alike(app: Application, db: asyncpg.Connection) -> None:
    """The digests of blocklist_summary and PhoneSet.digest agree on lists held as arrays with changes
    since, small lists, and strings that are not plain E.164; so reconciliation finds nothing to reload."""
    assert app.index is not None
    await wait_until_index_current(app)
    await db.execute(
        "INSERT INTO quarantine (phone, licence_id, since, source)"
        " SELECT '+336' || lpad(i::text, 8, '0'), 'big', now(), 'IMPORT' FROM generate_series(0, 2999) i"
    )
    await app.index.stop()
    await app.index.start()  # a fresh load: the big list becomes arrays
    await wait_until_index_current(app)
    await db.execute("DELETE FROM quarantine WHERE licence_id = 'big' AND phone LIKE '%7'")
    await db.execute(
        "INSERT INTO quarantine (phone, licence_id, since, source)"
        " SELECT phone, licence_id, now(), 'IMPORT' FROM (VALUES ('+447700900123', 'big'),"
        " ('+999999999999999', 'big'), ('+1234567890123456', 'big'), ('+0123', 'small'),"
        " ('tel:123', 'small'),"
        " ('+33612345678', 'small')) AS v(phone, licence_id)"
    )
    await db.execute(
        "INSERT INTO shortcode_stop_list (phone, shortcode, since) VALUES ('+33612345678', '36180', now())"
    )
    await app.index.sync()
    rows = await db.fetch(QUERIES["blocklist_summary"].sql)
    assert {(r["kind"], r["list_key"]) for r in rows} == {("q", "big"), ("q", "small"), ("s", "36180")}
    for row in rows:
        ours = app.index._digest((row["kind"], row["list_key"]))
        assert ours == (
            row["size"],
            int(row["total"]) % 2**64,
            row["mixed"] % 2**64,
            row["scrambled"] % 2**64,
        )
    assert await app.index.reconcile() == set()


async def test_no_reload_for_changes_in_flight(
    app: Application, db: asyncpg.Connection, database_url: str
) -> None:
    """Lists changing all through a comparison (through the triggers) never look different."""
    assert app.index is not None
    await wait_until_index_current(app)
    writer = await asyncpg.connect(database_url)
    stop = asyncio.Event()

    async def write() -> None:
        i = 0
        while not stop.is_set():
            phones = [f"+3362{i:03d}{j:04d}" for j in range(20)]
            await writer.execute(
                "INSERT INTO quarantine (phone, licence_id, since, source)"
                " SELECT unnest($1::text[]), 'acme', now(), 'IMPORT'",
                phones,
            )
            await writer.execute(
                "DELETE FROM quarantine WHERE phone = ANY($1::text[]) AND phone LIKE '%1'", phones
            )
            i += 1

    writing = asyncio.create_task(write())
    try:
        rounds = [await app.index._differing(None) for _ in range(10)]
    finally:
        stop.set()
        await writing
        await writer.close()
    assert all(not differing for differing in rounds)  # None: a round that could not tell
    assert rounds.count(set()) >= 5


async def test_reconciliation_is_not_starved_by_steady_writes(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    """Every write makes its process wait for the index (`sync`), and under steady writes one such wait is
    nearly always under way: a round must still tell, find the list a bypassing write changed, and reload
    it, not give up round after round while the number stays allowed."""
    assert app.index is not None
    await wait_until_index_current(app)
    writing = True

    async def write_steadily() -> None:
        for i in itertools.count():
            if not writing:
                return
            await quarantine(stub, f"+336200{i:05d}")

    writer = asyncio.create_task(write_steadily())
    bypassed = [f"+336999999{k:02d}" for k in range(5)]
    rounds = []
    try:
        await asyncio.sleep(0.2)  # writes under way
        for phone in bypassed:  # five rounds in a row, each must tell
            async with db.transaction():
                await db.execute("SET LOCAL session_replication_role = replica")
                await db.execute(
                    "INSERT INTO quarantine (phone, licence_id, since, source)"
                    " VALUES ($1, 'acme', now(), 'IMPORT')",
                    phone,
                )
            rounds.append(await app.index.reconcile())
    finally:
        writing = False
        await writer
    assert rounds == [{("q", "acme")}] * len(bypassed)
    found = app.index.find("acme", "", bypassed)
    assert found is not None
    assert set(found[0]) == set(bypassed)
