"""stopgate's CheckBatch next to what a team would build instead, on the same data, in one run.

The data and load of bench/check_batch.py (1,000,000 quarantined numbers over 100 licences, batches of
1,000 numbers with 1% quarantined, 16 calls in flight from a client process of its own), against:

  (a) stopgate: `stopgate serve --workers W` (default: one per core), the client spread over 4 connections
      per worker (the kernel hands each connection to one worker);
  (b) direct:   asyncpg `phone = ANY($2)` with a pool of 4 on the same PostgreSQL;
  (c) redis:    SMISMEMBER on one set per licence, in a redis-server this script starts and stops
                (Debian package `redis-server`; no persistence, loopback only);
  (d) ceiling:  a bare grpc.aio server answering from an in-memory set, with no validation or database
                (the one of bench/check_batch.py).

It prints the medians and the ratios a/b, a/c, a/d, then measures invariant 3 of DESIGN.md §3 with all
workers running: from the ack of a STOP (IngestEvent) until CheckBatch blocks the number on every
connection, so on every worker (each worker's metrics show it served checks).

    .venv/bin/python bench/peers.py
    .venv/bin/python bench/peers.py --quarantined 100000 --seconds 3 --rounds 1    # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import check_batch
from harness import authorised_channel, closed_loop, percentile, private_database, stopgate_server

HERE = Path(__file__).resolve()


# ---- (c) Redis ------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_redis(workdir: Path) -> tuple[subprocess.Popen[bytes], int]:
    executable = shutil.which("redis-server")
    if executable is None:
        raise SystemExit("redis-server not found: apt-get install redis-server (or run bench/check_batch.py)")
    port = free_port()
    command = [executable, "--bind", "127.0.0.1", "--port", str(port), "--save", "", "--appendonly", "no"]
    command += ["--dir", str(workdir)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return process, port
        except OSError:
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise RuntimeError("redis-server did not start") from None
            time.sleep(0.05)


async def load_redis(port: int, args: argparse.Namespace) -> None:
    import redis.asyncio as redis

    client = redis.Redis(host="127.0.0.1", port=port)
    per_licence = args.quarantined // args.licences
    started = time.perf_counter()
    for lic in range(args.licences):
        numbers = [check_batch.quarantined_number(lic * per_licence + i) for i in range(per_licence)]
        async with client.pipeline(transaction=False) as pipe:
            for chunk in range(0, len(numbers), 10_000):
                pipe.sadd(f"quarantine:{check_batch.licence(lic)}", *numbers[chunk : chunk + 10_000])
            await pipe.execute()
    print(f"redis: loaded {args.quarantined:,} numbers in {time.perf_counter() - started:.1f}s", flush=True)
    await client.aclose()


async def drive_redis(args: argparse.Namespace) -> dict[str, Any]:
    import redis.asyncio as redis

    client = redis.Redis(host="127.0.0.1", port=int(args.target), max_connections=args.in_flight)
    batches = check_batch.make_batches(args, 256, seed=os.getpid())

    async def one(i: int) -> int:
        lic, phones = batches[i % len(batches)]
        check_batch.check_blocked(lic, phones, sum(await client.smismember(f"quarantine:{lic}", phones)))
        return len(phones)

    figures = await closed_loop(one, args.in_flight, args.warmup, args.seconds)
    await client.aclose()
    return {"numbers_per_s": figures.items_per_s, "p50_ms": figures.p50_ms, "p99_ms": figures.p99_ms}


# ---- invariant 3 with every worker ---------------------------------------------------------------


async def propagation_to_every_worker(address: str, connections: int, samples: int) -> list[float]:
    """Seconds from the ack of a STOP until CheckBatch blocks the number on each of `connections`
    connections (the slowest one counts)."""
    from stopgate.v1 import common_pb2, quarantine_check_pb2_grpc, stop_ingest_pb2, stop_ingest_pb2_grpc
    from stopgate.v1 import quarantine_check_pb2 as pb

    channels = [authorised_channel(address) for _ in range(connections)]
    checks = [quarantine_check_pb2_grpc.QuarantineCheckStub(channel) for channel in channels]
    ingest = stop_ingest_pb2_grpc.StopIngestStub(channels[0])
    delays = []
    for sample in range(samples):
        number = f"+339{sample:08d}"
        request = pb.CheckBatchRequest(
            licence_id=check_batch.licence(0),
            sender=common_pb2.Sender(address="ACME"),
            category=common_pb2.MESSAGE_CATEGORY_MARKETING,
            phone_numbers=[number],
        )
        event = stop_ingest_pb2.InboundEvent(
            event_id=f"peers-{os.getpid()}-{sample}",
            source=common_pb2.EVENT_SOURCE_SMS_REPLY,
            phone_number=number,
            recipient="ACME",
            text="STOP",
            licence_id=check_batch.licence(0),
        )
        await ingest.IngestEvent(stop_ingest_pb2.IngestEventRequest(event=event), timeout=5)
        acked = time.perf_counter()

        async def blocked_on(stub: Any, acked: float = acked, request: Any = request) -> None:
            while (await stub.CheckBatch(request, timeout=5)).results[0].verdict != pb.VERDICT_BLOCK:
                if time.perf_counter() - acked > 5:
                    raise RuntimeError("an acked STOP was not blocked within 5 s")

        await asyncio.gather(*(blocked_on(stub) for stub in checks))
        delays.append(time.perf_counter() - acked)
        await asyncio.sleep(0.02)
    for channel in channels:
        await channel.close()
    return sorted(delays)


def checks_served(metrics_address: str) -> float:
    """CheckBatch calls a worker has answered, from its /metrics."""
    with urllib.request.urlopen(f"http://{metrics_address}/metrics", timeout=5) as response:
        text = response.read().decode()
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("grpc_server_handled_total{") and 'grpc_method="CheckBatch"' in line
    )


# ---- orchestration -------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    check_batch.add_load_arguments(parser)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="stopgate server processes")
    parser.add_argument("--samples", type=int, default=200, help="STOPs timed for invariant 3")
    parser.add_argument(
        "--without-redis",
        action="store_true",
        help="leave out (c), for a machine without redis-server or the `bench` extra (as `make test` runs)",
    )
    parser.add_argument("--client", choices=["redis"], help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--channels", type=int, default=0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.channels = args.channels or 4 * args.workers

    if args.client:
        print(json.dumps(asyncio.run(drive_redis(args))))
        return 0

    redis: subprocess.Popen[bytes] | None = None
    ceiling: subprocess.Popen[str] | None = None
    with private_database() as (dsn, workdir):
        asyncio.run(check_batch.load(dsn, args))
        try:
            batch_script = Path(check_batch.__file__)
            scenarios = {"direct": ("direct", dsn, batch_script)}
            if not args.without_redis:
                redis, redis_port = start_redis(workdir)
                asyncio.run(load_redis(redis_port, args))
                scenarios["redis"] = ("redis", str(redis_port), HERE)
            ceiling, ceiling_address = check_batch.start_ceiling(args)
            scenarios["ceiling"] = ("grpc", ceiling_address, batch_script)
            with stopgate_server(dsn, "block list index loaded", args.workers) as server:
                median = check_batch.compare(
                    args, {"stopgate": ("grpc", server.address, batch_script), **scenarios}
                )
                delays = asyncio.run(propagation_to_every_worker(server.address, args.channels, args.samples))
                served = [checks_served(address) for address in server.metrics_addresses]
        finally:
            for process in (ceiling, redis):
                if process is not None:
                    process.terminate()
                    process.wait(timeout=30)

    print(f"(stopgate: {args.workers} workers, {args.channels} connections)")
    rate = {name: figures["numbers_per_s"] for name, figures in median.items()}
    for peer, goal in (("direct", 1.5), ("redis", 1.0), ("ceiling", 0.5)):
        if peer not in rate:
            continue
        ratio = rate["stopgate"] / rate[peer]
        print(f"stopgate / {peer}: {ratio:.2f}x (goal >= {goal}x: {'met' if ratio >= goal else 'not met'})")
    print(
        f"\ninvariant 3, STOP acked -> blocked on all {args.channels} connections ({len(delays)} samples):"
        f" p50 {1000 * percentile(delays, 0.5):.1f} ms, p99 {1000 * percentile(delays, 0.99):.1f} ms,"
        f" max {1000 * delays[-1]:.1f} ms (goal p99 < 100 ms)"
    )
    print(f"CheckBatch calls answered per worker: {', '.join(f'{n:,.0f}' for n in served)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
