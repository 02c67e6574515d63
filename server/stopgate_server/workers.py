"""`stopgate serve --workers N`: N server processes on one gRPC port, one process per core.

The kernel spreads connections over the processes (SO_REUSEPORT, on by default in gRPC on Linux). This
supervisor claims the gRPC port (address_guard.py: no other server may serve it beside its workers), starts
the embedded database when there is no database URL, applies the migrations once, starts the workers (each
an ordinary `stopgate serve` with the database URL, the shared gRPC address and a metrics port of its own:
METRICS_ADDR's port + worker number, or a free one when that port is 0), relays their log lines, and on
SIGTERM/SIGINT stops them all (each drains) and then the database. If a worker dies, the others are
stopped too and the command fails: a supervisor above (systemd, Kubernetes) restarts the whole set.

Workers get their settings as STOPGATE_* environment variables, never as flags: a flag is on the command
line, which any user of the host can read (`ps`), and the database URL may carry a password. A process's
environment is readable by its own user only.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import signal
import socket
import sys
from typing import Any

from stopgate_server import config
from stopgate_server.address_guard import AddressGuard
from stopgate_server.auth import offer_development_token
from stopgate_server.config import Settings, parse_host_port
from stopgate_server.obs import tracing
from stopgate_server.shutdown import StopSignals
from stopgate_server.store.database import open_pool, prepare_schema
from stopgate_server.store.embedded import EmbeddedPostgres

log = logging.getLogger(__name__)
WORKER_COMMAND = (sys.executable, "-m", "stopgate_server.cli", "serve", "--workers", "1")
STOP_MARGIN_S = 10.0  # beyond a worker's drain delay and grace: closing its pool and index, exiting


class WorkerFailed(RuntimeError):
    """A worker exited without being asked to."""


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as probe:
        probe.bind((host, 0))
        return int(probe.getsockname()[1])


def worker_environment(
    settings: Settings, dsn: str, grpc_addr: str, metrics_addr: str, index: int
) -> dict[str, str]:
    """The environment of worker `index`: ours, with every setting as its STOPGATE_* variable (an empty
    one for a setting that is not set, so that ours cannot leak in)."""
    per_worker = {
        "database_url": dsn,
        "grpc_addr": grpc_addr,
        "metrics_addr": metrics_addr,
        "workers": 1,
        "worker_index": index,
    }
    environment = dict(os.environ)
    for option in config.SETTINGS:
        value = per_worker.get(option.field, getattr(settings, option.field))
        environment[option.env] = "" if value is None else str(value)
    return environment


async def _relay(worker: int, stream: asyncio.StreamReader, ready: asyncio.Future[dict[str, Any]]) -> None:
    """Copy a worker's log lines to our standard output; resolve `ready` with its "serving" line."""
    while line := await stream.readline():
        sys.stdout.write(line.decode(errors="replace"))
        sys.stdout.flush()
        if not ready.done() and line.startswith(b"{"):
            entry = json.loads(line)
            if entry.get("msg") == "serving":
                ready.set_result({"worker": worker, **entry})


async def serve_workers(settings: Settings) -> None:
    """Run settings.workers server processes until SIGTERM/SIGINT or the death of one of them."""
    tracing.check_environment()  # a bad OTEL_* value stops the start here, not in every worker
    loop = asyncio.get_running_loop()
    signals = StopSignals()
    host, port = parse_host_port(settings.grpc_addr)
    port = port or _free_port(host)
    guard = await AddressGuard.claim(dataclasses.replace(settings, grpc_addr=f"{host}:{port}"))
    # Each worker may open its whole pool, plus its block-list listener and a spare.
    connections = max(100, settings.workers * (settings.db_pool_size + 2) + 10)
    embedded = (
        EmbeddedPostgres(settings.data_dir / "pg", max_connections=connections)
        if settings.database_url is None
        else None
    )
    workers: list[asyncio.subprocess.Process] = []
    relays: list[asyncio.Task[None]] = []
    hurry = asyncio.create_task(_forward_hurry(signals, workers))
    try:
        dsn = await asyncio.to_thread(embedded.start) if embedded else settings.database_url
        assert dsn is not None
        pool = await open_pool(dsn, settings)
        try:
            await prepare_schema(pool)  # once, before the workers (they find the schema current)
            if embedded is not None and not settings.insecure_no_auth:
                await offer_development_token(pool, settings.data_dir)
        finally:
            await pool.close()
        metrics_host, metrics_port = parse_host_port(settings.metrics_addr)
        ready: list[asyncio.Future[dict[str, Any]]] = []
        for number in range(settings.workers):
            metrics_addr = f"{metrics_host}:{metrics_port + number if metrics_port else 0}"
            process = await asyncio.create_subprocess_exec(
                *WORKER_COMMAND,
                env=worker_environment(settings, dsn, f"{host}:{port}", metrics_addr, number),
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            workers.append(process)
            ready.append(loop.create_future())
            assert process.stdout is not None
            relays.append(asyncio.create_task(_relay(number, process.stdout, ready[-1])))
        exits: list[asyncio.Future[Any]] = [asyncio.ensure_future(process.wait()) for process in workers]
        serving: asyncio.Future[Any] = asyncio.gather(*ready)
        done, _ = await asyncio.wait([serving, *exits], return_when=asyncio.FIRST_COMPLETED)
        if serving not in done:
            raise WorkerFailed("a worker exited before serving")
        addresses = [
            {"pid": p.pid, "metrics_addr": r["metrics_addr"]}
            for p, r in zip(workers, serving.result(), strict=True)
        ]
        log.info(
            "workers serving",
            extra={
                "grpc_addr": f"{host}:{port}",
                "workers": addresses,
                "embedded_database": embedded is not None,
            },
        )
        stopping: asyncio.Future[Any] = asyncio.ensure_future(signals.requested.wait())
        done, _ = await asyncio.wait([stopping, *exits], return_when=asyncio.FIRST_COMPLETED)
        if stopping not in done:
            raise WorkerFailed("a worker exited unexpectedly; stopping the others")
        log.info(
            "shutting down workers",
            extra={"drain_delay_s": settings.drain_delay_s, "grace_s": settings.shutdown_grace_s},
        )
    finally:
        await _stop_all(workers, settings.drain_delay_s + settings.shutdown_grace_s + STOP_MARGIN_S)
        hurry.cancel()
        for relay in relays:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(relay, 5)
        if embedded is not None:
            await asyncio.to_thread(embedded.stop)
        if guard is not None:
            await guard.release()
        log.info("stopped")


async def _forward_hurry(signals: StopSignals, workers: list[asyncio.subprocess.Process]) -> None:
    """A SIGINT after the first stop signal (Ctrl-C twice) reaches the workers: they skip the drain delay."""
    await signals.hurry.wait()
    for process in workers:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)


async def _stop_all(workers: list[asyncio.subprocess.Process], within_s: float) -> None:
    """SIGTERM every live worker (they drain), then SIGKILL what is left after `within_s`."""
    for process in workers:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
    for process in workers:
        try:
            await asyncio.wait_for(process.wait(), within_s)
        except TimeoutError:
            process.kill()
            await process.wait()
