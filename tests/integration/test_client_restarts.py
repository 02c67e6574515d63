"""`stream_events` rides out a restart of its server: it reconnects, re-sends what was not acked and gives
each event exactly one ack; it gives up at its reconnect deadline with a count of the events not acked;
statuses other than UNAVAILABLE still fail at once. Against `stopgate serve` in a child process (restarted on
the same address and database) and, for the statuses, a stand-in server on 127.0.0.1:0."""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import grpc
import pytest
from clients import Connect, EitherClient
from google.protobuf.any_pb2 import Any as AnyMessage
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status
from processes import ServerProcess, SpawnServer
from stopgate import AsyncClient, InboundEvent, RetryConfig
from stopgate.errors import (
    InvalidArgumentError,
    PermissionDeniedError,
    ReconnectDeadlineError,
    StopgateError,
    UnauthenticatedError,
    UnavailableError,
)
from stopgate.v1 import common_pb2, stop_ingest_pb2, stop_ingest_pb2_grpc

pb = stop_ingest_pb2
FAST_RETRY = RetryConfig(initial_backoff_s=0.01, max_backoff_s=0.05)
# Cut the stream at once on SIGTERM: today's server would serve it through its grace period. A drain delay
# of 0 keeps servers that have one from waiting before they stop accepting.
QUICK_STOP = {"STOPGATE_SHUTDOWN_GRACE_S": "1", "STOPGATE_DRAIN_DELAY_S": "0"}


def stop(number: int) -> InboundEvent:
    return InboundEvent(
        event_id=f"restart-{number}",
        source=common_pb2.EVENT_SOURCE_SMS_REPLY,
        phone_number=f"+3361{number:07d}",
        recipient="36180",
        text="STOP",
    )


class Source:
    """`count` STOP events, one number each, that sends SIGTERM to `server` at the first event from
    `sigterm_at` on read once `acks` holds an ack (so the server stops in the middle of the stream, after
    some events were acked, whatever the speed of the machine: a window of unacked batches is read ahead)."""

    def __init__(self, count: int, server: ServerProcess, sigterm_at: int, acks: list[pb.EventAck]) -> None:
        self.count = count
        self.server = server
        self.sigterm_at = sigterm_at
        self.acks = acks
        self.read = 0

    def __iter__(self) -> Iterator[InboundEvent]:
        signalled = False
        for number in range(self.count):
            if not signalled and number >= self.sigterm_at and self.acks:
                self.server.process.send_signal(signal.SIGTERM)
                signalled = True
            self.read += 1
            yield stop(number)


async def stream_into(acks: list[pb.EventAck], client: EitherClient, *args: Any, **kwargs: Any) -> None:
    """`stream_events` of either client, keeping the acks received before it fails."""
    if isinstance(client.client, AsyncClient):
        async for ack in client.client.stream_events(*args, **kwargs):
            acks.append(ack)
        return
    blocking = client.client
    await asyncio.to_thread(lambda: acks.extend(blocking.stream_events(*args, **kwargs)))


async def stored_event_ids(database_url: str) -> set[str]:
    connection = await asyncpg.connect(database_url)
    try:
        return {row["event_id"] for row in await connection.fetch("SELECT event_id FROM inbound_events")}
    finally:
        await connection.close()


async def test_stream_events_rides_out_a_restart_of_its_server(
    connect: Connect, database_url: str, api_token: str, spawn_server: SpawnServer, db: asyncpg.Connection
) -> None:
    total = 50_000
    first = spawn_server("--database-url", database_url, env=QUICK_STOP)
    address = (await asyncio.to_thread(first.wait_for, "serving"))["grpc_addr"]
    acks: list[pb.EventAck] = []
    source = Source(total, first, sigterm_at=20_000, acks=acks)

    async def restart() -> set[str]:
        """Once the first server has exited: what it stored, and a second one on the same address."""
        assert await asyncio.to_thread(first.process.wait, 120) == 0
        stored = await stored_event_ids(database_url)
        second = spawn_server("--database-url", database_url, "--grpc-addr", address, env=QUICK_STOP)
        await asyncio.to_thread(second.wait_for, "serving")
        return stored

    client = await connect(address, token=api_token)
    restarted = asyncio.create_task(restart())
    await stream_into(acks, client, source, batch_size=500)
    stored_by_the_first = await restarted

    assert [ack.event_id for ack in acks] == [stop(n).event_id for n in range(total)]  # each once, in order
    assert 0 < len(stored_by_the_first) < total  # the restart landed in the middle of the stream
    outcomes = {ack.event_id: ack.outcome for ack in acks}
    assert set(outcomes.values()) <= {pb.INGEST_OUTCOME_QUARANTINED, pb.INGEST_OUTCOME_DUPLICATE}
    duplicates = {
        event_id for event_id, outcome in outcomes.items() if outcome == pb.INGEST_OUTCOME_DUPLICATE
    }
    assert duplicates <= stored_by_the_first  # re-sent after the restart, stored before it
    assert await db.fetchval("SELECT count(DISTINCT event_id) FROM inbound_events") == total
    assert await db.fetchval("SELECT count(*) FROM inbound_events") == total


async def test_stream_events_gives_up_at_its_reconnect_deadline_and_counts_the_unacked(
    connect: Connect, database_url: str, api_token: str, spawn_server: SpawnServer
) -> None:
    server = spawn_server("--database-url", database_url, env=QUICK_STOP)
    address = (await asyncio.to_thread(server.wait_for, "serving"))["grpc_addr"]
    acks: list[pb.EventAck] = []
    source = Source(10_000, server, sigterm_at=2_000, acks=acks)  # and never started again
    client = await connect(address, token=api_token, retry=FAST_RETRY)

    started = time.monotonic()
    with pytest.raises(ReconnectDeadlineError) as gave_up:
        await stream_into(
            acks, client, source, batch_size=500, max_batches_in_flight=4, reconnect_deadline_s=2
        )

    error = gave_up.value
    assert time.monotonic() - started < 30  # not the default deadline of 60 s
    assert isinstance(error, UnavailableError)
    assert isinstance(error.__cause__, UnavailableError)
    assert error.acked_events == len(acks) > 0
    assert [ack.event_id for ack in acks] == [stop(n).event_id for n in range(len(acks))]
    assert error.unacked_events == source.read - len(acks) > 0
    assert error.unacked_events <= (4 + 2) * 500  # the window, the queue and one batch: reading stopped
    assert f"the {error.unacked_events:,} events read from the source" in error.message
    assert "reconnect_deadline_s" in error.message


def _status(code: grpc.StatusCode, message: str, reason: str = "") -> grpc.Status:
    status = status_pb2.Status(code=code.value[0], message=message)
    if reason:
        detail = AnyMessage()
        detail.Pack(error_details_pb2.ErrorInfo(reason=reason, domain="stopgate.v1"))
        status.details.append(detail)
    built: grpc.Status = rpc_status.to_status(status)
    return built


async def _unimplemented(_: object, request: object, context: Any) -> Any:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of this stand-in")


class StandIn(stop_ingest_pb2_grpc.StopIngestServicer):
    """StreamEvents that ends its first `unavailable` streams with UNAVAILABLE / SERVER_SHUTTING_DOWN before
    reading anything, then each stream with `final` after its first request when given; otherwise it acks
    every request, and ends a stream that received nothing for `idle_s` with UNAVAILABLE / STREAM_IDLE."""

    IngestEvent = ClassifyText = _unimplemented
    SetCustomKeyword = ListCustomKeywords = RemoveCustomKeyword = _unimplemented

    def __init__(self, unavailable: int = 0, final: grpc.StatusCode | None = None, idle_s: float = 0.2):
        self.unavailable = unavailable
        self.final = final
        self.idle_s = idle_s
        self.connections = 0
        self.received: list[str] = []

    async def StreamEvents(
        self, request_iterator: AsyncIterator[pb.StreamEventsRequest], context: Any
    ) -> AsyncIterator[pb.StreamEventsResponse]:
        self.connections += 1
        if self.connections <= self.unavailable:
            await context.abort_with_status(
                _status(grpc.StatusCode.UNAVAILABLE, "shutting down: reconnect", "SERVER_SHUTTING_DOWN")
            )
        requests = aiter(request_iterator)
        if self.final is not None:
            # Read the request first: a status that ends a stream while the client writes reaches a grpc.aio
            # client as INTERNAL (grpc/grpc#36066), which the client takes for a broken connection.
            await anext(requests)
            await context.abort_with_status(_status(self.final, "not for you"))
        while True:
            try:
                request = await asyncio.wait_for(anext(requests), self.idle_s)
            except StopAsyncIteration:
                return
            except TimeoutError:
                await context.abort_with_status(
                    _status(grpc.StatusCode.UNAVAILABLE, "closed: no message", "STREAM_IDLE")
                )
            self.received.extend(event.event_id for event in request.events)
            yield pb.StreamEventsResponse(
                acks=[
                    pb.EventAck(event_id=e.event_id, outcome=pb.INGEST_OUTCOME_QUARANTINED)
                    for e in request.events
                ]
            )


async def serve(stand_in: StandIn) -> tuple[grpc.aio.Server, str]:
    server = grpc.aio.server()
    stop_ingest_pb2_grpc.add_StopIngestServicer_to_server(stand_in, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    return server, f"127.0.0.1:{port}"


@pytest.mark.parametrize(
    ("code", "error_class"),
    [
        (grpc.StatusCode.INVALID_ARGUMENT, InvalidArgumentError),
        (grpc.StatusCode.UNAUTHENTICATED, UnauthenticatedError),
        (grpc.StatusCode.PERMISSION_DENIED, PermissionDeniedError),
    ],
)
async def test_stream_events_fails_at_once_on_other_statuses_after_riding_out_unavailable(
    connect: Connect, code: grpc.StatusCode, error_class: type[StopgateError]
) -> None:
    stand_in = StandIn(unavailable=6, final=code)  # more than RetryConfig's max_attempts: not what bounds it
    server, target = await serve(stand_in)
    try:
        client = await connect(target, retry=FAST_RETRY)
        with pytest.raises(error_class) as failed:
            await client.collect("stream_events", [stop(n) for n in range(10)], reconnect_deadline_s=30)
        assert failed.value.message == "not for you"
        assert stand_in.connections == 6 + 1  # no attempt after the first status that is not UNAVAILABLE
    finally:
        await server.stop(None)


async def test_a_stream_closed_as_idle_is_reopened_when_the_next_event_comes(connect: Connect) -> None:
    stand_in = StandIn(idle_s=0.2)
    server, target = await serve(stand_in)

    async def quiet_source() -> AsyncIterator[InboundEvent]:
        for number in range(3):
            yield stop(number)
        await asyncio.sleep(1.5)  # the server closes the stream as idle meanwhile
        for number in range(3, 6):
            yield stop(number)

    try:
        client = await connect(target, retry=FAST_RETRY)
        acks = await client.collect("stream_events", quiet_source(), linger_s=0.01)
        assert [ack.event_id for ack in acks] == [stop(n).event_id for n in range(6)]
        assert stand_in.received == [ack.event_id for ack in acks]  # nothing was sent twice
        assert stand_in.connections == 2  # reopened once, when the next events came, not in a loop
    finally:
        await server.stop(None)
