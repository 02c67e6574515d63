"""The cost of reconciling the block-list index with PostgreSQL (invariant 8), at each size.

For each size N (default 1,000,000 and 10,000,000 quarantined numbers over 100 licences), loads N rows into
a private PostgreSQL, loads a BlocklistIndex in this process, and times, R times each (default 5):
PostgreSQL's side alone (the `blocklist_summary` aggregate, and the CPU seconds PostgreSQL's processes used
for it, parallel workers included), the index's side alone (the Digest of every list, and of the longest
list: the longest the event loop is held), and a whole `reconcile()` round (two heartbeats, the aggregate,
the digests; nothing to reload). Prints medians.

    .venv/bin/python bench/reconcile.py
    .venv/bin/python bench/reconcile.py --sizes 100000 --rounds 3
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from pathlib import Path

import asyncpg
from harness import cpu_seconds, postmaster_pid, private_database
from sizing import fill
from stopgate_server.store.blocklist import RECONCILE_SESSION, BlocklistIndex
from stopgate_server.store.queries import QUERIES


async def measure(dsn: str, workdir: Path, size: int, rounds: int) -> dict[str, float]:
    """Medians over `rounds` of each figure, in seconds."""
    await fill(dsn, size)
    postmaster = postmaster_pid(workdir)
    connection = await asyncpg.connect(dsn, server_settings=RECONCILE_SESSION)
    pool = await asyncpg.create_pool(dsn, min_size=1, max_size=2)
    index = BlocklistIndex(dsn, pool, reconcile_interval_s=3600)  # rounds run by hand below
    figures: dict[str, list[float]] = {"aggregate": [], "aggregate_cpu": [], "digests": [], "longest": []}
    figures["round"] = []
    try:
        for _ in range(rounds):
            used, started = cpu_seconds(postmaster), time.perf_counter()
            rows = await connection.fetch(QUERIES["blocklist_summary"].sql)
            figures["aggregate"].append(time.perf_counter() - started)
            figures["aggregate_cpu"].append(cpu_seconds(postmaster) - used)
            assert sum(row["size"] for row in rows) == size
        await index.start()
        deadline = time.monotonic() + 600
        while not index.is_current():
            if time.monotonic() > deadline:
                raise RuntimeError("the index did not load within 10 minutes")
            await asyncio.sleep(0.05)
        list_ids = index._list_ids()  # the index's own lists, as a round digests them
        for _ in range(rounds):
            started = time.perf_counter()
            longest = 0.0
            for list_id in list_ids:
                one = time.perf_counter()
                index._digest(list_id)
                longest = max(longest, time.perf_counter() - one)
            figures["digests"].append(time.perf_counter() - started)
            figures["longest"].append(longest)
        for _ in range(rounds):
            started = time.perf_counter()
            assert await index.reconcile() == set()
            figures["round"].append(time.perf_counter() - started)
    finally:
        await index.stop()
        await pool.close()
        await connection.close()
    return {name: statistics.median(values) for name, values in figures.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print(
        "| quarantined | PostgreSQL aggregate | its CPU (all processes) | index digests (all lists) |"
        " longest list digest | whole round |"
    )
    print("|---:|---:|---:|---:|---:|---:|")
    with private_database() as (dsn, workdir):
        for size in args.sizes:
            f = asyncio.run(measure(dsn, workdir, size, args.rounds))
            print(
                f"| {size:,} | {f['aggregate']:.2f} s | {f['aggregate_cpu']:.2f} s |"
                f" {1000 * f['digests']:.1f} ms | {1000 * f['longest']:.1f} ms | {f['round']:.2f} s |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
