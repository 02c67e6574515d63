"""Every worker of `stopgate serve --workers 2` serves, on its own metrics port, what the dashboard's "per
worker" panels and the build info need: the Prometheus client's process series and `stopgate_build_info`."""

from __future__ import annotations

import re
import signal
import urllib.request
from pathlib import Path

import stopgate
from processes import SpawnServer


def _metrics(metrics_addr: str) -> str:
    with urllib.request.urlopen(f"http://{metrics_addr}/metrics", timeout=5) as response:
        return str(response.read().decode())


def test_each_worker_exports_its_process_and_build_info(
    reachable_tmp: Path, spawn_server: SpawnServer
) -> None:
    supervisor = spawn_server("--workers", "2", "--data-dir", str(reachable_tmp / "worker-metrics"))
    workers = supervisor.wait_for("workers serving")["workers"]
    assert len(workers) == 2
    for worker in workers:
        exposition = _metrics(worker["metrics_addr"])
        for series in ("process_cpu_seconds_total", "process_resident_memory_bytes"):
            assert re.search(rf"^{series} [0-9.e+]+$", exposition, re.MULTILINE), (worker, series)
        (labels,) = re.findall(r"^stopgate_build_info\{(.*)\} 1\.0$", exposition, re.MULTILINE)
        assert f'version="{stopgate.__version__}"' in labels
    assert supervisor.stop(signal.SIGTERM) == 0
