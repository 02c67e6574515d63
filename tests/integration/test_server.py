"""The assembled server: services, reflection, health that follows PostgreSQL, metrics, errors."""

from __future__ import annotations

import asyncio
import urllib.request
from collections.abc import Callable
from typing import Any

import grpc
import pytest
from clients import OwnServer
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from grpc_status import rpc_status
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
from stopgate_server.app import SERVICE_NAMES, Application
from stopgate_server.config import Settings

FOUR_SERVICES = {
    "stopgate.v1.MessageCompliance",
    "stopgate.v1.StopIngest",
    "stopgate.v1.QuarantineCheck",
    "stopgate.v1.Reporting",
}


async def test_reflection_lists_the_four_services(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    async for response in stub.ServerReflectionInfo(iter([request])):
        names = {service.name for service in response.list_services_response.service}
        break
    assert names >= FOUR_SERVICES | {"grpc.health.v1.Health"}


async def test_reflection_describes_a_method(channel: grpc.aio.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    request = reflection_pb2.ServerReflectionRequest(file_containing_symbol="stopgate.v1.QuarantineCheck")
    async for response in stub.ServerReflectionInfo(iter([request])):
        protos = response.file_descriptor_response.file_descriptor_proto
        break
    assert any(b"CheckBatch" in proto for proto in protos)


@pytest.mark.parametrize("service", ["", *sorted(FOUR_SERVICES)])
async def test_health_serving_with_database(channel: grpc.aio.Channel, service: str) -> None:
    reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=service))
    assert reply.status == health_pb2.HealthCheckResponse.SERVING


async def test_errors_carry_error_info(channel: grpc.aio.Channel) -> None:
    stub = reporting_pb2_grpc.ReportingStub(channel)
    request = reporting_pb2.GetCampaignReportRequest(licence_id="acme", campaign_id="never-sent")
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.GetCampaignReport(request, timeout=5)
    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    status = rpc_status.from_call(caught.value)
    assert status is not None
    info = error_details_pb2.ErrorInfo()
    assert status.details[0].Unpack(info)
    assert (info.reason, info.domain) == ("NOT_FOUND", "stopgate")


def _scrape(app: Application) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{app.metrics_port}/metrics", timeout=5) as response:
        return str(response.read().decode())


def _sample(text: str, name: str, **labels: str) -> float:
    """The value of one series in a Prometheus text exposition (0 when absent)."""
    wanted = {f'{key}="{value}"' for key, value in labels.items()}
    for line in text.splitlines():
        if line.startswith(name + "{") or line.startswith(name + " "):
            series, _, value = line.rpartition(" ")
            label_text = series[len(name) :].strip("{}")
            if wanted <= set(label_text.split(",")) if label_text else not wanted:
                return float(value)
    return 0.0


async def test_metrics_count_a_call_that_was_made(app: Application, channel: grpc.aio.Channel) -> None:
    labels = {
        "grpc_service": "stopgate.v1.QuarantineCheck",
        "grpc_method": "CheckBatch",
        "grpc_type": "unary",
    }
    before = _sample(
        await asyncio.to_thread(_scrape, app),
        "grpc_server_handled_total",
        grpc_code="InvalidArgument",
        **labels,
    )
    stub = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckBatch(quarantine_check_pb2.CheckBatchRequest(licence_id="acme"), timeout=5)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    text = await asyncio.to_thread(_scrape, app)
    after = _sample(text, "grpc_server_handled_total", grpc_code="InvalidArgument", **labels)
    assert after == before + 1
    assert _sample(text, "grpc_server_started_total", **labels) >= 1
    assert _sample(text, "grpc_server_handling_seconds_count", **labels) >= 1
    assert _sample(text, "stopgate_database_up") == 1
    assert _sample(text, "stopgate_db_pool_max_connections") == app.settings.db_pool_size
    assert "stopgate_blocklist_index_entries" in text


async def test_business_metrics(app: Application, channel: grpc.aio.Channel) -> None:
    checks = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
    ingest = stop_ingest_pb2_grpc.StopIngestStub(channel)
    before = await asyncio.to_thread(_scrape, app)
    await checks.CheckBatch(
        quarantine_check_pb2.CheckBatchRequest(
            licence_id="acme",
            sender=common_pb2.Sender(address="ACME"),
            category=common_pb2.MESSAGE_CATEGORY_MARKETING,
            phone_numbers=["+33612345678", "nonsense"],
        ),
        timeout=5,
    )
    event = stop_ingest_pb2.InboundEvent(
        event_id="m1",
        source=common_pb2.EVENT_SOURCE_SMS_REPLY,
        phone_number="+33612345678",
        recipient="36180",
        text="STOP",
    )
    await ingest.IngestEvent(stop_ingest_pb2.IngestEventRequest(event=event), timeout=5)
    after = await asyncio.to_thread(_scrape, app)
    for name, labels in [
        ("stopgate_checked_numbers_total", {"verdict": "ALLOW", "reason": "NONE"}),
        ("stopgate_checked_numbers_total", {"verdict": "INVALID", "reason": "INVALID_NUMBER"}),
        (
            "stopgate_ingested_events_total",
            {"source": "SMS_REPLY", "intent": "OPT_OUT", "outcome": "QUARANTINED"},
        ),
        ("stopgate_ingest_batch_seconds_count", {}),
    ]:
        assert _sample(after, name, **labels) == _sample(before, name, **labels) + 1, name
    assert _sample(after, "stopgate_blocklist_index_entries", list="stop_list") == 1  # the STOP to 36180
    assert _sample(after, "stopgate_blocklist_propagation_seconds_count") > 0  # heartbeats came back
    assert _sample(after, "stopgate_ingest_oldest_unacked_batch_seconds") == 0  # nothing in flight


async def test_health_follows_the_database(own_server: OwnServer) -> None:
    """NOT_SERVING while PostgreSQL is stopped, SERVING again once it is back, without a restart."""
    health = health_pb2_grpc.HealthStub(own_server.channel)

    async def status(service: str = "") -> int:
        reply = await health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        return int(reply.status)

    async def wait_for(expected: int) -> None:
        for _ in range(100):
            if all([await status(name) == expected for name in ("", *SERVICE_NAMES)]):
                return
            await asyncio.sleep(0.1)
        pytest.fail(f"health never became {expected}")

    assert await status() == health_pb2.HealthCheckResponse.SERVING
    await asyncio.to_thread(own_server.cluster.stop)
    await wait_for(health_pb2.HealthCheckResponse.NOT_SERVING)
    await asyncio.to_thread(own_server.cluster.start)
    await wait_for(health_pb2.HealthCheckResponse.SERVING)


async def test_stop_drains_calls_in_flight(
    database_url: str, api_token: str, server_settings: Callable[[str], Settings], db: Any
) -> None:
    """On shutdown, a call already running finishes (within the grace period) before the server stops."""
    application = Application(server_settings(database_url))
    await application.start()  # creates the month's partition of sends
    await db.execute(
        "INSERT INTO sends (phone, sent_at, licence_id, campaign_id, sender)"
        " SELECT '+3361' || lpad(i::text, 7, '0'), now(), 'acme', 'big', '36180'"
        " FROM generate_series(1, 3000) i"
    )
    target = f"127.0.0.1:{application.grpc_port}"
    async with grpc.aio.insecure_channel(target, interceptors=bearer_token(api_token)) as channel:
        call: Any = reporting_pb2_grpc.ReportingStub(channel).ExportInteractions(
            reporting_pb2.ExportInteractionsRequest(licence_id="acme", campaign_id="big")
        )
        first = await call.read()  # the call is in flight, its cursor open
        stopping = asyncio.create_task(application.stop())
        await asyncio.sleep(0.1)
        rows = len(first.interactions)
        while (chunk := await call.read()) is not grpc.aio.EOF:
            rows += len(chunk.interactions)
        assert rows == 3000
        assert await call.code() == grpc.StatusCode.OK
        await stopping
    with pytest.raises(grpc.aio.AioRpcError):
        async with grpc.aio.insecure_channel(f"127.0.0.1:{application.grpc_port}") as channel:
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=1)
