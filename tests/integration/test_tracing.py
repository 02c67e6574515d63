"""OpenTelemetry traces on a real server: a server span per RPC, the child of the caller's client span, the
call's log lines marked with its ids; nothing at all when unconfigured; OTLP to a real receiver."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2, trace_service_pb2_grpc
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode, format_span_id, format_trace_id
from processes import SpawnServer
from stopgate import AsyncClient, Client
from stopgate.interceptors import bearer_token
from stopgate.tracing import client_interceptors
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
from stopgate_server.obs.logging import JsonFormatter
from stopgate_server.obs.tracing import (
    BATCH_PROCESSOR_LOGGER,
    DroppedSpansFilter,
    Tracing,
    traced_services,
)

qc, si, rp = quarantine_check_pb2, stop_ingest_pb2, reporting_pb2
# A caller's span context, as another service would send it (W3C trace context).
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"


def _in_memory() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "stopgate"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


@dataclass
class Traced:
    """A traced in-process server, and a channel to it whose calls make client spans."""

    app: Application
    token: str
    server_spans: InMemorySpanExporter
    client_spans: InMemorySpanExporter
    channel: grpc.aio.Channel

    def server_span(self, rpc: str) -> ReadableSpan:
        [span] = [s for s in self.server_spans.get_finished_spans() if s.name == rpc]
        return span

    def client_span(self, rpc: str) -> ReadableSpan:
        [span] = [s for s in self.client_spans.get_finished_spans() if s.name == rpc]
        return span


@pytest.fixture
async def traced(
    database_url: str, api_token: str, server_settings: Callable[[str], Settings]
) -> AsyncIterator[Traced]:
    server_provider, server_spans = _in_memory()
    client_provider, client_spans = _in_memory()  # the caller's: another process in real life
    app = Application(server_settings(database_url), Tracing(server_provider))
    await app.start()
    interceptors = [*client_interceptors(client_provider), *bearer_token(api_token)]
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}", interceptors=interceptors) as ch:
            yield Traced(app, api_token, server_spans, client_spans, ch)
    finally:
        await app.stop()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The JSON lines (INFO and above) the server logs during the test."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield lines
    root.setLevel(level)
    root.removeHandler(handler)


def _entries(lines: io.StringIO, message: str) -> list[dict[str, Any]]:
    return [e for e in map(json.loads, lines.getvalue().splitlines()) if e["msg"] == message]


def _assert_rpc(span: ReadableSpan, service: str, method: str, code: grpc.StatusCode) -> None:
    assert span.attributes is not None
    assert span.attributes["rpc.system"] == "grpc"
    assert span.attributes["rpc.service"] == service
    assert span.attributes["rpc.method"] == method
    assert span.attributes["rpc.grpc.status_code"] == code.value[0]


async def test_a_unary_call_is_one_trace_from_the_client_span_to_the_server_span(traced: Traced) -> None:
    stub = stop_ingest_pb2_grpc.StopIngestStub(traced.channel)
    await stub.ClassifyText(si.ClassifyTextRequest(text="STOP", country="FR"), timeout=10)
    rpc = "/stopgate.v1.StopIngest/ClassifyText"
    server, client = traced.server_span(rpc), traced.client_span(rpc)
    assert (server.kind, client.kind) == (SpanKind.SERVER, SpanKind.CLIENT)
    _assert_rpc(server, "stopgate.v1.StopIngest", "ClassifyText", grpc.StatusCode.OK)
    _assert_rpc(client, "stopgate.v1.StopIngest", "ClassifyText", grpc.StatusCode.OK)
    assert server.parent is not None
    assert server.parent.is_remote
    assert server.parent.span_id == client.context.span_id
    assert server.context.trace_id == client.context.trace_id
    assert server.status.status_code == StatusCode.UNSET


async def test_an_invalid_argument_is_the_span_status_code_and_not_a_server_error(traced: Traced) -> None:
    stub = quarantine_check_pb2_grpc.QuarantineCheckStub(traced.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckBatch(qc.CheckBatchRequest(licence_id="acme"), timeout=10)  # no phone numbers
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    rpc = "/stopgate.v1.QuarantineCheck/CheckBatch"
    server = traced.server_span(rpc)
    _assert_rpc(server, "stopgate.v1.QuarantineCheck", "CheckBatch", grpc.StatusCode.INVALID_ARGUMENT)
    # The caller's mistake: the semantic conventions leave a server span's status unset for it.
    assert server.status.status_code == StatusCode.UNSET
    _assert_rpc(
        traced.client_span(rpc),
        "stopgate.v1.QuarantineCheck",
        "CheckBatch",
        grpc.StatusCode.INVALID_ARGUMENT,
    )


async def test_a_failed_authorisation_is_in_the_span_too(traced: Traced) -> None:
    stub = reporting_pb2_grpc.ReportingStub(traced.channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetLicenceSummary(
            rp.GetLicenceSummaryRequest(licence_id="acme"),
            metadata=(("authorization", "Bearer sg_not_a_token_at_all_0000"),),
            timeout=10,
        )
    code = caught.value.code()
    assert code == grpc.StatusCode.UNAUTHENTICATED
    server = traced.server_span("/stopgate.v1.Reporting/GetLicenceSummary")
    _assert_rpc(server, "stopgate.v1.Reporting", "GetLicenceSummary", code)


async def test_a_server_stream_has_a_span_that_ends_with_its_status(traced: Traced) -> None:
    stub = reporting_pb2_grpc.ReportingStub(traced.channel)
    replies = [r async for r in stub.ExportQuarantine(rp.ExportQuarantineRequest(licence_id="acme"))]
    assert replies == [] or all(not r.entries for r in replies)
    rpc = "/stopgate.v1.Reporting/ExportQuarantine"
    server = traced.server_span(rpc)
    _assert_rpc(server, "stopgate.v1.Reporting", "ExportQuarantine", grpc.StatusCode.OK)
    assert server.parent is not None
    assert server.parent.span_id == traced.client_span(rpc).context.span_id


async def test_a_bidirectional_stream_has_one_span_for_the_whole_stream(traced: Traced) -> None:
    stub = stop_ingest_pb2_grpc.StopIngestStub(traced.channel)
    events = [
        si.StreamEventsRequest(
            events=[
                si.InboundEvent(
                    event_id=f"e{n}",
                    source=common_pb2.EVENT_SOURCE_SMS_REPLY,
                    phone_number=f"+3361234567{n}",
                    recipient="36180",
                    text="STOP",
                )
            ]
        )
        for n in range(3)
    ]
    acks = [reply async for reply in stub.StreamEvents(iter(events))]
    assert len(acks) == 3
    rpc = "/stopgate.v1.StopIngest/StreamEvents"
    server = traced.server_span(rpc)
    _assert_rpc(server, "stopgate.v1.StopIngest", "StreamEvents", grpc.StatusCode.OK)
    assert server.context.trace_id == traced.client_span(rpc).context.trace_id
    assert server.end_time is not None
    assert server.start_time is not None


async def test_the_log_lines_of_a_call_carry_its_trace_and_span_ids(
    traced: Traced, log_lines: io.StringIO
) -> None:
    stub = quarantine_check_pb2_grpc.QuarantineCheckStub(traced.channel)
    await stub.BindShortcode(
        qc.BindShortcodeRequest(licence_id="acme", shortcode="36180", actor="ops"), timeout=10
    )
    server = traced.server_span("/stopgate.v1.QuarantineCheck/BindShortcode")
    [entry] = _entries(log_lines, "shortcode bound")
    assert entry["trace_id"] == format_trace_id(server.context.trace_id)
    assert entry["span_id"] == format_span_id(server.context.span_id)
    assert (len(entry["trace_id"]), len(entry["span_id"])) == (32, 16)
    logging.getLogger(__name__).info("outside any call")
    [outside] = _entries(log_lines, "outside any call")
    assert "trace_id" not in outside
    assert "span_id" not in outside


async def test_the_client_traces_its_calls_with_the_tracing_interceptors(traced: Traced) -> None:
    target = f"127.0.0.1:{traced.app.grpc_port}"
    provider, client_spans = _in_memory()
    async with AsyncClient(target, token=traced.token, interceptors=client_interceptors(provider)) as client:
        await client.classify_text("STOP", country="FR")
    rpc = "/stopgate.v1.StopIngest/ClassifyText"
    [client_span] = client_spans.get_finished_spans()
    assert client_span.name == rpc
    assert client_span.kind == SpanKind.CLIENT
    server = traced.server_span(rpc)
    assert server.parent is not None
    assert server.parent.span_id == client_span.context.span_id


async def test_the_blocking_client_continues_the_calling_threads_trace(traced: Traced) -> None:
    """`Client` runs calls on its own loop thread, with a copy of the caller's context: the client span is
    the child of the span current in the calling thread, and the server span its grandchild."""
    target = f"127.0.0.1:{traced.app.grpc_port}"
    provider, client_spans = _in_memory()

    def call() -> None:
        with (
            Client(target, token=traced.token, interceptors=client_interceptors(provider)) as client,
            provider.get_tracer("campaigns").start_as_current_span("send winter-sale"),
        ):
            client.classify_text("STOP", country="FR")

    await asyncio.to_thread(call)
    rpc = "/stopgate.v1.StopIngest/ClassifyText"
    [caller] = [s for s in client_spans.get_finished_spans() if s.name == "send winter-sale"]
    [client_span] = [s for s in client_spans.get_finished_spans() if s.name == rpc]
    assert client_span.parent is not None
    assert client_span.parent.span_id == caller.context.span_id
    server = traced.server_span(rpc)
    assert server.context.trace_id == caller.context.trace_id
    assert server.parent is not None
    assert server.parent.span_id == client_span.context.span_id


async def test_a_callers_traceparent_makes_the_server_span_its_child(
    traced: Traced, log_lines: io.StringIO
) -> None:
    target = f"127.0.0.1:{traced.app.grpc_port}"
    async with grpc.aio.insecure_channel(target) as plain:  # no client instrumentation: a foreign caller
        await stop_ingest_pb2_grpc.StopIngestStub(plain).ClassifyText(
            si.ClassifyTextRequest(text="STOP"),
            metadata=(("traceparent", TRACEPARENT), ("authorization", f"Bearer {traced.token}")),
            timeout=10,
        )
    server = traced.server_span("/stopgate.v1.StopIngest/ClassifyText")
    assert format_trace_id(server.context.trace_id) == TRACEPARENT.split("-")[1]
    assert server.parent is not None
    assert format_span_id(server.parent.span_id) == TRACEPARENT.split("-")[2]


@pytest.fixture
def no_otel_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("OTEL_"):
            monkeypatch.delenv(name)


@pytest.mark.usefixtures("no_otel_environment")
async def test_off_by_default_no_interceptor_no_span_no_trace_fields(
    database_url: str, api_token: str, server_settings: Callable[[str], Settings], log_lines: io.StringIO
) -> None:
    app = Application(server_settings(database_url))
    await app.start()
    try:
        assert app.tracing is None  # nothing set up, no interceptor installed
        target = f"127.0.0.1:{app.grpc_port}"
        async with grpc.aio.insecure_channel(target, interceptors=bearer_token(api_token)) as channel:
            await quarantine_check_pb2_grpc.QuarantineCheckStub(channel).BindShortcode(
                qc.BindShortcodeRequest(licence_id="acme", shortcode="36180", actor="ops"),
                metadata=(("traceparent", TRACEPARENT),),
                timeout=10,
            )
    finally:
        await app.stop()
    [entry] = _entries(log_lines, "shortcode bound")
    assert "method" in entry  # a line of the call
    assert "trace_id" not in entry
    assert "span_id" not in entry


class Receiver(trace_service_pb2_grpc.TraceServiceServicer):
    """An OTLP/gRPC trace receiver: keeps every ExportTraceServiceRequest it is sent."""

    def __init__(self) -> None:
        self.requests: list[trace_service_pb2.ExportTraceServiceRequest] = []
        self.received = threading.Event()

    def Export(self, request: Any, context: Any) -> Any:
        self.requests.append(request)
        self.received.set()
        return trace_service_pb2.ExportTraceServiceResponse()

    def spans(self) -> list[tuple[dict[str, Any], Any]]:
        """Each span received, with its resource's attributes."""
        found: list[tuple[dict[str, Any], Any]] = []
        for request in self.requests:
            for resource_spans in request.resource_spans:
                attributes = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
                for scope_spans in resource_spans.scope_spans:
                    found.extend((attributes, span) for span in scope_spans.spans)
        return found


@pytest.fixture
def otlp_receiver() -> Iterator[tuple[Receiver, int]]:
    """A real OTLP receiver (the protocol's own service definition, opentelemetry-proto) on 127.0.0.1:0,
    served by threads so that it answers while the test waits on the server process."""
    receiver = Receiver()
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    trace_service_pb2_grpc.add_TraceServiceServicer_to_server(receiver, server)  # type: ignore[no-untyped-call]
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    yield receiver, port
    server.stop(0)


@pytest.mark.usefixtures("no_otel_environment")
@pytest.mark.parametrize(("workers", "ready"), [("1", "serving"), ("2", "workers serving")])
async def test_a_server_process_configured_by_otel_variables_exports_to_an_otlp_receiver(
    spawn_server: SpawnServer,
    database_url: str,
    api_token: str,
    otlp_receiver: tuple[Receiver, int],
    workers: str,
    ready: str,
) -> None:
    receiver, port = otlp_receiver
    server = spawn_server(
        "--database-url",
        database_url,
        "--workers",
        workers,
        env={"OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}", "OTEL_TRACES_SAMPLER": "always_on"},
    )
    serving = await asyncio.to_thread(server.wait_for, ready)
    client_provider, client_spans = _in_memory()
    interceptors = [*client_interceptors(client_provider), *bearer_token(api_token)]
    async with grpc.aio.insecure_channel(serving["grpc_addr"], interceptors=interceptors) as channel:
        await quarantine_check_pb2_grpc.QuarantineCheckStub(channel).BindShortcode(
            qc.BindShortcodeRequest(licence_id="acme", shortcode="36180", actor="ops"), timeout=10
        )
    call_line = await asyncio.to_thread(server.wait_for, "shortcode bound")
    # A clean stop exports what the batch processor still holds (its first export is 5 s away).
    assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0
    assert receiver.received.is_set()
    [(resource, span)] = [
        (r, s) for r, s in receiver.spans() if s.name == "/stopgate.v1.QuarantineCheck/BindShortcode"
    ]
    assert resource["service.name"] == "stopgate"
    [client] = client_spans.get_finished_spans()
    assert span.trace_id.hex() == format_trace_id(client.context.trace_id)
    assert span.parent_span_id.hex() == format_span_id(client.context.span_id)
    assert span.kind == span.SPAN_KIND_SERVER
    attributes = {a.key: a.value for a in span.attributes}
    assert attributes["rpc.grpc.status_code"].int_value == 0
    assert call_line["trace_id"] == span.trace_id.hex()
    assert call_line["span_id"] == span.span_id.hex()


@pytest.mark.usefixtures("no_otel_environment")
async def test_a_server_process_without_otel_variables_traces_nothing(
    spawn_server: SpawnServer, database_url: str, api_token: str, otlp_receiver: tuple[Receiver, int]
) -> None:
    server = spawn_server("--database-url", database_url)
    serving = await asyncio.to_thread(server.wait_for, "serving")
    target = serving["grpc_addr"]
    async with grpc.aio.insecure_channel(target, interceptors=bearer_token(api_token)) as channel:
        await quarantine_check_pb2_grpc.QuarantineCheckStub(channel).BindShortcode(
            qc.BindShortcodeRequest(licence_id="acme", shortcode="36180", actor="ops"),
            metadata=(("traceparent", TRACEPARENT),),
            timeout=10,
        )
    call_line = await asyncio.to_thread(server.wait_for, "shortcode bound")
    assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0
    assert "request_id" in call_line
    assert "trace_id" not in call_line
    assert "span_id" not in call_line


@pytest.mark.usefixtures("no_otel_environment")
@pytest.mark.parametrize("workers", ["1", "2"])
async def test_an_unknown_exporter_stops_the_server_naming_the_variable(
    spawn_server: SpawnServer, database_url: str, workers: str
) -> None:
    server = spawn_server(
        "--database-url", database_url, "--workers", workers, env={"OTEL_TRACES_EXPORTER": "carrier-pigeon"}
    )
    code, output = await asyncio.to_thread(server.exit_and_output, 60)
    assert code == 1
    assert "OTEL_TRACES_EXPORTER: no exporter 'carrier-pigeon' is installed" in output
    assert "serving" not in output


async def test_services_listed_in_the_instrumentations_variable_get_no_span(
    database_url: str, api_token: str, server_settings: Callable[[str], Settings]
) -> None:
    provider, spans = _in_memory()
    only_stopgate = traced_services({"OTEL_PYTHON_GRPC_EXCLUDED_SERVICES": "grpc.health.v1.Health"})
    app = Application(server_settings(database_url), Tracing(provider, only_stopgate))
    await app.start()
    try:
        target = f"127.0.0.1:{app.grpc_port}"
        async with grpc.aio.insecure_channel(target, interceptors=bearer_token(api_token)) as channel:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
            await stop_ingest_pb2_grpc.StopIngestStub(channel).ClassifyText(
                si.ClassifyTextRequest(text="STOP"), timeout=10
            )
    finally:
        await app.stop()
    assert [s.name for s in spans.get_finished_spans()] == ["/stopgate.v1.StopIngest/ClassifyText"]


async def test_a_stop_waits_for_an_unreachable_collector_no_longer_than_its_timeout() -> None:
    with socket.socket() as probe:  # a port nobody listens on: the exporter retries until its own timeout
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    provider = TracerProvider(shutdown_on_exit=False)
    exporter = OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}", insecure=True)
    provider.add_span_processor(BatchSpanProcessor(exporter, schedule_delay_millis=10))
    with provider.get_tracer(__name__).start_as_current_span("call"):
        pass
    await asyncio.sleep(0.2)  # the batch is being exported, in vain
    started = time.monotonic()
    assert await Tracing(provider).shutdown(timeout_s=0.5) is False
    assert time.monotonic() - started < 5  # not the exporter's 10 s of retries, nor the SDK's 30 s


def test_a_full_span_queue_is_logged_once_a_minute_not_once_a_span(
    no_otel_environment: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OTEL_TRACES_EXPORTER", "console")
    monkeypatch.setenv("OTEL_BSP_MAX_QUEUE_SIZE", "1")
    monkeypatch.setenv("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "1")
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "60000")
    logger = logging.getLogger(BATCH_PROCESSOR_LOGGER)
    for earlier in [f for f in logger.filters if isinstance(f, DroppedSpansFilter)]:
        logger.removeFilter(earlier)  # one of an earlier test may have let its line through
    tracing = Tracing.from_environment()
    assert tracing is not None
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    logger.addHandler(handler)
    try:
        tracer = tracing.provider.get_tracer(__name__)
        for _ in range(50):
            with tracer.start_as_current_span("call"):
                pass
    finally:
        logger.removeHandler(handler)
        tracing.provider.shutdown()
    assert lines.getvalue().count("Queue full") == 1
