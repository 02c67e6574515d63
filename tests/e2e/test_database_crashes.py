"""Invariant 8 end to end: `stopgate serve` on its embedded PostgreSQL, the cluster crashed (immediate
shutdown) and started again on the same data directory, five times, under checks. Each time the block-list
index is current again within 5 s of PostgreSQL being reachable, no check ever allows a quarantined number,
and SIGTERM afterwards still drains, stops the database and exits 0."""

from __future__ import annotations

import asyncio
import itertools
import os
import signal
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import grpc
from processes import SpawnServer, process_gone
from prometheus_client.parser import text_string_to_metric_families
from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc
from stopgate_server.store.embedded import EmbeddedPostgres

qc = quarantine_check_pb2
CYCLES = 5
CURRENT_WITHIN_S = 5.0


def sample(metrics_addr: str, family_name: str) -> float:
    """The value of the first sample of a metric family of the server's /metrics."""
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=5) as response:
        text = response.read().decode()
    for family in text_string_to_metric_families(text):
        if family.name == family_name:
            return float(family.samples[0].value)
    raise AssertionError(f"no {family_name}")


def index_current(metrics_addr: str) -> bool:
    return sample(metrics_addr, "stopgate_blocklist_index_current") == 1


async def wait_for_index(metrics_addr: str, current: bool, within_s: float) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    while await asyncio.to_thread(index_current, metrics_addr) != current:
        assert loop.time() - started < within_s, (
            f"the index was not {'current' if current else 'stale'} in time"
        )
        await asyncio.sleep(0.05)


async def quarantine(stub: Any, phone: str) -> None:
    """QuarantineNumbers, retried while the server's pool reconnects after a restart."""
    request = qc.QuarantineNumbersRequest(
        licence_id="acme", phone_numbers=[phone], actor="ops", reason="test"
    )
    for _ in range(100):
        try:
            await stub.QuarantineNumbers(request, timeout=5)
            return
        except grpc.aio.AioRpcError as error:
            if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                raise
            await asyncio.sleep(0.1)
    raise AssertionError("QuarantineNumbers kept failing after the restart")


class Load:
    """Until stopped: CheckBatch of every quarantined number, four calls in flight, and manual quarantines
    of new numbers one after the other (each waits for the server's index), with short deadlines; a number
    is checked once its quarantine was acked. What the checks answered."""

    def __init__(self, stub: Any, quarantined: list[str]) -> None:
        self.stub, self.quarantined = stub, quarantined
        self.answered = 0
        self.allowed: set[str] = set()
        self.stopping = asyncio.Event()

    async def run(self) -> None:
        await asyncio.gather(self._write(), *(self._check() for _ in range(4)))

    async def _write(self) -> None:
        for i in itertools.count():
            if self.stopping.is_set():
                return
            phone = f"+3362{i:07d}"
            request = qc.QuarantineNumbersRequest(
                licence_id="acme", phone_numbers=[phone], actor="ops", reason="load"
            )
            try:
                await self.stub.QuarantineNumbers(request, timeout=0.5)
                self.quarantined.append(phone)
            except grpc.aio.AioRpcError as error:
                if error.code() not in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED):
                    raise
                await asyncio.sleep(0.01)  # committed or not: not checked

    async def _check(self) -> None:
        while not self.stopping.is_set():
            phones = list(self.quarantined)
            request = qc.CheckBatchRequest(
                licence_id="acme",
                sender=common_pb2.Sender(address="ACME"),
                category=common_pb2.MESSAGE_CATEGORY_MARKETING,
                phone_numbers=phones,
            )
            try:
                response = await self.stub.CheckBatch(request, timeout=5)
            except grpc.aio.AioRpcError:
                await asyncio.sleep(0.01)  # fail closed while PostgreSQL is away
                continue
            self.answered += 1
            self.allowed.update(
                p for p, r in zip(phones, response.results, strict=True) if r.verdict != qc.VERDICT_BLOCK
            )


def postmaster_pid(cluster: EmbeddedPostgres) -> int:
    return int((cluster.data_dir / "postmaster.pid").read_text().split("\n", 1)[0])


async def test_postgresql_crash_and_restart_cycles(reachable_tmp: Path, spawn_server: SpawnServer) -> None:
    data_dir = reachable_tmp / f"crash-{uuid.uuid4().hex[:6]}"
    server = spawn_server("--data-dir", str(data_dir), "--insecure-no-auth")
    serving = await asyncio.to_thread(server.wait_for, "serving")
    cluster = EmbeddedPostgres(data_dir / "pg")  # the server's cluster, started again by the test
    loop = asyncio.get_running_loop()
    try:
        async with grpc.aio.insecure_channel(serving["grpc_addr"]) as channel:
            stub: Any = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
            quarantined = ["+33610000000"]
            await quarantine(stub, quarantined[0])
            await wait_for_index(serving["metrics_addr"], current=True, within_s=CURRENT_WITHIN_S)
            load = Load(stub, quarantined)
            running = asyncio.create_task(load.run())
            for cycle in range(CYCLES):
                postmaster = postmaster_pid(cluster)
                os.kill(postmaster, signal.SIGQUIT)  # immediate shutdown: no checkpoint, recovery at start
                assert await asyncio.to_thread(process_gone, postmaster)
                await wait_for_index(serving["metrics_addr"], current=False, within_s=CURRENT_WITHIN_S)
                await asyncio.sleep(0.1 * cycle)  # outages of different lengths
                started_at = loop.time()  # PostgreSQL is reachable a little later: the bound is stricter
                await asyncio.to_thread(cluster.start)
                await wait_for_index(serving["metrics_addr"], current=True, within_s=CURRENT_WITHIN_S)
                assert loop.time() - started_at < CURRENT_WITHIN_S
                await quarantine(stub, f"+3363000{cycle:04d}")
                quarantined.append(f"+3363000{cycle:04d}")
                await asyncio.sleep(0.2)
            load.stopping.set()
            await running
            restarts = await asyncio.to_thread(
                sample, serving["metrics_addr"], "stopgate_blocklist_index_restarts"
            )
        assert load.allowed == set()
        assert load.answered > 0
        assert len(load.quarantined) > CYCLES + 1
        assert restarts >= CYCLES
        postmaster = postmaster_pid(cluster)
        assert await asyncio.to_thread(server.stop, signal.SIGTERM) == 0
        await asyncio.to_thread(server.wait_for, "stopped")
        assert any(entry["msg"] == "embedded PostgreSQL stopped" for entry in server.log)
        assert await asyncio.to_thread(process_gone, postmaster)
        failures = [
            e for e in server.log if e.get("logger") == "stopgate_server.store.blocklist" and "exc" in e
        ]
        assert all(e["level"] == "ERROR" for e in failures)
        assert len(failures) >= CYCLES
    finally:
        server.kill()
        if cluster.is_running():  # the server died without stopping it
            cluster.started_here = True
            await asyncio.to_thread(cluster.stop)
