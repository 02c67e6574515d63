"""OpenTelemetry client spans for stopgate calls: the `otel` extra (`pip install 'stopgate-client[otel]'`).

    from stopgate import AsyncClient
    from stopgate.tracing import client_interceptors

    async with AsyncClient(target, interceptors=client_interceptors()) as client:
        ...

Each call gets a client span of the OpenTelemetry gRPC instrumentation (`rpc.system`, `rpc.service`,
`rpc.method`, `rpc.grpc.status_code`), and the span's context travels in the W3C `traceparent` metadata, so
that stopgate's server span (when the server traces) is its child. Nothing is exported unless the
application set up an OpenTelemetry SDK; the client itself never needs OpenTelemetry without this module.
"""

from __future__ import annotations

from typing import Any

import grpc

try:
    from opentelemetry.instrumentation.grpc import aio_client_interceptors
except ImportError as missing:  # pragma: no cover - the extra is not installed
    raise ImportError(
        "stopgate.tracing needs OpenTelemetry's gRPC instrumentation: pip install 'stopgate-client[otel]'"
    ) from missing


def client_interceptors(tracer_provider: Any = None) -> list[grpc.aio.ClientInterceptor]:
    """The interceptors that trace every call of a grpc.aio channel (pass them as `interceptors=` to
    `AsyncClient`, `Client`, or `grpc.aio.insecure_channel`), with `tracer_provider`'s tracer, the global
    one (the application's) by default. One per call type, as a channel files each interceptor under the
    first call type it implements."""
    interceptors: list[grpc.aio.ClientInterceptor] = aio_client_interceptors(  # type: ignore[no-untyped-call]
        tracer_provider=tracer_provider
    )
    return interceptors
