"""What the benchmark scripts share: a private PostgreSQL, a `stopgate serve` process, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from stopgate.client import MAX_MESSAGE_BYTES
from stopgate.interceptors import bearer_token

ROOT = Path(__file__).resolve().parent.parent
STOPGATE = str(Path(sys.executable).with_name("stopgate"))
sys.path.insert(0, str(ROOT / "server"))


@contextlib.contextmanager
def private_database() -> Iterator[tuple[str, Path]]:
    """A migrated database in a throwaway embedded cluster: (DSN, working directory). Removed afterwards.
    It holds a token with every role, exported as STOPGATE_TOKEN for this process and its children:
    benchmarks measure with authentication on, as in production."""
    from stopgate_server.store.embedded import EmbeddedPostgres

    workdir = Path(tempfile.mkdtemp(prefix="stopgate-bench-"))
    workdir.chmod(0o755)  # the postgres system user must reach it when running as root
    cluster = EmbeddedPostgres(workdir / "pg")
    try:
        dsn = cluster.start()
        run_checked([STOPGATE, "migrate", "--database-url", dsn])
        roles = [
            argument for role in ("sender", "ingest", "reporting", "admin") for argument in ("--role", role)
        ]
        created = run_checked([STOPGATE, "token", "create", "bench", *roles, "--database-url", dsn])
        os.environ["STOPGATE_TOKEN"] = created.strip()
        yield dsn, workdir
    finally:
        cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def run_checked(command: Sequence[str], timeout: float = 900) -> str:
    """Run a command to its end and return its standard output. When it fails, the benchmark stops (exit
    status 1) with what the command printed, not with a bare exit status."""
    finished = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if finished.returncode:
        shown = " ".join(command[:3]) + (" ..." if len(command) > 3 else "")
        raise SystemExit(
            f"{shown} failed (exit status {finished.returncode}):\n{finished.stderr or finished.stdout}"
        )
    return finished.stdout


def client_figures(command: Sequence[str], timeout: float = 900) -> dict[str, Any]:
    """Run a benchmark's client process, whose last output line is a JSON object of figures: that object."""
    return dict(json.loads(run_checked(command, timeout).strip().splitlines()[-1]))


@dataclass(frozen=True)
class Server:
    """A running `stopgate serve`: its gRPC address, the log line that said it was ready, its PID, the
    metrics address of each worker, and the seconds from its start until it served and until it was ready."""

    address: str
    ready: dict[str, object]
    pid: int
    metrics_addresses: list[str]
    serving_after_s: float
    ready_after_s: float


@contextlib.contextmanager
def stopgate_server(
    dsn: str,
    ready_message: str = "serving",
    workers: int = 1,
    on_serving: Callable[[str], object] | None = None,
) -> Iterator[Server]:
    """`stopgate serve` on a free loopback port, once each of its `workers` has logged `ready_message`;
    `on_serving(address)` is called as soon as one serves. Stopped with SIGTERM after."""
    command = [STOPGATE, "serve", "--database-url", dsn, "--workers", str(workers)]
    command += ["--grpc-addr", "127.0.0.1:0", "--metrics-addr", "127.0.0.1:0", "--drain-delay-s", "0"]
    started = time.monotonic()
    server = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert server.stdout is not None
        address, deadline, seen, metrics, serving_after_s = "", started + 300, 0, [], 0.0
        ready: dict[str, Any] = {}
        for line in server.stdout:
            entry = json.loads(line) if line.startswith("{") else {"msg": line}
            if entry["msg"] == "serving":
                address = str(entry["grpc_addr"])
                metrics.append(str(entry["metrics_addr"]))
                serving_after_s = time.monotonic() - started
                if on_serving is not None:
                    on_serving(address)
            if entry["msg"] == ready_message:  # kept: the "serving" line may come after it
                seen, ready = seen + 1, entry
            if seen == workers and len(metrics) == workers:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not log {ready_message!r} in time")
        else:
            raise RuntimeError("the server exited before it was ready")
        yield Server(address, ready, server.pid, metrics, serving_after_s, time.monotonic() - started)
    finally:
        terminate(server)


@contextlib.contextmanager
def profiled(pid: int, output: Path | None) -> Iterator[None]:
    """Samples process `pid` and its children with py-spy (the `bench` extra) while the block runs, into
    `output` as collapsed stacks (one line per stack with its sample count: grep-able, and the input of any
    flame-graph tool). Does nothing when `output` is None."""
    if output is None:
        yield
        return
    spy = str(Path(sys.executable).with_name("py-spy"))
    command = [spy, "record", "--pid", str(pid), "--subprocesses", "--rate", "250", "--nonblocking"]
    recorder = subprocess.Popen([*command, "--format", "raw", "--output", str(output)], text=True)
    time.sleep(1)  # py-spy attaches before the load starts
    try:
        yield
    finally:
        recorder.send_signal(signal.SIGINT)  # py-spy writes its output on SIGINT
        recorder.wait(timeout=60)
        print(f"profile: {output} ({summary(output)})", flush=True)


def summary(collapsed: Path, top: int = 6) -> str:
    """The stopgate functions with the most samples anywhere on their stack, as shares of all samples."""
    total, inclusive = 0, Counter[str]()
    for line in collapsed.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        total += int(count)
        inclusive.update(dict.fromkeys({f for f in stack.split(";") if "stopgate_server/" in f}, int(count)))
    ranked = [(frame, n) for frame, n in inclusive.most_common() if "cli.py" not in frame][:top]
    return "; ".join(f"{frame} {100 * n / max(total, 1):.0f}%" for frame, n in ranked)


def terminate(process: subprocess.Popen[str]) -> None:
    """Stop a server process we started: SIGTERM (it drains), then SIGKILL after 60 s."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=60)
    except subprocess.TimeoutExpired:
        process.kill()


def authorised_channel(address: str) -> grpc.aio.Channel:
    """A channel to a stopgate server whose calls carry the STOPGATE_TOKEN of `private_database`. It has a
    connection of its own: by default, channels of one process to one target share a single connection,
    so several channels would not spread the load over several server workers."""
    return grpc.aio.insecure_channel(
        address,
        options=[
            ("grpc.use_local_subchannel_pool", 1),
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),  # as the server allows
        ],
        interceptors=bearer_token(os.environ["STOPGATE_TOKEN"]),
    )


def rss_kib(pid: int) -> tuple[int, int]:
    """(resident memory now, peak resident memory so far) of a process, in KiB."""
    fields = dict(
        line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line
    )
    return int(fields["VmRSS"].split()[0]), int(fields["VmHWM"].split()[0])


def processes() -> dict[int, tuple[int, float]]:
    """{pid: (parent pid, CPU seconds used: user + system)} of every live process, counting its children
    that have ended (a postmaster's short-lived backends, for instance)."""
    table = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rpartition(")")[2].split()
        except OSError:
            continue  # the process has ended
        used = sum(map(int, fields[11:15])) / os.sysconf("SC_CLK_TCK")  # utime, stime, cutime, cstime
        table[int(stat.parent.name)] = (int(fields[1]), used)
    return table


def descendants(root_pid: int, table: dict[int, tuple[int, float]] | None = None) -> list[int]:
    """`root_pid` and every live process below it (a `stopgate serve` and its workers, a postmaster and
    its backends)."""
    table = processes() if table is None else table

    def below_root(pid: int) -> bool:
        while pid > 1:
            if pid == root_pid:
                return True
            pid = table[pid][0] if pid in table else 0
        return False

    return [pid for pid in table if below_root(pid)]


def cpu_seconds(root_pid: int) -> float:
    """CPU time used so far by a process and its descendants, live or ended."""
    table = processes()
    return sum(table[pid][1] for pid in descendants(root_pid, table))


def postmaster_pid(directory: Path) -> int:
    """The PID of the running cluster under `directory`: its data directory, or the working directory of
    `private_database`."""
    return int(next(directory.rglob("postmaster.pid")).read_text().splitlines()[0])


def percentile(sorted_values: Sequence[float], fraction: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * fraction))]


@dataclass(frozen=True)
class LoadFigures:
    """What a closed-loop load measured: items per second and per-call latency percentiles."""

    items_per_s: float
    p50_ms: float
    p99_ms: float
    calls: int


async def closed_loop(
    call: Callable[[int], Awaitable[int]], in_flight: int, warmup_s: float, seconds: float
) -> LoadFigures:
    """Keep `in_flight` calls going: `call(i)` makes the i-th call and returns how many items it carried.
    Runs `warmup_s` unmeasured, then `seconds` measured."""
    latencies: list[float] = []
    items = 0

    async def worker(offset: int, deadline: float, measured: bool) -> None:
        nonlocal items
        i = offset
        while time.perf_counter() < deadline:
            started = time.perf_counter()
            carried = await call(i)
            i += in_flight
            if measured:
                latencies.append(time.perf_counter() - started)
                items += carried

    warm_until = time.perf_counter() + warmup_s
    await asyncio.gather(*(worker(k, warm_until, False) for k in range(in_flight)))
    started = time.perf_counter()
    await asyncio.gather(*(worker(k, started + seconds, True) for k in range(in_flight)))
    elapsed = time.perf_counter() - started
    latencies.sort()
    return LoadFigures(
        items / elapsed, 1000 * percentile(latencies, 0.5), 1000 * percentile(latencies, 0.99), len(latencies)
    )
