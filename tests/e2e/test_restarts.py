"""Restarts as an operator does them, on `stopgate serve` processes: one server per port, the drain on
SIGTERM (NOT_SERVING first, then no new calls, then the grace), ingest streams told to reconnect, and
workers whose command lines carry no secret."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from processes import SpawnServer
from stopgate.interceptors import bearer_token
from stopgate.v1 import common_pb2, stop_ingest_pb2, stop_ingest_pb2_grpc

pb = stop_ingest_pb2
SERVING, NOT_SERVING = health_pb2.HealthCheckResponse.SERVING, health_pb2.HealthCheckResponse.NOT_SERVING
INGEST_EVENT = "/stopgate.v1.StopIngest/IngestEvent"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _health(address: str) -> int:
    """The server's health through a new connection (a new connection is what a balancer's probe makes)."""
    with grpc.insecure_channel(address) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        return int(reply.status)


def _checks_handled(metrics_addr: str) -> float:
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("grpc_server_handled_total{") and 'grpc_method="Check"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def _event(event_id: str, number: int) -> pb.InboundEvent:
    """A STOP from a number of its own: acked QUARANTINED."""
    return pb.InboundEvent(
        event_id=event_id,
        phone_number=f"+336123456{number:02d}",
        text="STOP",
        recipient="36180",
        source=common_pb2.EVENT_SOURCE_SMS_REPLY,
    )


async def _hold_ingest(db: asyncpg.Connection) -> None:
    """Make every ingest wait: a transaction of the test locks the table ingest writes first."""
    await db.execute("BEGIN")
    await db.execute("LOCK TABLE inbound_events IN ACCESS EXCLUSIVE MODE")


async def _waiting_for_the_lock(db: asyncpg.Connection, calls: int = 1) -> None:
    """Until `calls` statements of the server wait for the test's lock: the calls are in flight."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
    for _ in range(200):
        await db.execute("SELECT pg_stat_clear_snapshot()")  # else the transaction sees its first snapshot
        if await db.fetchval(query) >= calls:
            return
        await asyncio.sleep(0.05)
    pytest.fail("the call never reached the database")


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_second_server_on_a_served_port_fails_at_once_naming_the_first(
    database_url: str, spawn_server: SpawnServer, workers: str
) -> None:
    address = f"127.0.0.1:{_free_port()}"
    first = spawn_server("--database-url", database_url, "--grpc-addr", address, "--insecure-no-auth")
    serving = first.wait_for("serving")

    second = spawn_server(
        "--database-url", database_url, "--grpc-addr", address, "--insecure-no-auth", "--workers", workers
    )
    code, output = second.exit_and_output(timeout=30)
    assert code == 1, output
    refusals = [line for line in output.splitlines() if line.startswith("stopgate: ")]
    assert len(refusals) == 1, output
    assert (
        f"cannot serve {address}: its port is already served by stopgate pid {first.process.pid}"
        in (refusals[0])
    )
    assert not [e for e in second.log if e["msg"] in ("serving", "workers serving")]

    for _ in range(12):  # new connections each: with a second server beside it, some would go there
        assert _health(address) == SERVING
    assert _checks_handled(serving["metrics_addr"]) == 12
    assert first.process.poll() is None
    assert first.stop(signal.SIGTERM) == 0


def test_the_port_is_free_again_once_its_server_is_gone(database_url: str, spawn_server: SpawnServer) -> None:
    """The guard dies with its process, even on kill -9: nothing stale blocks the next start."""
    address = f"127.0.0.1:{_free_port()}"
    first = spawn_server("--database-url", database_url, "--grpc-addr", address, "--insecure-no-auth")
    first.wait_for("serving")
    first.kill()
    second = spawn_server("--database-url", database_url, "--grpc-addr", address, "--insecure-no-auth")
    second.wait_for("serving")
    assert _health(address) == SERVING
    assert second.stop(signal.SIGTERM) == 0


async def test_sigterm_drains_not_serving_first_then_no_new_calls_then_the_grace(
    database_url: str, api_token: str, db: asyncpg.Connection, spawn_server: SpawnServer
) -> None:
    server = spawn_server(
        "--database-url", database_url, "--shutdown-grace-s", "30", "--statement-timeout-ms", "60000",
        env={"STOPGATE_DRAIN_DELAY_S": "4"},
    )  # fmt: skip
    address = (await asyncio.to_thread(server.wait_for, "serving"))["grpc_addr"]
    await _hold_ingest(db)
    async with grpc.aio.insecure_channel(address, interceptors=bearer_token(api_token)) as channel:
        ingest = stop_ingest_pb2_grpc.StopIngestStub(channel)
        in_flight = ingest.IngestEvent(pb.IngestEventRequest(event=_event("in-flight", 1)), timeout=60)
        await _waiting_for_the_lock(db)

        signalled = time.time()
        server.process.send_signal(signal.SIGTERM)
        while await asyncio.to_thread(_health, address) != NOT_SERVING:
            assert time.time() - signalled < 4, "health still SERVING after SIGTERM"
            await asyncio.sleep(0.05)
        server.process.send_signal(signal.SIGTERM)  # repeated: changes nothing
        async with grpc.aio.insecure_channel(address, interceptors=bearer_token(api_token)) as fresh:
            classified = await stop_ingest_pb2_grpc.StopIngestStub(fresh).ClassifyText(
                pb.ClassifyTextRequest(text="STOP", country="FR"), timeout=5
            )
        assert classified.intent == common_pb2.INTENT_OPT_OUT
        called_back = time.time()

        closed = await asyncio.to_thread(server.wait_for, "no longer accepting calls")
        assert closed["in_flight"] == 1
        closed_at = datetime.fromisoformat(closed["ts"]).timestamp()
        assert called_back < closed_at  # the calls above were served during the delay
        assert closed_at - signalled > 4 - 0.01  # the whole delay (log times are in milliseconds)
        with pytest.raises(grpc.RpcError) as refused:
            await asyncio.to_thread(_health, address)
        assert refused.value.code() == grpc.StatusCode.UNAVAILABLE

        await db.execute("ROLLBACK")  # the call in flight goes on, within the grace
        reply = await in_flight
        assert reply.ack.outcome == pb.INGEST_OUTCOME_QUARANTINED
    code = await asyncio.to_thread(server.process.wait, 30)
    assert code == 0
    await asyncio.to_thread(server.wait_for, "stopped")
    assert not [e for e in server.log if e["msg"].startswith("shutdown grace ran out")]


async def test_open_health_watches_are_ended_and_do_not_hold_the_shutdown(
    database_url: str, spawn_server: SpawnServer
) -> None:
    """A health Watch never ends by itself (client-side health checking keeps one open): at shutdown it
    is told NOT_SERVING, then ended with UNAVAILABLE / SERVER_SHUTTING_DOWN, and the server stops without
    waiting for its grace period or reporting the watch as a cut call."""
    server = spawn_server("--database-url", database_url, "--insecure-no-auth", "--shutdown-grace-s", "60")
    address = (await asyncio.to_thread(server.wait_for, "serving"))["grpc_addr"]
    async with grpc.aio.insecure_channel(address) as channel:
        watch = health_pb2_grpc.HealthStub(channel).Watch(health_pb2.HealthCheckRequest(service=""))
        assert (await watch.read()).status == SERVING
        server.process.send_signal(signal.SIGTERM)
        seen = []

        async def read_to_the_end() -> None:
            while (reply := await watch.read()) is not grpc.aio.EOF:
                seen.append(reply.status)

        with pytest.raises(grpc.aio.AioRpcError) as ended:
            await read_to_the_end()
    assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
    info = error_details_pb2.ErrorInfo()
    status = rpc_status.from_call(ended.value)
    assert status is not None
    assert any(detail.Unpack(info) for detail in status.details)
    assert info.reason == "SERVER_SHUTTING_DOWN"
    assert set(seen) <= {NOT_SERVING}
    assert await asyncio.to_thread(server.process.wait, 30) == 0  # well within the 60 s grace
    assert not [e for e in server.log if e["msg"].startswith("shutdown grace ran out")]


@pytest.mark.parametrize("workers", ["1", "2"])
def test_a_second_sigint_skips_the_drain_delay(
    database_url: str, spawn_server: SpawnServer, workers: str
) -> None:
    """Ctrl-C twice: the first starts the drain, the second ends its delay (the supervisor passes it on)."""
    server = spawn_server(
        "--database-url", database_url, "--insecure-no-auth", "--drain-delay-s", "120", "--workers", workers
    )
    server.wait_for("serving")
    if workers == "2":
        server.wait_for("workers serving")
    server.process.send_signal(signal.SIGINT)
    server.wait_for("shutting down workers" if workers == "2" else "shutting down")
    server.process.send_signal(signal.SIGINT)
    for _ in range(int(workers)):
        server.wait_for("no longer accepting calls", timeout=30)
    assert server.process.wait(timeout=30) == 0


async def test_a_call_still_running_when_the_grace_runs_out_is_cut_and_logged(
    database_url: str, api_token: str, db: asyncpg.Connection, spawn_server: SpawnServer
) -> None:
    server = spawn_server(
        "--database-url", database_url, "--shutdown-grace-s", "0.5", "--statement-timeout-ms", "60000"
    )
    address = (await asyncio.to_thread(server.wait_for, "serving"))["grpc_addr"]
    await _hold_ingest(db)
    try:
        async with grpc.aio.insecure_channel(address, interceptors=bearer_token(api_token)) as channel:
            call = stop_ingest_pb2_grpc.StopIngestStub(channel).IngestEvent(
                pb.IngestEventRequest(event=_event("too-long", 1)), timeout=60
            )
            await _waiting_for_the_lock(db)
            server.process.send_signal(signal.SIGTERM)
            cut = await asyncio.to_thread(server.wait_for, "shutdown grace ran out: calls cut")
            with pytest.raises(grpc.aio.AioRpcError) as cancelled:
                await call
            assert cancelled.value.code() == grpc.StatusCode.UNAVAILABLE  # gRPC: "Cancelling all calls"
    finally:
        await db.execute("ROLLBACK")
    assert cut["level"] == "WARNING"
    assert cut["cut"] == 1
    (call_cut,) = cut["calls"]
    assert call_cut["method"] == INGEST_EVENT
    assert call_cut["ran_s"] >= 0.5
    assert await asyncio.to_thread(server.process.wait, 30) == 0


async def test_an_ingest_stream_acks_its_request_in_flight_then_is_told_to_reconnect(
    database_url: str, api_token: str, db: asyncpg.Connection, spawn_server: SpawnServer
) -> None:
    server = spawn_server(
        "--database-url", database_url, "--shutdown-grace-s", "30", "--statement-timeout-ms", "60000"
    )
    address = (await asyncio.to_thread(server.wait_for, "serving"))["grpc_addr"]
    async with grpc.aio.insecure_channel(address, interceptors=bearer_token(api_token)) as channel:
        ingest = stop_ingest_pb2_grpc.StopIngestStub(channel)
        busy: Any = ingest.StreamEvents()
        idle: Any = ingest.StreamEvents()
        for number, stream in enumerate((busy, idle)):
            await stream.write(pb.StreamEventsRequest(events=[_event(f"first-{number}", 2 + number)]))
            assert (await stream.read()).acks[0].outcome == pb.INGEST_OUTCOME_QUARANTINED

        await _hold_ingest(db)
        await busy.write(pb.StreamEventsRequest(events=[_event("in-flight", 1)]))
        await _waiting_for_the_lock(db)
        server.process.send_signal(signal.SIGTERM)
        await asyncio.to_thread(server.wait_for, "no longer accepting calls")
        await db.execute("ROLLBACK")

        ack = await busy.read()
        assert [a.event_id for a in ack.acks] == ["in-flight"]
        assert ack.acks[0].outcome == pb.INGEST_OUTCOME_QUARANTINED
        for stream in (busy, idle):
            with pytest.raises(grpc.aio.AioRpcError) as ended:
                await stream.read()
            assert ended.value.code() == grpc.StatusCode.UNAVAILABLE
            assert "shutting down" in str(ended.value.details())
            assert "resend what was not acked" in str(ended.value.details())
            status = rpc_status.from_call(ended.value)
            assert status is not None
            info = error_details_pb2.ErrorInfo()
            assert status.details[-1].Unpack(info)
            assert (info.reason, info.domain) == ("SERVER_SHUTTING_DOWN", "stopgate")
    assert await asyncio.to_thread(server.process.wait, 30) == 0
    stored = await db.fetchval("SELECT count(*) FROM inbound_events WHERE event_id = 'in-flight'")
    assert stored == 1


def test_workers_get_no_secret_on_their_command_lines(
    database_url: str, spawn_server: SpawnServer, reachable_tmp: Path
) -> None:
    password = "s3cret-Pa55word"
    # The test cluster trusts local connections: the password is carried along, never checked.
    with_password = database_url.replace("postgresql://postgres@", f"postgresql://postgres:{password}@")
    assert password in with_password
    supervisor = spawn_server(
        "--workers", "2", "--insecure-no-auth", env={"STOPGATE_DATABASE_URL": with_password}
    )
    serving = supervisor.wait_for("workers serving")
    workers = serving["workers"]
    assert len(workers) == 2
    for index, worker in enumerate(workers):
        command_line = Path(f"/proc/{worker['pid']}/cmdline").read_bytes().split(b"\0")
        assert not [argument for argument in command_line if password.encode() in argument]
        assert command_line[-4:-1] == [b"serve", b"--workers", b"1"]
        environment = Path(f"/proc/{worker['pid']}/environ").read_bytes().split(b"\0")
        assert f"STOPGATE_WORKER_INDEX={index}".encode() in environment
    assert _health(serving["grpc_addr"]) == SERVING
    assert not [e for e in supervisor.log if password in json.dumps(e)]
    assert supervisor.stop(signal.SIGTERM) == 0
