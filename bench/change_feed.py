"""The change feed (WatchBlocklistChanges): changes delivered per second when a consumer catches up, and the
delay from a change's commit to its delivery when it follows live.

Starts `stopgate serve` on a private PostgreSQL. Catch-up: N quarantines are committed in transactions of
1,000 (so in many ticks) while no one reads, then a consumer reads them all from the cursor taken before
(changes/s, best of the rounds' medians). Live: a consumer follows from now while a writer commits one
quarantine at a time at a fixed rate; the delay of each change is its delivery time minus the time its
INSERT returned (both read on one clock, in one client process): p50 and p99. Loopback only.

    .venv/bin/python bench/change_feed.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from harness import authorised_channel, client_figures, percentile, private_database, stopgate_server
from stopgate.v1 import reporting_pb2 as pb
from stopgate.v1.reporting_pb2_grpc import ReportingStub

HERE = Path(__file__).resolve()
INSERT = (
    "INSERT INTO quarantine (phone, licence_id, since, source)"
    " SELECT $1 || lpad(n::text, 8, '0'), 'acme', now(), 'IMPORT' FROM generate_series($2::int, $3::int) n"
)


async def _cursor_now(feed: ReportingStub) -> str:
    call: Any = feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest())
    try:
        return str((await anext(aiter(call))).cursor)
    finally:
        call.cancel()


async def catch_up(address: str, dsn: str, changes: int, prefix: str) -> float:
    """Commit `changes` quarantines 1,000 per transaction, then read them all from before: changes/s."""
    async with authorised_channel(address) as channel:
        feed = ReportingStub(channel)
        cursor = await _cursor_now(feed)
        connection = await asyncpg.connect(dsn)
        try:
            for first in range(1, changes + 1, 1000):
                await connection.execute(INSERT, prefix, first, min(first + 999, changes))
        finally:
            await connection.close()
        await asyncio.sleep(0.5)  # ticked
        call: Any = feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest(after_cursor=cursor))
        seen, started = 0, time.perf_counter()
        async for response in call:
            seen += len(response.changes)
            if seen >= changes:
                break
        elapsed = time.perf_counter() - started
        call.cancel()
    return changes / elapsed


async def live(address: str, dsn: str, rate: float, seconds: float, prefix: str) -> list[float]:
    """Commit one quarantine at a time at `rate` per second for `seconds` while a consumer follows: the
    delay of each change from its commit to its delivery, in ms."""
    committed: dict[str, float] = {}
    delays: list[float] = []
    total = int(rate * seconds)
    async with authorised_channel(address) as channel:
        feed = ReportingStub(channel)
        call: Any = feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest())

        async def consume() -> None:
            async for response in call:
                now = time.perf_counter()
                for change in response.changes:
                    delays.append((now - committed[change.phone_number]) * 1000)
                if len(delays) >= total:
                    return

        first = await anext(aiter(call))  # following from now before the first commit
        assert not first.changes
        consumer = asyncio.create_task(consume())
        connection = await asyncpg.connect(dsn)
        try:
            started = time.perf_counter()
            for n in range(1, total + 1):
                await asyncio.sleep(max(0.0, started + n / rate - time.perf_counter()))
                await connection.execute(INSERT, prefix, n, n)
                committed[f"{prefix}{n:08d}"] = time.perf_counter()
        finally:
            await connection.close()
        await asyncio.wait_for(consumer, timeout=60)
        call.cancel()
    return delays


async def drive(address: str, dsn: str, args: argparse.Namespace) -> dict[str, float]:
    rates = [await catch_up(address, dsn, args.changes, f"+3361{r}") for r in range(args.rounds)]
    delays = await live(address, dsn, args.rate, args.seconds, "+33699")
    return {
        "catch_up_per_s": statistics.median(rates),
        "live_p50_ms": percentile(sorted(delays), 0.5),
        "live_p99_ms": percentile(sorted(delays), 0.99),
        "live_changes": len(delays),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=200_000, help="changes read per catch-up round")
    parser.add_argument("--rounds", type=int, default=3, help="catch-up rounds (the median is reported)")
    parser.add_argument("--rate", type=float, default=200.0, help="live changes committed per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="how long the live writer runs")
    parser.add_argument("--client", nargs=2, metavar=("ADDRESS", "DSN"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        address, dsn = args.client
        print(json.dumps(asyncio.run(drive(address, dsn, args))))
        return 0

    with private_database() as (dsn, _), stopgate_server(dsn) as server:
        command = [sys.executable, str(HERE), "--client", server.address, dsn]
        command += ["--changes", str(args.changes), "--rounds", str(args.rounds)]
        command += ["--rate", str(args.rate), "--seconds", str(args.seconds)]
        figures = client_figures(command)
    print(
        f"catch-up: {args.changes:,} changes per round, median of {args.rounds}:"
        f" {figures['catch_up_per_s']:,.0f} changes/s"
    )
    print(
        f"live: {figures['live_changes']:,.0f} changes at {args.rate:g}/s, commit to delivery"
        f" p50 {figures['live_p50_ms']:.1f} ms p99 {figures['live_p99_ms']:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
