"""Soak: a mixed load for a long time (10 minutes by default) from a separate client process, with the
server's memory, file descriptors and connections sampled every 10 s. Stable means no growth trend.

    .venv/bin/python bench/soak.py [--seconds 600] [--interval 10]

The load (AsyncClient, 8 loops): CheckBatch of 100 numbers (some recording sends of a campaign),
StreamEvents batches of new STOPs, IngestEvent, GetNumberStatus, CheckMessage, GetCampaignReport, an
ExportQuarantine now and then, and a fresh connection every 200 calls (connection churn). `make test` runs
it for seconds only (tests/e2e/test_bench_smoke.py); figures go to BENCHMARKS.md. The block-list entries
(quarantine + stop lists) are sampled too: the server holds them in memory, so its memory legitimately
grows with the STOPs the load sends. Exit status 1 if a call failed (other than a report asked for before
its campaign's first send) or the client process did.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import asyncpg
from harness import private_database, rss_kib, stopgate_server

# A campaign has no report until its first send is recorded, which happens early in a run: not a failure.
EXPECTED_FAILURES = {"report:NOT_FOUND"}


async def load(address: str, seconds: float) -> dict[str, Any]:
    """The client process: mixed calls until `seconds` have passed; counts of calls and failures."""
    from stopgate import AsyncClient, EventSource, InboundEvent, MessageCategory
    from stopgate.errors import StopgateError

    marketing = MessageCategory.MESSAGE_CATEGORY_MARKETING
    sms_reply = EventSource.EVENT_SOURCE_SMS_REPLY

    counts: dict[str, int] = {}
    failures: dict[str, int] = {}
    ids = itertools.count()
    deadline = time.monotonic() + seconds

    def number(i: int) -> str:
        return f"+3361{i % 10_000_000:07d}"

    async def one(client: AsyncClient, kind: str, i: int) -> None:
        if kind == "check":
            await client.check_batch(
                "acme",
                [number(i * 100 + k) for k in range(100)],
                sender="36180",
                category=marketing,
                campaign_id=f"c{i % 20}" if i % 4 == 0 else "",
            )
        elif kind == "stream":
            events = [
                InboundEvent(event_id=f"s{next(ids)}", source=sms_reply, phone_number=number(i), text="STOP")
                for _ in range(50)
            ]
            async for _ in client.stream_events(events, batch_size=50):
                pass
        elif kind == "ingest":
            event = InboundEvent(
                event_id=f"u{next(ids)}", source=sms_reply, phone_number=number(i), text="STOP"
            )
            await client.ingest_event(event)
        elif kind == "status":
            await client.get_number_status("acme", number(i))
        elif kind == "message":
            await client.check_message("Promo -20%", country="FR", sender="ACME", category=marketing)
        elif kind == "report":
            if i % 20 == 0:
                async for _ in client.export_quarantine("acme"):
                    pass
            else:
                await client.get_campaign_report("acme", f"c{(i % 5) * 4}")  # campaigns with sends

    async def loop(worker: int) -> None:
        kinds = ["check", "check", "stream", "ingest", "status", "message", "report"]
        i = worker
        while time.monotonic() < deadline:
            async with AsyncClient(address) as client:  # a new connection every 200 calls
                for _ in range(200):
                    if time.monotonic() >= deadline:
                        break
                    kind = kinds[i % len(kinds)]
                    try:
                        await one(client, kind, i)
                        counts[kind] = counts.get(kind, 0) + 1
                    except StopgateError as error:
                        key = f"{kind}:{error.code.name}"
                        failures[key] = failures.get(key, 0) + 1
                    i += 8

    await asyncio.gather(*(loop(worker) for worker in range(8)))
    return {"calls": counts, "failures": failures}


def sample(pid: int, dsn: str) -> dict[str, float]:
    """Resident memory (MiB), open file descriptors, sockets of the server, PostgreSQL backends, and the
    block-list entries the server holds in memory (they grow with the STOPs of the load, legitimately)."""
    fds = list(Path(f"/proc/{pid}/fd").iterdir())
    sockets = sum(1 for fd in fds if os.readlink(fd).startswith("socket:"))

    async def database() -> tuple[int, int]:
        connection = await asyncpg.connect(dsn)
        try:
            backends = await connection.fetchval(
                "SELECT count(*) - 1 FROM pg_stat_activity WHERE datname IS NOT NULL"
            )
            entries = await connection.fetchval(
                "SELECT (SELECT count(*) FROM quarantine) + (SELECT count(*) FROM shortcode_stop_list)"
            )
            return int(backends), int(entries)
        finally:
            await connection.close()

    backends, entries = asyncio.run(database())

    return {
        "rss_mib": rss_kib(pid)[0] / 1024,
        "fds": len(fds),
        "sockets": sockets,
        "pg_backends": backends,
        "blocklist_entries": entries,
    }


def slope_per_minute(times: list[float], values: list[float]) -> float:
    """Least-squares growth per minute."""
    return statistics.linear_regression(times, values).slope * 60 if len(times) > 1 else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--client", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(load(args.client, args.seconds))))
        return 0

    with private_database() as (dsn, _), stopgate_server(dsn) as server:
        client = subprocess.Popen(
            [sys.executable, __file__, "--client", server.address, "--seconds", str(args.seconds)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            started = time.monotonic()
            samples: list[dict[str, float]] = []
            print(
                f"{'t (s)':>6} {'RSS MiB':>8} {'fds':>5} {'sockets':>8} {'PG backends':>12}"
                f" {'block lists':>12}"
            )
            while client.poll() is None:
                figures = {"t": time.monotonic() - started, **sample(server.pid, dsn)}
                samples.append(figures)
                t, rss, fds = figures["t"], figures["rss_mib"], figures["fds"]
                sockets, backends, entries = (
                    figures["sockets"],
                    figures["pg_backends"],
                    figures["blocklist_entries"],
                )
                print(f"{t:6.0f} {rss:8.1f} {fds:5.0f} {sockets:8.0f} {backends:12.0f} {entries:12.0f}")
                time.sleep(args.interval)
            output = client.communicate()[0]
        finally:
            if client.poll() is None:  # the sampling failed: the load goes too
                client.kill()
                client.wait()
    if client.returncode or not output.strip():
        raise SystemExit(f"the client process failed (exit status {client.returncode}); its errors are above")
    outcome = json.loads(output.strip().splitlines()[-1])

    half = [s for s in samples if s["t"] >= args.seconds / 2]  # after warm-up: caches and pools are full
    times = [s["t"] for s in half]
    summary = {
        "seconds": args.seconds,
        "samples": len(samples),
        **outcome,
        "rss_mib": {
            "first": samples[0]["rss_mib"],
            "last": samples[-1]["rss_mib"],
            "max": max(s["rss_mib"] for s in samples),
        },
        "second_half_growth_per_minute": {
            key: slope_per_minute(times, [s[key] for s in half])
            for key in ("rss_mib", "fds", "sockets", "pg_backends", "blocklist_entries")
        },
    }
    print(json.dumps(summary, indent=2))
    unexpected = {key: n for key, n in outcome["failures"].items() if key not in EXPECTED_FAILURES}
    if unexpected or not outcome["calls"]:
        print(f"FAILED: calls failed: {unexpected}" if unexpected else "FAILED: no call succeeded")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
