"""Invariant 1: an ack means committed. kill -9 the server in the middle of a stream, restart it, and every
acked event is stored and effective; re-sending everything (acked or not) creates no doubles."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import asyncpg
import grpc
from processes import SpawnServer
from stopgate.interceptors import bearer_token
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)

pb, qc = stop_ingest_pb2, quarantine_check_pb2
BATCHES, PER_BATCH, KILL_AFTER = 40, 50, 8


def batches() -> list[list[pb.InboundEvent]]:
    return [
        [
            pb.InboundEvent(
                event_id=f"evt-{b}-{i}",
                source=common_pb2.EVENT_SOURCE_SMS_REPLY,
                phone_number=f"+3361{b:03d}{i:04d}",
                recipient="36180",
                text="STOP",
                licence_id="acme",
            )
            for i in range(PER_BATCH)
        ]
        for b in range(BATCHES)
    ]


async def _stream_until_killed(address: str, pid: int, token: str) -> tuple[set[str], grpc.StatusCode | None]:
    """Stream every batch; after KILL_AFTER acked batches, kill -9 the server. The acked event ids, and the
    status the stream ended with."""
    acked: set[str] = set()
    ended_with = None
    async with grpc.aio.insecure_channel(address, interceptors=bearer_token(token)) as channel:
        call: Any = stop_ingest_pb2_grpc.StopIngestStub(channel).StreamEvents()

        async def write_all() -> None:
            try:
                for batch in batches():
                    await call.write(pb.StreamEventsRequest(events=batch))
            except (grpc.aio.AioRpcError, asyncio.InvalidStateError):
                pass  # the server died under us: that is the point

        writer = asyncio.create_task(write_all())
        try:
            for received in range(BATCHES):
                response = await call.read()
                if response is grpc.aio.EOF:
                    break
                acked.update(ack.event_id for ack in response.acks)
                if received + 1 == KILL_AFTER:
                    os.kill(pid, signal.SIGKILL)
        except grpc.aio.AioRpcError as exc:
            ended_with = exc.code()
        writer.cancel()
    return acked, ended_with


async def test_kill_9_loses_no_acked_event(
    database_url: str, api_token: str, spawn_server: SpawnServer
) -> None:
    first = spawn_server("--database-url", database_url)
    serving = await asyncio.to_thread(first.wait_for, "serving")
    acked, ended_with = await _stream_until_killed(serving["grpc_addr"], first.process.pid, api_token)
    assert ended_with in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.CANCELLED, grpc.StatusCode.INTERNAL)
    assert len(acked) >= KILL_AFTER * PER_BATCH
    assert len(acked) < BATCHES * PER_BATCH  # the kill really landed in the middle
    assert await asyncio.to_thread(first.process.wait, 30) == -signal.SIGKILL

    second = spawn_server("--database-url", database_url)
    serving = await asyncio.to_thread(second.wait_for, "serving")
    connection = await asyncpg.connect(database_url)
    try:
        stored = {r["event_id"] for r in await connection.fetch("SELECT event_id FROM inbound_events")}
        assert acked <= stored
        quarantined = {r["event_id"] for r in await connection.fetch("SELECT event_id FROM quarantine")}
        assert acked <= quarantined

        async with grpc.aio.insecure_channel(
            serving["grpc_addr"], interceptors=bearer_token(api_token)
        ) as channel:
            checks: Any = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
            acked_phones = [e.phone_number for batch in batches() for e in batch if e.event_id in acked]
            response = await checks.CheckBatch(
                qc.CheckBatchRequest(
                    licence_id="acme",
                    sender=common_pb2.Sender(address="ACME"),
                    category=common_pb2.MESSAGE_CATEGORY_MARKETING,
                    phone_numbers=acked_phones[:10_000],
                ),
                timeout=30,
            )
            assert {r.verdict for r in response.results} == {qc.VERDICT_BLOCK}

            ingest: Any = stop_ingest_pb2_grpc.StopIngestStub(channel)
            outcomes: dict[str, int] = {}
            async for reply in ingest.StreamEvents(
                iter([pb.StreamEventsRequest(events=b) for b in batches()])
            ):
                outcomes.update((ack.event_id, ack.outcome) for ack in reply.acks)
        assert len(outcomes) == BATCHES * PER_BATCH
        assert {outcomes[event_id] for event_id in acked} == {pb.INGEST_OUTCOME_DUPLICATE}
        total = BATCHES * PER_BATCH
        assert await connection.fetchval("SELECT count(*) FROM inbound_events") == total
        assert await connection.fetchval("SELECT count(*) FROM number_history") == total
        assert await connection.fetchval("SELECT count(*) FROM quarantine") == total
    finally:
        await connection.close()
