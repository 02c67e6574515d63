"""The figures for sizing: memory and start-up time per quarantined number, disk per number and per send.

For each size N (default 1,000,000 and 10,000,000 quarantined numbers over 100 licences), loads N rows
into a private PostgreSQL, starts `stopgate serve` (one process) and reads from its log when it serves
(checks then go to PostgreSQL) and when its in-memory index is loaded (checks answered from memory). The
server's resident memory once loaded, minus that of a server over an empty quarantine, divided by N, is
the index's memory per quarantined number; the quarantine table's size with its indexes, divided by N, is
its disk per number. Then it records S sends (default 1,000,000: batches of 1,000 distinct numbers, 10
campaigns) with the statement CheckBatch and RecordSends use, and reports the disk per send (the `sends`
partitions, `campaign_recipients` and their indexes).

    .venv/bin/python bench/sizing.py
    .venv/bin/python bench/sizing.py --sizes 100000 1000000 --sends 100000
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any

import asyncpg
import grpc
from harness import percentile, private_database, rss_kib, stopgate_server
from stopgate_server.store.queries import QUERIES
from stopgate_server.store.sends import NO_REQUEST_ID

LICENCES = 100
CHECK_EVERY_S = 0.02


async def fill(dsn: str, size: int) -> float:
    """Replace the quarantine with `size` numbers; return the seconds it took."""
    connection = await asyncpg.connect(dsn)
    try:
        started = time.perf_counter()
        await connection.execute("TRUNCATE quarantine")
        since = datetime.now(UTC)
        rows = ((f"+336{i:08d}", f"licence-{i % LICENCES:03d}", since, "IMPORT") for i in range(size))
        await connection.execute("ALTER TABLE quarantine DISABLE TRIGGER quarantine_insert_notify")
        await connection.copy_records_to_table(
            "quarantine", records=rows, columns=["phone", "licence_id", "since", "source"]
        )
        await connection.execute("ALTER TABLE quarantine ENABLE TRIGGER quarantine_insert_notify")
        await connection.execute("VACUUM ANALYZE quarantine")
        return time.perf_counter() - started
    finally:
        await connection.close()


async def table_bytes(dsn: str, *tables: str) -> int:
    """Size on disk of the tables (their partitions, indexes and TOAST included)."""
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute("CHECKPOINT")
        total = await connection.fetchval(
            "SELECT sum(pg_total_relation_size(oid)) FROM pg_class WHERE relkind = 'r' AND"
            " (oid = ANY($1::regclass[]) OR oid IN (SELECT relid FROM unnest($1::regclass[]) AS t(root),"
            " LATERAL pg_partition_tree(root)))",
            list(tables),
        )
        return int(total)
    finally:
        await connection.close()


async def record_sends(dsn: str, sends: int) -> float:
    """Record `sends` sends as CheckBatch does; return the seconds it took."""
    connection = await asyncpg.connect(dsn)
    try:
        started, now = time.perf_counter(), datetime.now(UTC)
        for batch in range(0, sends, 1000):
            phones = [f"+337{n:08d}" for n in range(batch, min(batch + 1000, sends))]
            campaign = f"campaign-{batch // 1000 % 10}"
            await connection.fetchval(
                *QUERIES["record_sends"].bind(
                    licence_id="licence-000",
                    campaign_id=campaign,
                    sender="ACME",
                    reply_shortcode="",
                    sent_at=now,
                    phones=phones,
                    **NO_REQUEST_ID,
                )
            )
        return time.perf_counter() - started
    finally:
        await connection.close()


class ChecksWhileLoading(threading.Thread):
    """From the moment the server serves until `finish()`: a CheckBatch of (up to) 100 quarantined numbers
    of one licence every CHECK_EVERY_S, one after the other; their latencies."""

    def __init__(self, address: str, size: int) -> None:
        super().__init__(daemon=True)
        self.address = address
        self.size = size
        self.latencies: list[float] = []
        self.finished = threading.Event()
        self.failure: BaseException | None = None

    def run(self) -> None:
        try:
            self.check()
        except BaseException as error:  # handed to the main thread by finish()
            self.failure = error

    def check(self) -> None:
        from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc

        request = quarantine_check_pb2.CheckBatchRequest(
            licence_id="licence-000",
            sender=common_pb2.Sender(address="ACME"),
            category=common_pb2.MESSAGE_CATEGORY_MARKETING,
            phone_numbers=[  # all licence-000's (see fill)
                f"+336{i:08d}" for i in range(0, min(self.size, 100 * LICENCES), LICENCES)
            ],
        )
        metadata = (("authorization", f"Bearer {os.environ['STOPGATE_TOKEN']}"),)
        with grpc.insecure_channel(self.address) as channel:
            stub = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
            while not self.finished.wait(CHECK_EVERY_S):
                started = time.perf_counter()
                response = stub.CheckBatch(request, metadata=metadata, timeout=60)
                self.latencies.append(time.perf_counter() - started)
                wanted = len(request.phone_numbers)
                if response.blocked_count != wanted:
                    raise RuntimeError(f"{response.blocked_count} of {wanted} quarantined numbers blocked")

    def finish(self) -> list[float]:
        """Stop checking; the latencies, sorted. Raises what stopped the checks early, if anything did."""
        self.finished.set()
        self.join()
        if self.failure is not None:
            raise RuntimeError("a check while the index loaded failed") from self.failure
        return sorted(self.latencies)


def start_and_measure(dsn: str, size: int) -> dict[str, Any]:
    """Start a server, wait for its index while checking numbers, and return when it served, when the
    index was loaded, the checks' latencies meanwhile and its resident memory then (after a second to
    settle)."""
    checks: list[ChecksWhileLoading] = []

    def check_while_loading(address: str) -> None:
        if size:
            checks.append(ChecksWhileLoading(address, size))
            checks[-1].start()

    with stopgate_server(dsn, "block list index loaded", on_serving=check_while_loading) as server:
        latencies = checks[0].finish() if checks else []
        time.sleep(1.0)
        rss_kib_now, peak_kib = rss_kib(server.pid)
        return {
            "serving_s": server.serving_after_s,
            "index_loaded_s": server.ready_after_s,
            "entries": server.ready["entries"],
            "rss_kib": rss_kib_now,
            "peak_kib": peak_kib,
            "checks": len(latencies),
            "check_p50_ms": 1000 * percentile(latencies, 0.5) if latencies else 0.0,
            "check_max_ms": 1000 * latencies[-1] if latencies else 0.0,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--sends", type=int, default=1_000_000)
    args = parser.parse_args()
    with private_database() as (dsn, _):
        asyncio.run(fill(dsn, 0))
        empty = start_and_measure(dsn, 0)
        print(f"empty quarantine: RSS {empty['rss_kib'] / 1024:.1f} MiB", flush=True)
        print(
            "| quarantined | load into PostgreSQL s | serving after s | index loaded after s |"
            " checks meanwhile: count, p50 / max ms | RSS MiB | peak MiB | memory bytes per number |"
            " disk bytes per number |"
        )
        print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for size in args.sizes:
            loaded_s = asyncio.run(fill(dsn, size))
            figures = start_and_measure(dsn, size)
            per_number = (figures["rss_kib"] - empty["rss_kib"]) * 1024 / size
            disk = asyncio.run(table_bytes(dsn, "quarantine")) / size
            serving, loaded = figures["serving_s"], figures["index_loaded_s"]
            rss, peak = figures["rss_kib"] / 1024, figures["peak_kib"] / 1024
            print(
                f"| {size:,} | {loaded_s:.1f} | {serving:.2f} | {loaded:.1f} |"
                f" {figures['checks']}, {figures['check_p50_ms']:.1f} / {figures['check_max_ms']:.1f} |"
                f" {rss:,.0f} | {peak:,.0f} |"
                f" {per_number:.0f} | {disk:.0f} |",
                flush=True,
            )
        if args.sends:
            seconds = asyncio.run(record_sends(dsn, args.sends))
            disk = asyncio.run(table_bytes(dsn, "sends", "campaign_recipients")) / args.sends
            print(
                f"\n{args.sends:,} sends recorded in {seconds:.1f}s by one connection"
                f" ({args.sends / seconds:,.0f}/s); disk per send: {disk:.0f} bytes"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
