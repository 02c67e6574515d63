"""`stopgate serve --workers 2`: two processes share the gRPC port, and all of it stops cleanly."""

from __future__ import annotations

import signal
import urllib.request
from pathlib import Path

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from processes import SpawnServer, process_gone


def _checks_handled(metrics_addr: str) -> float:
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=5) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("grpc_server_handled_total{") and 'grpc_method="Check"' in line:
                return float(line.rsplit(" ", 1)[1])
    return 0.0


def test_two_workers_share_the_port(reachable_tmp: Path, spawn_server: SpawnServer) -> None:
    data_dir = reachable_tmp / "workers"
    supervisor = spawn_server("--workers", "2", "--data-dir", str(data_dir))
    serving = supervisor.wait_for("workers serving")
    workers = serving["workers"]
    assert len(workers) == 2
    assert len({w["metrics_addr"] for w in workers}) == 2
    for _ in range(40):  # new connections: the kernel spreads them over the two processes
        with grpc.insecure_channel(serving["grpc_addr"]) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
            assert reply.status == health_pb2.HealthCheckResponse.SERVING
    handled = [_checks_handled(w["metrics_addr"]) for w in workers]
    assert all(count > 0 for count in handled), handled
    assert sum(handled) == 40
    postmaster = int((data_dir / "pg" / "data" / "postmaster.pid").read_text().split("\n", 1)[0])

    assert supervisor.stop(signal.SIGTERM) == 0
    assert all(process_gone(w["pid"]) for w in workers)
    assert process_gone(postmaster)
