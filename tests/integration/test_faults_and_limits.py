"""Faults and limits, bounded and on loopback only: a slow database, deadlines, the concurrency limit, the
streams of one connection, an oversized message, a client leaving mid-stream, and PostgreSQL stopped under
a mixed load."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import grpc
import pytest
from clients import OwnServer, wait_until_index_current
from grpc_health.v1 import health_pb2, health_pb2_grpc
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

ALICE = "+33612345678"
MARKETING = common_pb2.MESSAGE_CATEGORY_MARKETING


def status_request(phone: str = ALICE) -> quarantine_check_pb2.GetNumberStatusRequest:
    return quarantine_check_pb2.GetNumberStatusRequest(licence_id="acme", phone_number=phone)


def check_request(*phones: str) -> quarantine_check_pb2.CheckBatchRequest:
    return quarantine_check_pb2.CheckBatchRequest(
        licence_id="acme",
        sender=common_pb2.Sender(address="36180"),
        category=MARKETING,
        phone_numbers=list(phones),
    )


@pytest.fixture
async def started(
    database_url: str, api_token: str, server_settings: Callable[[str], Settings]
) -> AsyncIterator[Callable[..., Any]]:
    """Start in-process servers with some settings changed; returns a QuarantineCheck stub for each."""
    apps: list[Application] = []
    channels: list[grpc.aio.Channel] = []

    async def start(**changes: Any) -> Any:
        application = Application(dataclasses.replace(server_settings(database_url), **changes))
        await application.start()
        apps.append(application)
        target = f"127.0.0.1:{application.grpc_port}"
        channels.append(grpc.aio.insecure_channel(target, interceptors=bearer_token(api_token)))
        return quarantine_check_pb2_grpc.QuarantineCheckStub(channels[-1])

    yield start
    for channel in channels:
        await channel.close()
    for application in apps:
        await application.stop()


@pytest.fixture
async def locked_quarantine(database_url: str) -> AsyncIterator[Callable[[], Any]]:
    """Hold an exclusive lock on `quarantine` (every read of it waits) until the returned release()."""
    connection = await asyncpg.connect(database_url)
    transaction = connection.transaction()
    await transaction.start()
    await connection.execute("LOCK TABLE quarantine IN ACCESS EXCLUSIVE MODE")
    released = False

    async def release() -> None:
        nonlocal released
        if not released:
            released = True
            await transaction.rollback()

    yield release
    await release()
    await connection.close()


async def code_of(call: Any) -> grpc.StatusCode:
    try:
        await call
    except grpc.aio.AioRpcError as error:
        return error.code()
    return grpc.StatusCode.OK


async def test_a_slow_database_ends_calls_at_their_deadline_and_the_pool_recovers(
    started: Any, locked_quarantine: Any, db: asyncpg.Connection
) -> None:
    stub = await started()  # a pool of 4 connections
    began = time.monotonic()
    codes = await asyncio.gather(
        *(code_of(stub.GetNumberStatus(status_request(), timeout=1)) for _ in range(8))
    )
    assert codes == [grpc.StatusCode.DEADLINE_EXCEEDED] * 8
    assert time.monotonic() - began < 10  # they ended at their deadline, not when the lock went away
    await locked_quarantine()
    replies = await asyncio.gather(*(stub.GetNumberStatus(status_request(), timeout=10) for _ in range(8)))
    assert all(not reply.quarantined for reply in replies)
    waiting = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    assert waiting == 0  # the abandoned queries were cancelled, not left queued behind the lock


async def test_the_server_bounds_calls_without_or_with_too_long_a_deadline(
    started: Any, locked_quarantine: Any
) -> None:
    stub = await started(default_deadline_s=0.5, max_deadline_s=1.0)
    with pytest.raises(grpc.aio.AioRpcError) as no_deadline:
        await stub.GetNumberStatus(status_request())
    assert no_deadline.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "STOPGATE_DEFAULT_DEADLINE_S" in (no_deadline.value.details() or "")
    with pytest.raises(grpc.aio.AioRpcError) as long_deadline:
        await stub.GetNumberStatus(status_request(), timeout=60)
    assert long_deadline.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    assert "STOPGATE_MAX_DEADLINE_S" in (long_deadline.value.details() or "")


async def test_calls_beyond_the_concurrency_limit_are_refused(started: Any, locked_quarantine: Any) -> None:
    stub = await started(max_concurrent_rpcs=1)
    blocked = asyncio.ensure_future(stub.GetNumberStatus(status_request(), timeout=10))
    await asyncio.sleep(0.3)  # the first call is running, waiting for the lock
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CheckBatch(check_request(ALICE), timeout=5)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "STOPGATE_MAX_CONCURRENT_RPCS" in (refused.value.details() or "")
    await locked_quarantine()
    assert (await blocked).e164 == ALICE


async def test_calls_beyond_the_streams_of_a_connection_wait_for_a_free_one(
    database_url: str, api_token: str, server_settings: Callable[[str], Settings]
) -> None:
    # One stream per connection, two connections. A call on the first holds its stream, waiting on a locked
    # table. CheckBatch is answered from the block-list index without reading that table: on the second
    # connection at once; on the first only once the stream is free.
    application = Application(
        dataclasses.replace(server_settings(database_url), http2_max_concurrent_streams=1)
    )
    await application.start()
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(application.stop)
        await wait_until_index_current(application)
        stubs = []
        for _ in range(2):
            channel = grpc.aio.insecure_channel(
                f"127.0.0.1:{application.grpc_port}",
                options=[("grpc.use_local_subchannel_pool", 1)],  # a connection of its own
                interceptors=bearer_token(api_token),
            )
            stack.push_async_callback(channel.close)
            stubs.append(quarantine_check_pb2_grpc.QuarantineCheckStub(channel))
        busy, other = stubs
        locker = await asyncpg.connect(database_url)
        stack.push_async_callback(locker.close)
        lock = locker.transaction()
        await lock.start()
        await locker.execute("LOCK TABLE quarantine IN ACCESS EXCLUSIVE MODE")
        holding = busy.GetNumberStatus(status_request(), timeout=10)
        await asyncio.sleep(0.3)  # the call holds the first connection's only stream, waiting for the lock

        assert (await other.CheckBatch(check_request(ALICE), timeout=1)).allowed_count == 1
        with pytest.raises(grpc.aio.AioRpcError) as waited:
            await busy.CheckBatch(check_request(ALICE), timeout=1)
        assert waited.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED

        await lock.rollback()
        assert (await holding).e164 == ALICE
        assert (await busy.CheckBatch(check_request(ALICE), timeout=5)).allowed_count == 1


async def test_an_oversized_message_is_refused(started: Any) -> None:
    stub = await started()
    huge = check_request(*(["+336" + "1" * 2_000] * 9_000))  # ~18 MiB, over the 16 MiB limit
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stub.CheckBatch(huge, timeout=30)
    assert refused.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


async def test_a_client_leaving_mid_stream_leaves_only_whole_batches(
    app: Application, api_token: str, db: asyncpg.Connection
) -> None:
    batches = [
        [
            stop_ingest_pb2.InboundEvent(
                event_id=f"leave-{b}-{i}",
                source=common_pb2.EVENT_SOURCE_SMS_REPLY,
                phone_number=f"+336{b:03d}{i:05d}",
                text="STOP",
                licence_id="acme",
            )
            for i in range(200)
        ]
        for b in range(20)
    ]
    target = f"127.0.0.1:{app.grpc_port}"
    async with grpc.aio.insecure_channel(target, interceptors=bearer_token(api_token)) as channel:
        call: Any = stop_ingest_pb2_grpc.StopIngestStub(channel).StreamEvents()
        for batch in batches:
            await call.write(stop_ingest_pb2.StreamEventsRequest(events=batch))
        acked = len((await call.read()).acks) + len((await call.read()).acks)
        call.cancel()
    await asyncio.sleep(1)  # the server notices and rolls back whatever batch it was applying
    stored = await db.fetchval("SELECT count(*) FROM inbound_events WHERE event_id LIKE 'leave-%'")
    assert stored >= acked == 400
    assert stored % 200 == 0  # no half-applied batch
    quarantined = await db.fetchval("SELECT count(*) FROM quarantine WHERE phone LIKE '+336%'")
    assert quarantined == stored  # every stored STOP took effect, nothing more


async def test_postgresql_stopped_under_a_mixed_load(own_server: OwnServer) -> None:
    """Invariant 4 under load: while PostgreSQL is down, checks fail with UNAVAILABLE (or
    DEADLINE_EXCEEDED), never ALLOW for a quarantined number, never INTERNAL; health says NOT_SERVING;
    everything works again by itself once PostgreSQL is back."""
    checks = quarantine_check_pb2_grpc.QuarantineCheckStub(own_server.channel)
    ingest = stop_ingest_pb2_grpc.StopIngestStub(own_server.channel)
    health = health_pb2_grpc.HealthStub(own_server.channel)
    await checks.QuarantineNumbers(
        quarantine_check_pb2.QuarantineNumbersRequest(
            licence_id="acme", phone_numbers=[ALICE], actor="ops", reason="test"
        ),
        timeout=10,
    )
    codes: dict[str, set[grpc.StatusCode]] = {"check": set(), "ingest": set(), "status": set()}
    verdicts_of_alice: set[int] = set()
    health_seen: set[int] = set()
    running = True

    async def load(kind: str) -> None:
        n = 0
        while running:
            n += 1
            try:
                if kind == "check":
                    reply = await checks.CheckBatch(check_request(ALICE, f"+3361{n:07d}"), timeout=2)
                    verdicts_of_alice.add(reply.results[0].verdict)
                elif kind == "ingest":
                    event = stop_ingest_pb2.InboundEvent(
                        event_id=f"load-{n}",
                        source=common_pb2.EVENT_SOURCE_SMS_REPLY,
                        phone_number=f"+3369{n:07d}",
                        text="STOP",
                    )
                    await ingest.IngestEvent(stop_ingest_pb2.IngestEventRequest(event=event), timeout=2)
                else:
                    await checks.GetNumberStatus(status_request(), timeout=2)
                codes[kind].add(grpc.StatusCode.OK)
            except grpc.aio.AioRpcError as error:
                codes[kind].add(error.code())
                await asyncio.sleep(0.05)

    async def watch_health() -> None:
        while running:
            reply = await health.Check(health_pb2.HealthCheckRequest(), timeout=2)
            health_seen.add(reply.status)
            await asyncio.sleep(0.05)

    tasks = [asyncio.create_task(load(kind)) for kind in codes] + [asyncio.create_task(watch_health())]
    await asyncio.sleep(1)
    await asyncio.to_thread(own_server.cluster.stop)
    await asyncio.sleep(2)
    await asyncio.to_thread(own_server.cluster.start)
    recovered = False
    for _ in range(100):
        try:
            reply = await checks.CheckBatch(check_request(ALICE), timeout=2)
            await ingest.IngestEvent(
                stop_ingest_pb2.IngestEventRequest(
                    event=stop_ingest_pb2.InboundEvent(
                        event_id="after", source=common_pb2.EVENT_SOURCE_SMS_REPLY,
                        phone_number="+33699999999", text="STOP",
                    )
                ),
                timeout=2,
            )  # fmt: skip
            recovered = reply.results[0].verdict == quarantine_check_pb2.VERDICT_BLOCK
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    running = False
    await asyncio.gather(*tasks)

    assert recovered
    assert verdicts_of_alice == {quarantine_check_pb2.VERDICT_BLOCK}
    failures = set().union(*codes.values()) - {grpc.StatusCode.OK}
    assert grpc.StatusCode.UNAVAILABLE in failures
    assert failures <= {grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED}
    assert health_pb2.HealthCheckResponse.NOT_SERVING in health_seen
