"""Client retries, reconnection, deadlines and metadata, proven against a stand-in server that fails on
purpose (a real gRPC server on 127.0.0.1:0 whose servicers answer UNAVAILABLE for the first attempts)."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from datetime import datetime
from typing import Any

import grpc
import pytest
from clients import Connect
from stopgate import NO_RETRY, InboundEvent, RetryConfig
from stopgate.client import CHECK_BATCH_LIMIT
from stopgate.errors import DeadlineExceededError, ReconnectDeadlineError, UnavailableError
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)

FAST_RETRY = RetryConfig(max_attempts=4, initial_backoff_s=0.01, max_backoff_s=0.05)
MARKETING = common_pb2.MESSAGE_CATEGORY_MARKETING


class Flaky:
    """Counts attempts per method and fails the first `failures` of each with UNAVAILABLE."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.attempts: dict[str, int] = {}
        self.metadata: list[tuple[str, str]] = []
        self.request_ids: dict[str, list[str]] = {}

    async def attempt(
        self, method: str, context: grpc.aio.ServicerContext[Any, Any], request_id: str = ""
    ) -> None:
        self.attempts[method] = self.attempts.get(method, 0) + 1
        self.request_ids.setdefault(method, []).append(request_id)
        self.metadata = [(key, str(value)) for key, value in context.invocation_metadata() or ()]
        if self.attempts[method] <= self.failures:
            await context.abort(grpc.StatusCode.UNAVAILABLE, "not now")


async def _unimplemented(_: object, request: object, context: Any) -> Any:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of this stand-in")


async def _unimplemented_stream(_: object, request: object, context: Any) -> AsyncIterator[Any]:
    await context.abort(grpc.StatusCode.UNIMPLEMENTED, "not part of this stand-in")
    yield  # pragma: no cover - makes this an async generator, like the servicer methods it stands for


class FlakyQuarantine(quarantine_check_pb2_grpc.QuarantineCheckServicer):
    """CheckBatch answers after `check_delay_s`."""

    ReleaseNumbers = _unimplemented
    BindShortcode = UnbindShortcode = ListShortcodeBindings = ErasePersonalData = _unimplemented

    def __init__(self, flaky: Flaky) -> None:
        self.flaky = flaky
        self.check_delay_s = 0.0

    async def CheckBatch(
        self, request: quarantine_check_pb2.CheckBatchRequest, context: Any
    ) -> quarantine_check_pb2.CheckBatchResponse:
        await self.flaky.attempt("CheckBatch", context, request.request_id)
        await asyncio.sleep(self.check_delay_s)
        return quarantine_check_pb2.CheckBatchResponse(allowed_count=len(request.phone_numbers))

    async def QuarantineNumbers(
        self, request: quarantine_check_pb2.QuarantineNumbersRequest, context: Any
    ) -> quarantine_check_pb2.QuarantineNumbersResponse:
        await self.flaky.attempt("QuarantineNumbers", context)
        return quarantine_check_pb2.QuarantineNumbersResponse()

    async def RecordSends(
        self, request: quarantine_check_pb2.RecordSendsRequest, context: Any
    ) -> quarantine_check_pb2.RecordSendsResponse:
        await self.flaky.attempt("RecordSends", context, request.request_id)
        return quarantine_check_pb2.RecordSendsResponse(recorded_count=len(request.phone_numbers))

    async def GetNumberStatus(
        self, request: quarantine_check_pb2.GetNumberStatusRequest, context: Any
    ) -> quarantine_check_pb2.GetNumberStatusResponse:
        await self.flaky.attempt("GetNumberStatus", context)
        await asyncio.sleep(5)  # slower than any deadline of these tests
        return quarantine_check_pb2.GetNumberStatusResponse()


class FlakyIngest(stop_ingest_pb2_grpc.StopIngestServicer):
    """ClassifyText fails like `Flaky`; StreamEvents breaks the first `broken_streams` connections after
    acking `acks_before_break` requests, and records every event id it receives."""

    IngestEvent = _unimplemented
    SetCustomKeyword = ListCustomKeywords = RemoveCustomKeyword = _unimplemented

    def __init__(self, flaky: Flaky, broken_streams: int = 1, acks_before_break: int = 1) -> None:
        self.flaky = flaky
        self.broken_streams = broken_streams
        self.acks_before_break = acks_before_break
        self.connections = 0
        self.received: list[str] = []

    async def ClassifyText(
        self, request: stop_ingest_pb2.ClassifyTextRequest, context: Any
    ) -> stop_ingest_pb2.ClassifyTextResponse:
        await self.flaky.attempt("ClassifyText", context)
        return stop_ingest_pb2.ClassifyTextResponse(intent=common_pb2.INTENT_OPT_OUT)

    async def StreamEvents(
        self, request_iterator: AsyncIterator[stop_ingest_pb2.StreamEventsRequest], context: Any
    ) -> AsyncIterator[stop_ingest_pb2.StreamEventsResponse]:
        self.connections += 1
        breaks = self.connections <= self.broken_streams
        requests = 0
        async for request in request_iterator:
            self.received.extend(event.event_id for event in request.events)
            requests += 1
            if breaks and requests > self.acks_before_break:
                await context.abort(grpc.StatusCode.UNAVAILABLE, "server going away")
            yield stop_ingest_pb2.StreamEventsResponse(
                acks=[
                    stop_ingest_pb2.EventAck(
                        event_id=e.event_id, outcome=stop_ingest_pb2.INGEST_OUTCOME_QUARANTINED
                    )
                    for e in request.events
                ]
            )


class FlakyReporting(reporting_pb2_grpc.ReportingServicer):
    """ExportQuarantine fails like `Flaky`, then streams one entry."""

    GetCampaignReport = ListCampaignReports = GetLicenceSummary = _unimplemented
    ExportInteractions = WatchBlocklistChanges = _unimplemented_stream

    def __init__(self, flaky: Flaky) -> None:
        self.flaky = flaky

    async def ExportQuarantine(
        self, request: reporting_pb2.ExportQuarantineRequest, context: Any
    ) -> AsyncIterator[reporting_pb2.ExportQuarantineResponse]:
        await self.flaky.attempt("ExportQuarantine", context)
        yield reporting_pb2.ExportQuarantineResponse(
            entries=[reporting_pb2.QuarantineEntry(phone_number="+33612345678")]
        )


@pytest.fixture
def flaky() -> Flaky:
    return Flaky(failures=2)


@pytest.fixture
async def ingest(flaky: Flaky) -> FlakyIngest:
    return FlakyIngest(flaky)


@pytest.fixture
async def quarantine(flaky: Flaky) -> FlakyQuarantine:
    return FlakyQuarantine(flaky)


@pytest.fixture
async def target(flaky: Flaky, ingest: FlakyIngest, quarantine: FlakyQuarantine) -> AsyncIterator[str]:
    server = grpc.aio.server()
    quarantine_check_pb2_grpc.add_QuarantineCheckServicer_to_server(quarantine, server)
    stop_ingest_pb2_grpc.add_StopIngestServicer_to_server(ingest, server)
    reporting_pb2_grpc.add_ReportingServicer_to_server(FlakyReporting(flaky), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    yield f"127.0.0.1:{port}"
    await server.stop(None)


async def test_idempotent_calls_are_retried(connect: Connect, target: str, flaky: Flaky) -> None:
    client = await connect(target, retry=FAST_RETRY)
    reply = await client.call("classify_text", "STOP")
    assert reply.intent == common_pb2.INTENT_OPT_OUT
    assert flaky.attempts["ClassifyText"] == 3


async def test_read_only_check_batch_is_retried_by_the_client(
    connect: Connect, target: str, flaky: Flaky
) -> None:
    client = await connect(target, retry=FAST_RETRY)
    reply = await client.call("check_batch", "acme", ["+33612345678"], sender="36180", category=MARKETING)
    assert reply.allowed_count == 1
    assert flaky.attempts["CheckBatch"] == 3


async def test_calls_that_record_are_retried_with_one_request_id(
    connect: Connect, target: str, flaky: Flaky
) -> None:
    """Each attempt carries the same request id, so the server records the sends once whichever attempt
    reached it (tests/integration/test_request_ids.py)."""
    client = await connect(target, retry=FAST_RETRY)
    reply = await client.call(
        "check_batch", "acme", ["+33612345678"], sender="36180", category=MARKETING, campaign_id="spring"
    )
    assert reply.allowed_count == 1
    recorded = await client.call("record_sends", "acme", "spring", ["+33612345678"], sender="36180")
    assert recorded.recorded_count == 1
    assert (flaky.attempts["CheckBatch"], flaky.attempts["RecordSends"]) == (3, 3)
    for method in ("CheckBatch", "RecordSends"):
        (request_id,) = set(flaky.request_ids[method])
        assert uuid.UUID(request_id).version == 4


async def test_a_given_request_id_is_sent_as_is_and_split_per_request(
    connect: Connect, target: str, flaky: Flaky
) -> None:
    """One request id per request of a chunked check, derived from the caller's: the same each call, so a
    caller that repeats a call with the same id and numbers repeats every request."""
    client = await connect(target, retry=RetryConfig(max_attempts=1))
    given = str(uuid.uuid4())
    flaky.failures = 0
    await client.call("record_sends", "acme", "spring", ["+33612345678"], sender="36180", request_id=given)
    assert flaky.request_ids["RecordSends"] == [given]
    numbers = [f"+336{i:08d}" for i in range(CHECK_BATCH_LIMIT + 1)]
    for _ in range(2):
        await client.call(
            "check_batch",
            "acme",
            numbers,
            sender="36180",
            category=MARKETING,
            campaign_id="spring",
            request_id=given,
        )
    first, second, *again = flaky.request_ids["CheckBatch"]
    assert len({first, second}) == 2
    assert given not in (first, second)
    assert sorted(again) == sorted([first, second])
    await client.call("check_batch", "acme", numbers[:1], sender="36180", category=MARKETING)
    assert flaky.request_ids["CheckBatch"][-1] == ""  # a check that records nothing needs no id


async def test_retries_can_be_turned_off(connect: Connect, target: str, flaky: Flaky) -> None:
    client = await connect(target, retry=RetryConfig(max_attempts=1))
    with pytest.raises(UnavailableError) as error:
        await client.call("classify_text", "STOP")
    assert error.value.message == "not now"
    with pytest.raises(UnavailableError):
        await client.call("check_batch", "acme", ["+33612345678"], sender="36180", category=MARKETING)
    assert (flaky.attempts["ClassifyText"], flaky.attempts["CheckBatch"]) == (1, 1)


async def test_a_per_call_retry_governs_the_attempts_of_that_call(
    connect: Connect, target: str, flaky: Flaky
) -> None:
    """`retry=` overrides the client's RetryConfig for one call, either way, for the calls retried whatever
    their request, those retried with a request id, and server streams (before their first row)."""
    flaky.failures = 1
    calls: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {
        "ClassifyText": ("classify_text", ("STOP",), {}),
        "CheckBatch": ("check_batch", ("acme", ["+33612345678"]), {"sender": "36180", "category": MARKETING}),
        "RecordSends": ("record_sends", ("acme", "spring", ["+33612345678"]), {"sender": "36180"}),
        "ExportQuarantine": ("export_quarantine", ("acme",), {}),
    }

    async def call(method: str, *args: Any, **kwargs: Any) -> Any:
        if method.startswith("export_"):
            return await client.collect(method, *args, **kwargs)
        return await client.call(method, *args, **kwargs)

    client = await connect(target, retry=FAST_RETRY)
    for rpc, (method, args, kwargs) in calls.items():
        with pytest.raises(UnavailableError):
            await call(method, *args, retry=NO_RETRY, **kwargs)
        assert flaky.attempts[rpc] == 1, rpc  # the client's own 4 attempts are not made
    flaky.attempts.clear()

    client = await connect(target, retry=NO_RETRY)
    for rpc, (method, args, kwargs) in calls.items():
        assert await call(method, *args, retry=FAST_RETRY, **kwargs)
        assert flaky.attempts[rpc] == 2, rpc
        assert await call(method, *args, **kwargs)  # the client's default again: one attempt, which passes
        assert flaky.attempts[rpc] == 3, rpc


async def test_calls_that_are_not_idempotent_are_never_retried(
    connect: Connect, target: str, flaky: Flaky
) -> None:
    client = await connect(target, retry=FAST_RETRY)
    with pytest.raises(UnavailableError):
        await client.call("quarantine_numbers", "acme", ["+33612345678"], actor="ana", reason="complaint")
    assert flaky.attempts["QuarantineNumbers"] == 1


async def test_no_retry_turns_the_reconnection_of_a_stream_off(
    connect: Connect, target: str, ingest: FlakyIngest
) -> None:
    client = await connect(target, retry=FAST_RETRY)
    events = [InboundEvent(event_id=f"e-{i}") for i in range(30)]
    with pytest.raises(ReconnectDeadlineError) as gave_up:
        await client.collect("stream_events", events, batch_size=10, retry=NO_RETRY)
    assert ingest.connections == 1
    assert gave_up.value.acked_events == 10


async def test_the_timeout_of_a_chunked_check_batch_covers_the_whole_call(
    connect: Connect, target: str, flaky: Flaky, quarantine: FlakyQuarantine
) -> None:
    """Three requests one after the other, 0.4 s each: each fits a 1 s deadline, the three do not."""
    flaky.failures = 0
    quarantine.check_delay_s = 0.4
    client = await connect(target)
    numbers = [f"+336{i:08d}" for i in range(2 * CHECK_BATCH_LIMIT + 1)]
    check = {"sender": "36180", "category": MARKETING, "max_concurrency": 1}

    started = time.monotonic()
    with pytest.raises(DeadlineExceededError):
        await client.call("check_batch", "acme", numbers, timeout=1.0, **check)
    assert time.monotonic() - started < 1.8  # at the call's deadline, not at the third request's

    reply = await client.call("check_batch", "acme", numbers, timeout=3.0, **check)
    assert reply.allowed_count == len(numbers)


class CountingInterceptor(grpc.aio.UnaryUnaryClientInterceptor):
    def __init__(self) -> None:
        self.methods: list[str] = []

    async def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
        method = details.method
        self.methods.append(method.decode() if isinstance(method, bytes) else method)
        return await continuation(details, request)


async def test_interceptors_see_every_attempt(connect: Connect, target: str, flaky: Flaky) -> None:
    interceptor = CountingInterceptor()
    client = await connect(target, retry=FAST_RETRY, interceptors=[interceptor])
    await client.call("classify_text", "STOP")
    assert interceptor.methods == ["/stopgate.v1.StopIngest/ClassifyText"] * 3


async def test_a_naive_datetime_is_refused_naming_its_argument(connect: Connect, target: str) -> None:
    client = await connect(target)
    with pytest.raises(ValueError, match="sent_at must be timezone-aware"):
        await client.call(
            "record_sends",
            "acme",
            "spring",
            ["+33612345678"],
            sender="36180",
            sent_at=datetime.now(),
        )


async def test_stream_events_reconnects_and_resends_unacked_batches(
    connect: Connect, target: str, ingest: FlakyIngest
) -> None:
    client = await connect(target, retry=FAST_RETRY)
    events = [InboundEvent(event_id=f"e-{i}", phone_number="+33612345678") for i in range(100)]

    acks = await client.collect("stream_events", events, batch_size=10, max_batches_in_flight=4)

    assert [a.event_id for a in acks] == [e.event_id for e in events]  # each once, in order
    assert ingest.connections == 2
    assert set(ingest.received) == {e.event_id for e in events}
    assert len(ingest.received) > len(events)  # the unacked batches of the broken stream went again


async def test_stream_events_reconnects_until_its_deadline_not_max_attempts(
    connect: Connect, target: str, flaky: Flaky
) -> None:
    broken = FlakyIngest(flaky, broken_streams=1_000, acks_before_break=0)
    server = grpc.aio.server()
    stop_ingest_pb2_grpc.add_StopIngestServicer_to_server(broken, server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    try:
        client = await connect(f"127.0.0.1:{port}", retry=FAST_RETRY)
        events = [InboundEvent(event_id=f"e-{i}") for i in range(30)]
        with pytest.raises(ReconnectDeadlineError) as at_once:
            await client.collect("stream_events", events, batch_size=10, reconnect_deadline_s=0)
        assert broken.connections == 1

        with pytest.raises(ReconnectDeadlineError) as gave_up:
            await client.collect("stream_events", events, batch_size=10, reconnect_deadline_s=1)
        assert broken.connections - 1 > FAST_RETRY.max_attempts
        for error in (at_once.value, gave_up.value):
            assert (error.acked_events, error.unacked_events) == (0, 30)
            assert isinstance(error.__cause__, UnavailableError)
    finally:
        await server.stop(None)


async def test_default_deadline_and_metadata(connect: Connect, target: str, flaky: Flaky) -> None:
    flaky.failures = 0
    client = await connect(target, token="s3cret", default_timeout=0.3)
    with pytest.raises(DeadlineExceededError):
        await client.call("get_number_status", "acme", "+33612345678", metadata=[("x-request-id", "r-1")])
    assert ("authorization", "Bearer s3cret") in flaky.metadata
    assert ("x-request-id", "r-1") in flaky.metadata


async def test_a_failing_event_source_ends_the_stream_after_its_events_are_acked(
    connect: Connect, target: str, ingest: FlakyIngest
) -> None:
    ingest.broken_streams = 0

    def events() -> Iterator[InboundEvent]:
        yield InboundEvent(event_id="first")
        raise ValueError("bad input file")

    client = await connect(target)
    with pytest.raises(ValueError, match="bad input file"):
        await client.collect("stream_events", events())
    assert ingest.received == ["first"]


def test_backoffs_grow_with_full_jitter_and_stay_under_the_cap() -> None:
    config = RetryConfig(max_attempts=5, initial_backoff_s=0.1, max_backoff_s=0.3, multiplier=2)
    ceilings = [0.1, 0.2, 0.3, 0.3]
    for _ in range(200):
        waits = list(config.backoffs())
        assert len(waits) == 4
        assert all(0 <= wait <= ceiling for wait, ceiling in zip(waits, ceilings, strict=True))
    assert len({round(w, 6) for _ in range(20) for w in config.backoffs()}) > 10  # jittered, not fixed


def test_reconnection_backoffs_have_no_end_and_stay_under_the_cap() -> None:
    """`stream_events` reconnects until its deadline, not `max_attempts` times; gRPC itself tries a lost
    connection again at least every `max_backoff_s`."""
    config = RetryConfig(max_attempts=2, initial_backoff_s=0.1, max_backoff_s=0.3)
    waits = list(itertools.islice(config.reconnect_backoffs(), 100))
    assert len(waits) == 100
    assert all(0 <= wait <= 0.3 for wait in waits)
    assert dict(config.channel_options())["grpc.max_reconnect_backoff_ms"] == 300


@pytest.mark.parametrize(
    "options",
    [
        {"max_attempts": 0},
        {"max_attempts": 6},
        {"initial_backoff_s": 0},
        {"max_backoff_s": 0.01},
        {"multiplier": 0.5},
    ],
)
def test_retry_config_refuses_nonsense(options: dict[str, Any]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each option has its own message
        RetryConfig(**options)


async def test_round_robin_spreads_calls_over_every_address(connect: Connect) -> None:
    """`load_balancing="round_robin"` with a multi-address target: each replica gets calls."""
    replicas = [Flaky(failures=0), Flaky(failures=0)]
    servers: list[grpc.aio.Server] = []
    ports: list[int] = []
    for flaky in replicas:
        server = grpc.aio.server()
        stop_ingest_pb2_grpc.add_StopIngestServicer_to_server(FlakyIngest(flaky), server)
        ports.append(server.add_insecure_port("127.0.0.1:0"))
        await server.start()
        servers.append(server)
    try:
        target = "ipv4:" + ",".join(f"127.0.0.1:{port}" for port in ports)
        client = await connect(target, load_balancing="round_robin")
        for _ in range(20):
            await client.call("classify_text", "STOP")
        calls = [flaky.attempts.get("ClassifyText", 0) for flaky in replicas]
        assert sum(calls) == 20
        assert min(calls) >= 5  # both replicas serve (round robin; one may be ready a moment later)
    finally:
        for server in servers:
            await server.stop(None)
