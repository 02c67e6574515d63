"""CheckBatch throughput and latency against what a sender team would otherwise write.

Loads N quarantined numbers over L licences into a private PostgreSQL, starts `stopgate serve` as its own
process, then drives it from another process with batches of B numbers (1% of them quarantined), K calls in
flight, and measures numbers/s and per-batch p50/p99. In the same run, the baseline: a direct asyncpg client
running `phone = ANY($2)` on the same database with a pool of 4, K queries in flight, from its own process.
For scale, a ceiling: a bare grpc.aio server in its own process that answers each number ALLOW or BLOCK
from an in-memory set, with no validation, no authentication and no database. For recording, the bound
PostgreSQL sets: `record alone` runs stopgate's own statement (`record_sends`) for the allowed numbers of
each batch straight from asyncpg (pool of 4, K in flight), without the server; no server records sends
faster with this data model on this machine. `stopgate+record+id` records with a new request id per call,
as the Python client does (the id and the answer are stored with the sends). Scenarios alternate for R
rounds; medians are reported. Everything runs on loopback and stops by itself.

    .venv/bin/python bench/check_batch.py                  # the issue's sizes: 1M numbers, 100 licences
    .venv/bin/python bench/check_batch.py --quarantined 100000 --seconds 3 --rounds 1   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
from harness import (
    authorised_channel,
    client_figures,
    closed_loop,
    percentile,
    private_database,
    profiled,
    stopgate_server,
)

HERE = Path(__file__).resolve()
DIRECT_QUERY = "SELECT phone FROM quarantine WHERE licence_id = $1 AND phone = ANY($2::text[])"


def licence(i: int) -> str:
    return f"licence-{i:03d}"


QUARANTINED_PREFIX = "+336"


def quarantined_number(index: int) -> str:
    return f"{QUARANTINED_PREFIX}{index:08d}"  # +33 6xx xx xx xx: distinct, possible French mobiles


def clean_number(rng: random.Random) -> str:
    return f"+337{rng.randrange(10**8):08d}"  # +33 7..., never quarantined here


def make_batches(args: argparse.Namespace, count: int, seed: int) -> list[tuple[str, list[str]]]:
    """`count` batches (licence, numbers): 1% drawn from that licence's quarantined numbers."""
    rng = random.Random(seed)
    per_licence = args.quarantined // args.licences
    hits = max(1, args.batch // 100)
    batches = []
    for _ in range(count):
        lic = rng.randrange(args.licences)
        numbers = [quarantined_number(lic * per_licence + rng.randrange(per_licence)) for _ in range(hits)]
        numbers += [clean_number(rng) for _ in range(args.batch - hits)]
        rng.shuffle(numbers)
        batches.append((licence(lic), numbers))
    return batches


# ---- client side (runs in its own process) -------------------------------------------------------


def check_blocked(lic: str, phones: list[str], blocked: int, distinct: bool = False) -> None:
    """Stop the run when a client was told of another number of quarantined numbers than the batch holds
    (`distinct`: a number drawn twice counts once): figures of wrong answers are no figures."""
    quarantined = [phone for phone in phones if phone.startswith(QUARANTINED_PREFIX)]
    expected = len(set(quarantined)) if distinct else len(quarantined)
    if blocked != expected:
        raise RuntimeError(f"{blocked} numbers of a batch of {lic} found quarantined instead of {expected}")


async def drive(args: argparse.Namespace) -> dict[str, Any]:
    batches = make_batches(args, 256, seed=os.getpid())
    if args.mode == "direct":
        pool = await asyncpg.create_pool(args.dsn, min_size=4, max_size=4)

        async def call(i: int, lic: str, phones: list[str]) -> None:
            check_blocked(lic, phones, len(await pool.fetch(DIRECT_QUERY, lic, phones)), distinct=True)

    elif args.mode == "record-direct":
        from stopgate_server.store.queries import QUERIES
        from stopgate_server.store.sends import NO_REQUEST_ID

        pool = await asyncpg.create_pool(args.dsn, min_size=4, max_size=4)
        campaign = f"bench-{os.getpid()}"
        allowed = {
            id(phones): [p for p in phones if not p.startswith(QUARANTINED_PREFIX)] for _, phones in batches
        }

        async def call(i: int, lic: str, phones: list[str]) -> None:
            await pool.fetchval(
                *QUERIES["record_sends"].bind(
                    licence_id=lic,
                    campaign_id=campaign,
                    sender="ACME",
                    reply_shortcode="",
                    sent_at=datetime.now(UTC),
                    phones=allowed[id(phones)],
                    **NO_REQUEST_ID,
                )
            )

    else:
        from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc

        # One connection per channel; with several server workers the kernel spreads connections over them.
        stubs = [
            quarantine_check_pb2_grpc.QuarantineCheckStub(authorised_channel(args.address))
            for _ in range(args.channels)
        ]
        campaign = f"bench-{os.getpid()}" if args.mode in ("record", "record-id") else ""
        requests = {
            id(phones): quarantine_check_pb2.CheckBatchRequest(
                licence_id=lic,
                sender=common_pb2.Sender(address="ACME"),
                category=common_pb2.MESSAGE_CATEGORY_MARKETING,
                phone_numbers=phones,
                campaign_id=campaign,
            )
            for lic, phones in batches
        }

        async def call(i: int, lic: str, phones: list[str]) -> None:
            request = requests[id(phones)]
            if args.mode == "record-id":  # as the Python client sends them: a new request id per call
                request = quarantine_check_pb2.CheckBatchRequest(request_id=str(uuid.uuid4()))
                request.MergeFrom(requests[id(phones)])
            response = await stubs[i % len(stubs)].CheckBatch(request, timeout=10)
            check_blocked(lic, phones, response.blocked_count)

    async def one(i: int) -> int:
        lic, phones = batches[i % len(batches)]
        await call(i, lic, phones)
        return len(phones)

    figures = await closed_loop(one, args.in_flight, args.warmup, args.seconds)
    return {"numbers_per_s": figures.items_per_s, "p50_ms": figures.p50_ms, "p99_ms": figures.p99_ms}


async def propagation(dsn: str, address: str, samples: int) -> list[float]:
    """Seconds from a quarantine committed by another process (a direct INSERT) to CheckBatch blocking it."""
    from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc

    delays = []
    connection = await asyncpg.connect(dsn)
    async with authorised_channel(address) as channel:
        stub = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
        for sample in range(samples):
            number = f"+339{sample:08d}"
            request = quarantine_check_pb2.CheckBatchRequest(
                licence_id=licence(0),
                sender=common_pb2.Sender(address="ACME"),
                category=common_pb2.MESSAGE_CATEGORY_MARKETING,
                phone_numbers=[number],
            )
            await connection.execute(
                "INSERT INTO quarantine (phone, licence_id, since, source) VALUES ($1, $2, now(), 'IMPORT')",
                number,
                licence(0),
            )
            committed = time.perf_counter()
            while (await stub.CheckBatch(request, timeout=5)).results[
                0
            ].verdict != quarantine_check_pb2.VERDICT_BLOCK:
                if time.perf_counter() - committed > 5:
                    raise RuntimeError("a committed quarantine was not seen within 5 s")
            delays.append(time.perf_counter() - committed)
            await asyncio.sleep(0.02)
    await connection.close()
    return sorted(delays)


async def serve_ceiling(args: argparse.Namespace) -> None:
    """The ceiling: a bare grpc.aio CheckBatch answering ALLOW or BLOCK per number from an in-memory set of
    every licence's quarantined numbers; no validation, no database, no authentication."""
    import grpc
    from stopgate.v1 import quarantine_check_pb2 as pb
    from stopgate.v1 import quarantine_check_pb2_grpc

    per_licence = args.quarantined // args.licences
    quarantined = {
        licence(lic): {quarantined_number(lic * per_licence + i) for i in range(per_licence)}
        for lic in range(args.licences)
    }

    class Ceiling(quarantine_check_pb2_grpc.QuarantineCheckServicer):
        async def CheckBatch(self, request: Any, context: Any) -> Any:
            blocked = quarantined.get(request.licence_id, set())
            response = pb.CheckBatchResponse()
            add = response.results.add
            blocked_count = 0
            for number in request.phone_numbers:
                if number in blocked:
                    blocked_count += 1
                    add(phone_number=number, e164=number, verdict=pb.VERDICT_BLOCK)
                else:
                    add(phone_number=number, e164=number, verdict=pb.VERDICT_ALLOW)
            response.blocked_count = blocked_count
            return response

    server = grpc.aio.server()
    quarantine_check_pb2_grpc.add_QuarantineCheckServicer_to_server(Ceiling(), server)  # type: ignore[abstract]
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(port, flush=True)
    await server.wait_for_termination()


# ---- orchestration -------------------------------------------------------------------------------


async def load(dsn: str, args: argparse.Namespace) -> None:
    connection = await asyncpg.connect(dsn)
    try:
        per_licence = args.quarantined // args.licences
        await connection.execute("TRUNCATE quarantine, sends, campaign_counters, campaign_recipients")
        since = datetime.now(UTC)
        rows = (
            (quarantined_number(lic * per_licence + i), licence(lic), since, "SMS_REPLY")
            for lic in range(args.licences)
            for i in range(per_licence)
        )
        started = time.perf_counter()
        await connection.execute("ALTER TABLE quarantine DISABLE TRIGGER quarantine_insert_notify")
        await connection.copy_records_to_table(
            "quarantine",
            records=rows,
            columns=["phone", "licence_id", "since", "source"],
        )
        await connection.execute("ALTER TABLE quarantine ENABLE TRIGGER quarantine_insert_notify")
        await connection.execute("VACUUM ANALYZE quarantine")
        print(
            f"loaded {args.quarantined:,} quarantined numbers in {time.perf_counter() - started:.1f}s",
            flush=True,
        )
    finally:
        await connection.close()


def run_client(args: argparse.Namespace, mode: str, target: str, script: Path = HERE) -> dict[str, Any]:
    """Run one load scenario in a client process of its own (`script --client mode`); its figures."""
    command = [sys.executable, str(script), "--client", mode, "--target", target]
    for name in ("quarantined", "licences", "batch", "in_flight", "seconds", "warmup", "channels"):
        command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return client_figures(command, timeout=600)


def start_ceiling(args: argparse.Namespace) -> tuple[subprocess.Popen[str], str]:
    """The ceiling server (`--serve-ceiling`) in a process of its own, holding the quarantine that `load`
    wrote; (the process, its address)."""
    command = [sys.executable, str(HERE), "--serve-ceiling"]
    command += ["--quarantined", str(args.quarantined), "--licences", str(args.licences)]
    ceiling = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    assert ceiling.stdout is not None
    port = ceiling.stdout.readline().strip()
    if not port:
        ceiling.wait(timeout=30)
        raise SystemExit(f"the ceiling server exited (status {ceiling.returncode}) before it served")
    return ceiling, f"127.0.0.1:{port}"


def compare(
    args: argparse.Namespace, scenarios: dict[str, tuple[str, str, Path]]
) -> dict[str, dict[str, float]]:
    """Run the scenarios {name: (mode, target, script)} one after the other for `args.rounds` rounds,
    printing each run; return the median figures of each, in a table printed at the end."""
    results: dict[str, list[dict[str, Any]]] = {name: [] for name in scenarios}
    width = max(map(len, scenarios))
    for round_number in range(1, args.rounds + 1):
        for name, (mode, target, script) in scenarios.items():
            figures = run_client(args, mode, target, script)
            results[name].append(figures)
            print(
                f"round {round_number} {name:{width}s} {figures['numbers_per_s']:>11,.0f} numbers/s"
                f"  p50 {figures['p50_ms']:6.2f} ms  p99 {figures['p99_ms']:6.2f} ms",
                flush=True,
            )
    median = {
        name: {key: statistics.median(r[key] for r in runs) for key in ("numbers_per_s", "p50_ms", "p99_ms")}
        for name, runs in results.items()
    }
    print(
        f"\nmedians over {args.rounds} rounds ({args.quarantined:,} quarantined,"
        f" {args.licences} licences, batches of {args.batch}, {args.in_flight} in flight):"
    )
    print("| client | numbers/s | p50 ms | p99 ms |\n|---|---:|---:|---:|")
    for name, figures in median.items():
        rate, p50, p99 = figures["numbers_per_s"], figures["p50_ms"], figures["p99_ms"]
        print(f"| {name} | {rate:,.0f} | {p50:.2f} | {p99:.2f} |")
    return median


def report(args: argparse.Namespace, dsn: str, address: str, ceiling_address: str) -> None:
    """Run the scenarios round after round, then print medians, ratios and the propagation delay."""
    median = compare(
        args,
        {
            "stopgate": ("grpc", address, HERE),
            "direct": ("direct", dsn, HERE),
            "stopgate+record": ("record", address, HERE),
            "stopgate+record+id": ("record-id", address, HERE),
            "record alone": ("record-direct", dsn, HERE),
            "ceiling": ("grpc", ceiling_address, HERE),
        },
    )
    delays = asyncio.run(propagation(dsn, address, args.samples))
    print(
        f"\npropagation, committed elsewhere -> blocked by CheckBatch ({len(delays)} samples):"
        f" p50 {1000 * percentile(delays, 0.5):.1f} ms, p99 {1000 * percentile(delays, 0.99):.1f} ms,"
        f" max {1000 * delays[-1]:.1f} ms"
    )
    rate = {name: figures["numbers_per_s"] for name, figures in median.items()}
    print(f"\nratio stopgate / direct asyncpg: {rate['stopgate'] / rate['direct']:.2f}x")
    print(f"ratio stopgate / ceiling: {rate['stopgate'] / rate['ceiling']:.2f}x")


def add_load_arguments(parser: argparse.ArgumentParser) -> None:
    """The data and load shared with bench/peers.py (the issue's sizes by default)."""
    parser.add_argument("--quarantined", type=int, default=1_000_000)
    parser.add_argument("--licences", type=int, default=100)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_load_arguments(parser)
    parser.add_argument("--workers", type=int, default=1, help="stopgate server processes")
    parser.add_argument("--channels", type=int, default=1, help="gRPC connections of the client")
    parser.add_argument("--samples", type=int, default=200, help="quarantines timed for the propagation")
    parser.add_argument(
        "--profile", type=Path, help="first py-spy the server under one recording run, into this file"
    )
    parser.add_argument(
        "--client", choices=["grpc", "record", "record-id", "direct", "record-direct"], help=argparse.SUPPRESS
    )
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--serve-ceiling", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_ceiling:
        asyncio.run(serve_ceiling(args))
        return 0

    if args.client:
        args.mode = args.client
        args.dsn = args.address = args.target
        print(json.dumps(asyncio.run(drive(args))))
        return 0

    ceiling: subprocess.Popen[str] | None = None
    with private_database() as (dsn, _):
        asyncio.run(load(dsn, args))
        with stopgate_server(dsn, "block list index loaded", args.workers) as server:
            address, ready = server.address, server.ready
            print(f"server index: {ready['entries']:,} entries in {ready['seconds']}s", flush=True)
            if args.profile:
                with profiled(server.pid, args.profile):
                    run_client(args, "record", address, HERE)
            try:
                ceiling, ceiling_address = start_ceiling(args)
                report(args, dsn, address, ceiling_address)
            finally:
                if ceiling is not None:
                    ceiling.terminate()
                    ceiling.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
