"""The call interceptor on a real gRPC server: exceptions become statuses, every call is counted."""

from __future__ import annotations

import io
import json
import logging
import os
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from prometheus_client import REGISTRY
from stopgate.v1 import reporting_pb2, reporting_pb2_grpc
from stopgate_server.auth import Authoriser
from stopgate_server.config import Settings
from stopgate_server.interceptor import CallInterceptor, Deadlines
from stopgate_server.limits import Limits
from stopgate_server.obs.logging import JsonFormatter
from stopgate_server.obs.metrics import grpc_code

SERVICE = "grpc.health.v1.Health"


class FailingHealth(health_pb2_grpc.HealthServicer):  # type: ignore[misc]
    """Check fails unexpectedly; Watch loses its database connection after one message."""

    async def Check(self, request: Any, context: Any) -> Any:
        raise KeyError("secret internal detail")

    async def Watch(self, request: Any, context: Any) -> AsyncIterator[Any]:
        yield health_pb2.HealthCheckResponse(status=health_pb2.HealthCheckResponse.SERVING)
        raise asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation")


@pytest.fixture
async def stub() -> AsyncIterator[Any]:
    server = grpc.aio.server(
        interceptors=[CallInterceptor(Authoriser(None), Deadlines(30, 120), Limits.of(Settings()))]
    )
    health_pb2_grpc.add_HealthServicer_to_server(FailingHealth(), server)
    # The generated base class: every method raises NotImplementedError.
    reporting_pb2_grpc.add_ReportingServicer_to_server(reporting_pb2_grpc.ReportingServicer(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        stub.reporting = reporting_pb2_grpc.ReportingStub(channel)
        yield stub
    await server.stop(0)


def _sample(name: str, method: str, grpc_type: str, **labels: str) -> float:
    labels.update(grpc_type=grpc_type, grpc_service=SERVICE, grpc_method=method)
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _handled(method: str, grpc_type: str, code: grpc.StatusCode) -> float:
    return _sample("grpc_server_handled_total", method, grpc_type, grpc_code=grpc_code(code))


async def _collect(replies: AsyncIterator[Any], into: list[Any]) -> None:
    async for reply in replies:
        into.append(reply.status)


async def test_unexpected_error_is_internal_without_leaking(stub: Any) -> None:
    before = _handled("Check", "unary", grpc.StatusCode.INTERNAL)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INTERNAL
    assert "secret" not in (caught.value.details() or "")
    assert "reference" in (caught.value.details() or "")
    assert _handled("Check", "unary", grpc.StatusCode.INTERNAL) == before + 1


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """The JSON lines the server logs during the test, formatted as a worker (index 3) formats them."""
    lines = io.StringIO()
    handler = logging.StreamHandler(lines)
    handler.setFormatter(JsonFormatter(worker=3))
    logging.getLogger().addHandler(handler)
    yield lines
    logging.getLogger().removeHandler(handler)


async def test_the_reference_a_caller_gets_is_in_the_log_with_its_call(
    stub: Any, log_lines: io.StringIO
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.Check(
            health_pb2.HealthCheckRequest(),
            metadata=(("x-request-id", "7c9e6679-7425-40de-944b-e07fc1f90ae7"),),
            timeout=5,
        )
    reference = (caught.value.details() or "").rpartition("reference ")[2].rstrip(")")
    assert len(reference) == 12
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    [entry] = [e for e in entries if e["msg"].startswith("unexpected error")]
    assert reference in entry["reply"]  # whole: not masked as if it were a phone number
    assert entry["method"] == "/grpc.health.v1.Health/Check"
    assert entry["request_id"] == "7c9e6679-7425-40de-944b-e07fc1f90ae7"
    assert (entry["worker"], entry["pid"]) == (3, os.getpid())


@pytest.mark.parametrize(
    ("given", "logged"),
    [("call:33612345678", "call:********678"), ("+33612345678", None), ("x" * 65, None)],
)
async def test_a_request_id_is_masked_like_any_text_or_replaced(
    stub: Any, log_lines: io.StringIO, given: str, logged: str | None
) -> None:
    with pytest.raises(grpc.aio.AioRpcError):
        await stub.Check(health_pb2.HealthCheckRequest(), metadata=(("x-request-id", given),), timeout=5)
    [entry] = [json.loads(line) for line in log_lines.getvalue().splitlines() if "unexpected" in line]
    assert "33612345678" not in log_lines.getvalue()
    if logged is None:
        assert len(entry["request_id"]) == 16
        assert entry["request_id"] != given
    else:
        assert entry["request_id"] == logged


async def test_calls_without_a_request_id_get_one_each(stub: Any, log_lines: io.StringIO) -> None:
    for _ in range(2):
        with pytest.raises(grpc.aio.AioRpcError):
            await stub.Check(health_pb2.HealthCheckRequest(), timeout=5)
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    ids = [e["request_id"] for e in entries if e["msg"].startswith("unexpected error")]
    assert len(ids) == 2
    assert ids[0] != ids[1]


async def test_streaming_database_loss_is_unavailable(stub: Any) -> None:
    before = _handled("Watch", "server_stream", grpc.StatusCode.UNAVAILABLE)
    sent_before = _sample("grpc_server_msg_sent_total", "Watch", "server_stream")
    received: list[Any] = []
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await _collect(stub.Watch(health_pb2.HealthCheckRequest(), timeout=5), received)
    assert received == [health_pb2.HealthCheckResponse.SERVING]
    assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    assert "closed in the middle" not in (caught.value.details() or "")
    assert _handled("Watch", "server_stream", grpc.StatusCode.UNAVAILABLE) == before + 1
    assert _sample("grpc_server_msg_sent_total", "Watch", "server_stream") == sent_before + 1


async def test_a_method_without_implementation_is_unimplemented(stub: Any) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.reporting.GetCampaignReport(reporting_pb2.GetCampaignReportRequest(), timeout=5)
    assert caught.value.code() == grpc.StatusCode.UNIMPLEMENTED
    assert "not implemented" in (caught.value.details() or "")
