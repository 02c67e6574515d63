"""OpenTelemetry traces: a server span for every RPC, when the standard OTEL_* variables turn tracing on.

Off unless configured. Tracing is on when OTEL_TRACES_EXPORTER names an exporter (anything but `none`), or,
with OTEL_TRACES_EXPORTER unset, when OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is
set (then the exporter is `otlp`). The specification makes `otlp` the default exporter, so that a library
traces as soon as an SDK is there; a server that every team deploys must not start sending spans to
localhost:4317 because a variable is missing, hence the explicit rule. OTEL_SDK_DISABLED=true wins. When
off, nothing is set up and no interceptor is installed: the calls do not pay for it.

When on, each server process (each worker) has its own TracerProvider, not the global one (several
servers may share a test process): its resource comes from OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES
(`service.name` is `stopgate` unless they say otherwise), its sampler from OTEL_TRACES_SAMPLER and
OTEL_TRACES_SAMPLER_ARG, and each exporter, found by name among the installed SDK exporters as
`opentelemetry-instrument` finds them, reads its own variables (OTEL_EXPORTER_OTLP_*) and sends through a
BatchSpanProcessor (OTEL_BSP_*). The spans are those of the OpenTelemetry gRPC instrumentation, which also
reads the caller's W3C `traceparent`; services listed in OTEL_PYTHON_GRPC_EXCLUDED_SERVICES (its variable,
comma-separated, e.g. `grpc.health.v1.Health`) get none.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import os
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from importlib.metadata import EntryPoint, entry_points
from typing import Any

import grpc
from opentelemetry import trace
from opentelemetry.instrumentation.grpc import aio_server_interceptor, filters
from opentelemetry.sdk.resources import SERVICE_NAME, OTELResourceDetector, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter

from stopgate_server.grpc_handlers import Behaviour, behaviour_and_factory, final_code
from stopgate_server.obs.logging import redact

DEFAULT_SERVICE_NAME = "stopgate"
RPC_GRPC_STATUS_CODE = "rpc.grpc.status_code"  # the attribute the instrumentation sets
SHUTDOWN_TIMEOUT_S = 5.0  # for the last spans to leave on a clean stop; an unreachable collector loses them
DROPPED_SPANS_LOG_INTERVAL_S = 60.0
# Where the SDK's batch processor logs; checked by tests/integration/test_tracing.py (the SDK is pinned).
BATCH_PROCESSOR_LOGGER = "opentelemetry.sdk._shared_internal"

# OTLP's two Python exporters, by the protocol OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL names (grpc by default,
# as the Python SDK has it; http/protobuf needs the `otel` extra).
_OTLP_BY_PROTOCOL = {"grpc": "otlp_proto_grpc", "http/protobuf": "otlp_proto_http"}
_MISSING = {
    "otlp_proto_http": "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf needs the `otel` extra: "
    "pip install 'stopgate[otel]'"
}

# The status codes that make a server span an error, by the semantic conventions for gRPC (the others are
# the caller's doing: the server did its job).
_SERVER_ERRORS = frozenset(
    {
        grpc.StatusCode.UNKNOWN,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.UNIMPLEMENTED,
        grpc.StatusCode.INTERNAL,
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DATA_LOSS,
    }
)

Filter = Callable[[grpc.HandlerCallDetails], bool]


class TracingError(RuntimeError):
    """The OTEL_* configuration asks for something that cannot be done; the message names the variable."""


def _setting(environ: Mapping[str, str], name: str) -> str:
    return environ.get(name, "").strip()


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters the configuration asks for, as entry points of `opentelemetry_traces_exporter` (e.g.
    `otlp_proto_grpc`, `console`); none when tracing is off."""
    if _setting(environ, "OTEL_SDK_DISABLED").lower() == "true":
        return []
    names = _setting(environ, "OTEL_TRACES_EXPORTER")
    if not names:
        endpoint = _setting(environ, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or _setting(
            environ, "OTEL_EXPORTER_OTLP_ENDPOINT"
        )
        names = "otlp" if endpoint else "none"
    chosen = [name.strip().lower() for name in names.split(",") if name.strip()]
    if chosen == ["none"]:
        return []
    if "none" in chosen:
        raise TracingError(f"OTEL_TRACES_EXPORTER={names!r}: `none` cannot be combined with exporters")
    protocol = _setting(environ, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL") or _setting(
        environ, "OTEL_EXPORTER_OTLP_PROTOCOL"
    )
    if "otlp" in chosen and protocol and protocol not in _OTLP_BY_PROTOCOL:
        raise TracingError(
            f"OTEL_EXPORTER_OTLP_PROTOCOL={protocol!r}: expected one of {', '.join(_OTLP_BY_PROTOCOL)}"
        )
    return [_OTLP_BY_PROTOCOL[protocol or "grpc"] if name == "otlp" else name for name in chosen]


def check_environment() -> None:
    """TracingError when the OTEL_* variables ask for an exporter that is not installed or a protocol
    there is none for; what a supervisor checks before it starts its workers."""
    for name in exporter_names(os.environ):
        _entry_point(name)


def _entry_point(name: str) -> EntryPoint:
    found = entry_points(group="opentelemetry_traces_exporter", name=name)
    if not found:
        raise TracingError(_MISSING.get(name, f"OTEL_TRACES_EXPORTER: no exporter {name!r} is installed"))
    return next(iter(found))


def _exporter(name: str) -> SpanExporter:
    exporter: SpanExporter = _entry_point(name).load()()
    return exporter


def traced_services(environ: Mapping[str, str]) -> Filter | None:
    """A filter of the calls to trace: those of every service but the ones OTEL_PYTHON_GRPC_EXCLUDED_SERVICES
    lists (the instrumentation's variable); None when it lists none."""
    services = [s.strip() for s in environ.get("OTEL_PYTHON_GRPC_EXCLUDED_SERVICES", "").split(",")]
    services = [s for s in services if s]
    if not services:
        return None
    traced: Filter = filters.negate(filters.any_of(*(filters.service_name(s) for s in services)))
    return traced


def resource() -> Resource:
    """The resource of this process's spans: OTEL_RESOURCE_ATTRIBUTES and OTEL_SERVICE_NAME, with
    `service.name` `stopgate` when neither gives one."""
    named = OTELResourceDetector().detect().attributes.get(SERVICE_NAME)
    return Resource.create({} if named else {SERVICE_NAME: DEFAULT_SERVICE_NAME})


class Tracing:
    """A process's tracer provider and the server interceptors that make its spans.

    `from_environment` builds it from OTEL_* variables (None when they leave tracing off); tests give a
    provider of their own (with the SDK's in-memory exporter)."""

    def __init__(self, provider: TracerProvider, filter_: Filter | None = None) -> None:
        self.provider = provider
        self.filter = filter_

    @classmethod
    def from_environment(cls) -> Tracing | None:
        """The process's tracing as the OTEL_* variables say; None when they leave it off. TracingError
        when they ask for an exporter that is not installed or a protocol there is none for."""
        names = exporter_names(os.environ)
        if not names:
            return None
        exporters = [_exporter(name) for name in names]
        # shutdown_on_exit off: the provider is shut down by Application.stop, within SHUTDOWN_TIMEOUT_S;
        # the SDK's own exit hook could hold a process up to 30 s on an unreachable collector.
        provider = TracerProvider(resource=resource(), shutdown_on_exit=False)
        _quiet_dropped_spans()
        for exporter in exporters:
            provider.add_span_processor(BatchSpanProcessor(exporter))
        return cls(provider, traced_services(os.environ))

    def server_interceptors(self) -> list[grpc.aio.ServerInterceptor]:
        """The interceptors to install before interceptor.CallInterceptor, so that each call's span covers
        its authorisation and limits too, and every log line of the call is in it."""
        return [
            aio_server_interceptor(tracer_provider=self.provider, filter_=self.filter),  # type: ignore[no-untyped-call]
            _Outcome(self.filter),
        ]

    async def shutdown(self, timeout_s: float = SHUTDOWN_TIMEOUT_S) -> bool:
        """Export the spans not sent yet and stop the exporters, waiting at most `timeout_s`; False when
        that ran out (the rest is dropped with the process). Runs on a daemon thread, so that an exporter
        stuck on an unreachable collector cannot hold up the event loop or the process's exit."""
        loop = asyncio.get_running_loop()
        done: asyncio.Future[None] = loop.create_future()

        def shut_down() -> None:
            try:
                self.provider.shutdown()
            finally:
                with contextlib.suppress(RuntimeError):  # the loop closed: nobody waits any more
                    loop.call_soon_threadsafe(_settle, done)

        threading.Thread(target=shut_down, name="tracing-shutdown", daemon=True).start()
        try:
            await asyncio.wait_for(done, timeout_s)
        except TimeoutError:
            return False
        return True


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


class DroppedSpansFilter(logging.Filter):
    """Lets one of the batch processor's `Queue full, dropping …` lines through per interval: it writes one
    per span dropped, which with the collector down would be a log line per call."""

    def __init__(self, interval_s: float = DROPPED_SPANS_LOG_INTERVAL_S) -> None:
        super().__init__()
        self.interval_s = interval_s
        self.last = -interval_s

    def filter(self, record: logging.LogRecord) -> bool:
        if not str(record.msg).startswith("Queue full"):
            return True
        now = time.monotonic()
        if now - self.last < self.interval_s:
            return False
        self.last = now
        return True


def _quiet_dropped_spans() -> None:
    logger = logging.getLogger(BATCH_PROCESSOR_LOGGER)
    if not any(isinstance(f, DroppedSpansFilter) for f in logger.filters):
        logger.addFilter(DroppedSpansFilter())


class _Outcome(grpc.aio.ServerInterceptor):
    """Fits the instrumentation's interceptor to interceptor.CallInterceptor, between the two (the
    instrumentation's span is the current one while they run).

    CallInterceptor ends failed calls with `abort_with_status`, which the instrumentation does not see: this
    sets the span's `rpc.grpc.status_code` (and its error status) from the call's final code. And it serves
    streaming responses with a coroutine that writes with `context.write`, where the instrumentation
    iterates an async generator: this presents it as one that yields nothing."""

    def __init__(self, filter_: Filter | None) -> None:
        self.filter = filter_

    async def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        handler = await continuation(handler_call_details)
        if handler is None or (self.filter is not None and not self.filter(handler_call_details)):
            return handler
        behaviour, factory = behaviour_and_factory(handler)
        return factory(
            _streamed(behaviour) if handler.response_streaming else _answered(behaviour),
            request_deserializer=handler.request_deserializer,
            response_serializer=handler.response_serializer,
        )


def _answered(behaviour: Behaviour) -> Behaviour:
    async def answered(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> Any:
        cancelled = False
        try:
            return await behaviour(request, context)
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            _record_status(context, cancelled)

    return answered


def _streamed(behaviour: Behaviour) -> Callable[..., AsyncIterator[Any]]:
    async def streamed(request: Any, context: grpc.aio.ServicerContext[Any, Any]) -> AsyncIterator[Any]:
        cancelled = False
        try:
            result = behaviour(request, context)
            if inspect.isasyncgen(result):
                async for response in result:
                    yield response
            else:
                await result
        except asyncio.CancelledError:
            cancelled = True
            raise
        finally:
            _record_status(context, cancelled)

    return streamed


def _record_status(context: grpc.aio.ServicerContext[Any, Any], cancelled: bool) -> None:
    code = final_code(context, cancelled)
    span = trace.get_current_span()
    span.set_attribute(RPC_GRPC_STATUS_CODE, code.value[0])
    if code in _SERVER_ERRORS:
        # What the caller was told, redacted as log lines are.
        span.set_status(
            trace.StatusCode.ERROR, redact(f"{code.name}: {context.details() or ''}".rstrip(": "))
        )
