"""Limits an idle or unauthenticated caller cannot use up: health and reflection take no call slot, open
streams are capped per connection and per token, and streams idle past STOPGATE_STREAM_IDLE_TIMEOUT_S end
with a status that says why. Bounded in count and time, loopback only."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2_grpc
from grpc_status import rpc_status
from prometheus_client import REGISTRY
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
from stopgate_server.config import Settings
from stopgate_server.obs.metrics import grpc_code
from stopgate_server.store.tokens import create_token
from test_reporting import Stubs

WATCH = ("server_stream", "grpc.health.v1.Health", "Watch")
STREAM_EVENTS = ("bidi_stream", "stopgate.v1.StopIngest", "StreamEvents")
EXPORT = ("server_stream", "stopgate.v1.Reporting", "ExportInteractions")
_event_ids = itertools.count()


@dataclasses.dataclass
class Served:
    """An in-process server with some settings changed, and a way to open connections of its own to it."""

    app: Application
    connect: Callable[..., grpc.aio.Channel]


@pytest.fixture
async def serve(
    database_url: str, server_settings: Callable[[str], Settings]
) -> AsyncIterator[Callable[..., Awaitable[Served]]]:
    async with contextlib.AsyncExitStack() as stack:

        async def start(**changes: Any) -> Served:
            application = Application(dataclasses.replace(server_settings(database_url), **changes))
            await application.start()
            stack.push_async_callback(application.stop)

            def connect(token: str | None = None, *options: tuple[str, Any]) -> grpc.aio.Channel:
                """A channel on an HTTP/2 connection of its own (channels to one target share one by
                default), its calls carrying `token` if given."""
                channel = grpc.aio.insecure_channel(
                    f"127.0.0.1:{application.grpc_port}",
                    options=[("grpc.use_local_subchannel_pool", 1), *options],
                    interceptors=bearer_token(token) if token else None,
                )
                stack.push_async_callback(channel.close)
                return channel

            return Served(application, connect)

        yield start


@pytest.fixture
async def token_for(database_url: str) -> AsyncIterator[Callable[..., Awaitable[str]]]:
    """Create tokens with the given roles in the test's database."""
    connection = await asyncpg.connect(database_url)
    names = itertools.count()

    async def create(*roles: str) -> str:
        _, token = await create_token(connection, f"{roles[0]}-{next(names)}", roles)
        return token

    yield create
    await connection.close()


def open_streams(labels: tuple[str, str, str]) -> float:
    grpc_type, service, method = labels
    sample = REGISTRY.get_sample_value(
        "stopgate_open_streams", {"grpc_type": grpc_type, "grpc_service": service, "grpc_method": method}
    )
    return sample or 0.0


def handled(labels: tuple[str, str, str], code: grpc.StatusCode) -> float:
    grpc_type, service, method = labels
    sample = REGISTRY.get_sample_value(
        "grpc_server_handled_total",
        {
            "grpc_type": grpc_type,
            "grpc_service": service,
            "grpc_method": method,
            "grpc_code": grpc_code(code),
        },
    )
    return sample or 0.0


def not_read_streams() -> float:
    sample = REGISTRY.get_sample_value("stopgate_idle_streams_ended_total", {"reason": "STREAM_NOT_READ"})
    return sample or 0.0


async def until(condition: Callable[[], bool], what: str, timeout_s: float = 20.0) -> None:
    """Wait for a condition the server reaches by itself (it notices a cancelled stream a moment later)."""
    for _ in range(int(timeout_s / 0.02)):
        if condition():
            return
        await asyncio.sleep(0.02)
    pytest.fail(f"not within {timeout_s} s: {what}")


def reason_of(error: grpc.aio.AioRpcError) -> str:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return str(info.reason)
    return ""


async def refusal(call: Any) -> grpc.aio.AioRpcError:
    """The error a stream ended with, read after whatever it sent (within 30 s: a stream the server lets
    run fails the test rather than hanging it)."""
    async with asyncio.timeout(30):
        while True:
            try:
                if await call.read() is grpc.aio.EOF:
                    pytest.fail(f"the stream ended with {await call.code()}")
            except grpc.aio.AioRpcError as error:
                if hasattr(call, "done_writing"):  # ends the request-writing task the client keeps
                    await call.done_writing()
                return error


def watch(channel: grpc.aio.Channel) -> Any:
    return health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest())


async def watching(channel: grpc.aio.Channel) -> Any:
    """A health Watch that is open on the server: it has sent the current status."""
    call = watch(channel)
    assert (await call.read()).status == health_pb2.HealthCheckResponse.SERVING
    return call


def events_request() -> stop_ingest_pb2.StreamEventsRequest:
    event = stop_ingest_pb2.InboundEvent(
        event_id=f"limits-{next(_event_ids)}",
        source=common_pb2.EVENT_SOURCE_SMS_REPLY,
        phone_number="+33612345678",
        text="STOP",
    )
    return stop_ingest_pb2.StreamEventsRequest(events=[event])


async def acked_stream(channel: grpc.aio.Channel) -> Any:
    """A StreamEvents that is open on the server: it acked a batch."""
    call: Any = stop_ingest_pb2_grpc.StopIngestStub(channel).StreamEvents()
    await call.write(events_request())
    assert len((await call.read()).acks) == 1
    return call


def check_request() -> quarantine_check_pb2.CheckBatchRequest:
    return quarantine_check_pb2.CheckBatchRequest(
        licence_id="acme",
        sender=common_pb2.Sender(address="36180"),
        category=common_pb2.MESSAGE_CATEGORY_MARKETING,
        phone_numbers=["+33612345678"],
    )


async def test_idle_watchers_and_ingest_streams_leave_check_batch_a_slot(
    serve: Callable[..., Awaitable[Served]], token_for: Callable[..., Awaitable[str]]
) -> None:
    # 250 call slots: far fewer than the 1,200 idle streams below, so that on a server counting every call
    # the watchers alone take them all. A load balancer holds one Watch per connection; 50 on each of 20
    # connections stays under the per-connection cap (default 100), so none is refused and all 1,000 are
    # open at once. Likewise 50 ingest streams on each of 4 tokens stay under the per-token cap.
    served = await serve(max_concurrent_rpcs=250, stream_idle_timeout_s=600)
    watchers_before, streams_before = open_streams(WATCH), open_streams(STREAM_EVENTS)
    anonymous = [served.connect() for _ in range(20)]
    watchers = await asyncio.gather(*(watching(anonymous[i % 20]) for i in range(1000)))
    ingress = [served.connect(await token_for("ingest")) for _ in range(4)]
    streams = [stop_ingest_pb2_grpc.StopIngestStub(ingress[i % 4]).StreamEvents() for i in range(200)]
    await until(lambda: open_streams(STREAM_EVENTS) == streams_before + 200, "200 ingest streams open")
    assert open_streams(WATCH) == watchers_before + 1000

    checks = quarantine_check_pb2_grpc.QuarantineCheckStub(served.connect(await token_for("sender")))
    reply = await checks.CheckBatch(check_request(), timeout=10)
    assert reply.allowed_count == 1

    for call in [*watchers, *streams]:
        call.cancel()
    # The counts are released when a stream is cancelled, and exact
    await until(lambda: open_streams(WATCH) == watchers_before, "watchers closed")
    await until(lambda: open_streams(STREAM_EVENTS) == streams_before, "ingest streams closed")


async def test_the_streams_of_a_connection_are_capped(
    serve: Callable[..., Awaitable[Served]], token_for: Callable[..., Awaitable[str]]
) -> None:
    served = await serve(max_open_streams_per_connection=2)
    token = await token_for("ingest", "sender")
    full, other = served.connect(token), served.connect(token)
    watcher = await watching(full)  # health streams count too
    ingest = await acked_stream(full)

    refused = await refusal(watch(full))
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "this connection has 2 streams open" in (refused.details() or "")
    assert "STOPGATE_MAX_OPEN_STREAMS_PER_CONNECTION" in (refused.details() or "")
    refused = await refusal(stop_ingest_pb2_grpc.StopIngestStub(full).StreamEvents())
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    # Unary calls hold no stream; another connection has streams of its own
    checks = quarantine_check_pb2_grpc.QuarantineCheckStub(full)
    assert (await checks.CheckBatch(check_request(), timeout=10)).allowed_count == 1
    other_watcher = await watching(other)

    # A stream that ended frees its place...
    await ingest.done_writing()
    assert await ingest.read() is grpc.aio.EOF
    assert await ingest.code() == grpc.StatusCode.OK
    ingest = await acked_stream(full)
    # ...and so does one that was cancelled, once the server has seen it go
    watchers_open = open_streams(WATCH)
    watcher.cancel()
    await until(lambda: open_streams(WATCH) == watchers_open - 1, "the cancelled Watch closed")
    watcher = await watching(full)
    assert (await refusal(watch(full))).code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    for call in (watcher, ingest, other_watcher):
        call.cancel()


async def test_the_streams_of_a_token_are_capped(
    serve: Callable[..., Awaitable[Served]], token_for: Callable[..., Awaitable[str]]
) -> None:
    served = await serve(max_open_streams_per_token=2)
    busy, another = await token_for("ingest"), await token_for("ingest")
    first, second = await acked_stream(served.connect(busy)), await acked_stream(served.connect(busy))

    # Counted over all the token's connections
    refused = await refusal(stop_ingest_pb2_grpc.StopIngestStub(served.connect(busy)).StreamEvents())
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert "token 'ingest-0' has 2 streams open" in (refused.details() or "")
    assert "STOPGATE_MAX_OPEN_STREAMS_PER_TOKEN" in (refused.details() or "")
    third = await acked_stream(served.connect(another))

    streams_open = open_streams(STREAM_EVENTS)
    first.cancel()
    await until(lambda: open_streams(STREAM_EVENTS) == streams_open - 1, "the cancelled stream closed")
    first = await acked_stream(served.connect(busy))
    refused = await refusal(stop_ingest_pb2_grpc.StopIngestStub(served.connect(busy)).StreamEvents())
    assert refused.code() == grpc.StatusCode.RESOURCE_EXHAUSTED

    for call in (first, second, third):
        call.cancel()


async def test_a_stream_without_requests_is_ended_but_a_health_watch_is_not(
    serve: Callable[..., Awaitable[Served]], token_for: Callable[..., Awaitable[str]]
) -> None:
    served = await serve(stream_idle_timeout_s=2)
    channel = served.connect(await token_for("ingest"))
    watcher = await watching(channel)
    reflection = reflection_pb2_grpc.ServerReflectionStub(channel).ServerReflectionInfo()

    # Each request restarts the clock: a stream that sends keeps going past the timeout
    stream: Any = stop_ingest_pb2_grpc.StopIngestStub(channel).StreamEvents()
    for _ in range(30):
        await stream.write(events_request())
        assert len((await stream.read()).acks) == 1
        await asyncio.sleep(0.1)

    ended = await refusal(stream)  # once it sends nothing
    assert ended.code() == grpc.StatusCode.UNAVAILABLE
    assert reason_of(ended) == "STREAM_IDLE"
    assert "closed after 2 s without a request message" in (ended.details() or "")
    assert "STOPGATE_STREAM_IDLE_TIMEOUT_S" in (ended.details() or "")
    idle_reflection = await refusal(reflection)
    assert (idle_reflection.code(), reason_of(idle_reflection)) == (
        grpc.StatusCode.UNAVAILABLE,
        "STREAM_IDLE",
    )
    assert not watcher.done()  # a Watch is idle by design
    watcher.cancel()


async def _export_sessions(db: asyncpg.Connection) -> int:
    """Backends busy with an interactions export (running it, or holding its transaction open)."""
    return int(
        await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE query LIKE '%FROM sends s%' AND state <> 'idle' AND pid <> pg_backend_pid()"
        )
    )


async def test_unread_exports_are_ended_and_say_why(
    serve: Callable[..., Awaitable[Served]],
    token_for: Callable[..., Awaitable[str]],
    db: asyncpg.Connection,
) -> None:
    served = await serve(stream_idle_timeout_s=1)
    token = await token_for("sender", "reporting", "ingest")
    stubs = Stubs(served.connect(token))
    rows = 100_000  # about 4 MB per export
    for first in range(0, rows, 10_000):
        await stubs.send("big", [f"+3361{i:07d}" for i in range(first, first + 10_000)], timedelta(hours=1))
    # Without BDP probing the client's flow-control windows stay at HTTP/2's initial 64 KiB instead of
    # growing to several MB: a few MB then overflow them and the socket buffers, and the server's writes
    # wait for a client that does not read.
    reports = reporting_pb2_grpc.ReportingStub(served.connect(token, ("grpc.http2.bdp_probe", 0)))
    not_read = not_read_streams()
    exports = [
        reports.ExportInteractions(
            reporting_pb2.ExportInteractionsRequest(licence_id="acme", campaign_id="big")
        )
        for _ in range(20)
    ]
    await until(lambda: not_read_streams() == not_read + 20, "20 exports ended", timeout_s=60)
    assert open_streams(EXPORT) == 0
    assert await _export_sessions(db) == 0  # none holds a database connection any more

    for export in exports:  # the client learns why when it reads at last, after what was sent before
        error = await refusal(export)
        assert error.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        assert reason_of(error) == "STREAM_NOT_READ"
        assert "the client read nothing for 1 s" in (error.details() or "")
    ack = await stubs.event("+33698765432", "STOP")
    assert ack.outcome == stop_ingest_pb2.INGEST_OUTCOME_QUARANTINED
