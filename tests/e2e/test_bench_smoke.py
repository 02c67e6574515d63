"""Every benchmark of bench/ run as a smoke: tiny sizes and about a second of load each, so that a benchmark
cannot break without `make test` saying so. The figures mean nothing at these sizes; what is checked is
that each script runs to its end, exits 0, prints its figures, and stops every process it started."""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from processes import REPOSITORY, process_gone

TIMEOUT_S = 120
CLEAN_UP_S = 60  # after an interrupt, for the script's own clean-up (servers, embedded PostgreSQL)
LOAD = "--quarantined 1000 --licences 10 --batch 100 --in-flight 2 --seconds 0.2 --warmup 0.1 --rounds 1"
LOAD += " --samples 10"
# The Redis peer needs redis-server and the `bench` extra, which `make test` does not install.
WITH_REDIS = shutil.which("redis-server") is not None and importlib.util.find_spec("redis") is not None

# script: (its tiny options, what its output must show)
SMOKES: dict[str, tuple[str, str]] = {
    "check_batch": (LOAD, r"ratio stopgate / ceiling: [\d.]+x"),
    "change_feed": (
        "--changes 2000 --rounds 1 --rate 50 --seconds 1",
        r"catch-up: 2,000 changes per round, median of 1: [\d,]+ changes/s\nlive: 50 changes at 50/s",
    ),
    "check_messages": (
        "--texts 10 --in-flight 2 --seconds 1 --warmup 0.2 --rounds 1",
        r"median over 1 rounds: [\d,]+ messages/s",
    ),
    "classify": (
        "--repeat 2 --in-flight 2 --seconds 0.5 --warmup 0.1 --rounds 1",
        r"medians over 1 rounds: in process [\d,]+ texts/s .*; ClassifyText [\d,]+ calls/s",
    ),
    "failover": ("--seconds 1 --sends 20000", r"\nacked and lost: none\n"),
    "fairness": ("--requests 1", r"\| 1 CheckMessages requests of [\d,]+ [\d,]+-character texts \| \d+ \|"),
    "fuzz": ("--examples 5", r"INTERNAL or UNKNOWN: 0; passed"),
    "ingest": (
        "--events 400 --batch 50 --streams 2 --rounds 1 --workers 1 --rate 20 --seconds 1",
        r"IngestEvent at 20 events/s for 1 s: p50 [\d.]+ ms",
    ),
    "peers": (
        f"{LOAD} --workers 2{'' if WITH_REDIS else ' --without-redis'}",
        r"CheckBatch calls answered per worker: [\d,]+, [\d,]+\n",  # one figure per worker
    ),
    "reconcile": ("--sizes 1000 --rounds 1", r"\| 1,000 \| [\d.]+ s \|"),
    "reporting": ("--sends 1000 --calls 20", r"ExportInteractions: 1,000 rows at [\d,]+ rows/s"),
    "sizing": ("--sizes 1000 --sends 1000", r"1,000 sends recorded in [\d.]+s"),
    "soak": ("--seconds 2 --interval 0.5", r'"calls": \{\n\s+"\w+": \d+'),
}


def processes_naming(directory: Path) -> list[int]:
    """Live processes whose command line or environment names `directory`: those a script started there
    (its servers, clients, PostgreSQL clusters), as the smoke gives each script a TMPDIR of its own."""
    marker = str(directory).encode()
    found = []
    for process in Path("/proc").glob("[0-9]*"):
        try:
            named = any(marker in (process / part).read_bytes() for part in ("cmdline", "environ"))
        except OSError:
            continue  # ended, or not ours to read
        if named and not process_gone(int(process.name), within_s=0):
            found.append(int(process.name))
    return found


@pytest.mark.parametrize("script", sorted(SMOKES))
def test_benchmark_runs_as_a_smoke(script: str, reachable_tmp: Path) -> None:
    options, expected = SMOKES[script]
    workdir = reachable_tmp / f"bench-{script}"
    workdir.mkdir()
    workdir.chmod(0o755)  # the embedded clusters go below it, and the postgres user must reach them
    process = subprocess.Popen(
        [sys.executable, str(REPOSITORY / "bench" / f"{script}.py"), *options.split()],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "TMPDIR": str(workdir)},
    )
    try:
        output, _ = process.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGINT)  # KeyboardInterrupt: the script's clean-up stops what it started
        try:
            output, _ = process.communicate(timeout=CLEAN_UP_S)
        except subprocess.TimeoutExpired:
            process.kill()
            output, _ = process.communicate()
        pytest.fail(f"bench/{script}.py did not end within {TIMEOUT_S} s:\n{output}")
    finally:
        left = [pid for pid in processes_naming(workdir) if not process_gone(pid)]
        for pid in left:
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(workdir, ignore_errors=True)

    assert process.returncode == 0, f"bench/{script}.py exited with {process.returncode}:\n{output}"
    assert not left, f"bench/{script}.py left processes running: {left}"
    assert re.search(expected, output), f"bench/{script}.py printed no {expected!r}:\n{output}"
