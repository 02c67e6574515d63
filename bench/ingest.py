"""Durable ingest throughput against a raw INSERT of the same rows, and single-event latency.

Loads sends for the numbers (so every STOP is attributed), starts `stopgate serve`, then from a client
process of its own: S concurrent StreamEvents streams, each sending requests of B STOP events (pipelined:
the next request is written while the previous is being committed), N events in all, timed from the first
write to the last ack. Baseline in the same run: `INSERT ... SELECT unnest(...)` of the same rows into a
copy of inbound_events, B rows per statement over S connections (no attribution, no block lists, no history,
no counters). Between the two, the bound PostgreSQL sets: stopgate's own statement (`ingest_round`) for the
same events, B per statement over S connections straight from asyncpg, without the server (no gRPC, no
validation, no classification, no index sync): no server can ingest faster with this data model on this
machine. Then IngestEvent at a steady R events/s for T seconds: p50/p99 latency. Loopback only.

    .venv/bin/python bench/ingest.py
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from harness import (
    authorised_channel,
    client_figures,
    cpu_seconds,
    percentile,
    postmaster_pid,
    private_database,
    profiled,
    stopgate_server,
)
from stopgate_server.store import DbConnection

HERE = Path(__file__).resolve()
SHORTCODE = "36180"
RAW_INSERT = """
INSERT INTO inbound_events_raw (
    phone, event_id, received_at, source, recipient, network, raw_text, country_prefix, reason, licence_hint,
    intent_hint, intent, matched_keyword, match_kind, outcome, licence_id, campaign_id, attributed_sent_at)
SELECT * FROM unnest(
    $1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::text[],
    $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[], $15::text[], $16::text[],
    $17::text[], $18::timestamptz[])
"""


def phone(i: int) -> str:
    return f"+3362{i:07d}"


def events(start: int, count: int, run: str) -> list[Any]:
    from stopgate.v1 import common_pb2, stop_ingest_pb2

    return [
        stop_ingest_pb2.InboundEvent(
            event_id=f"{run}-{i}",
            source=common_pb2.EVENT_SOURCE_SMS_REPLY,
            phone_number=phone(i),
            recipient=SHORTCODE,
            text="STOP",
        )
        for i in range(start, start + count)
    ]


async def stream_load(address: str, args: argparse.Namespace) -> dict[str, float]:
    from stopgate.v1 import stop_ingest_pb2, stop_ingest_pb2_grpc

    per_stream = args.events // args.streams
    requests = [
        [
            stop_ingest_pb2.StreamEventsRequest(events=events(s * per_stream + k, args.batch, "stream"))
            for k in range(0, per_stream, args.batch)
        ]
        for s in range(args.streams)
    ]

    async def one_stream(stub: Any, batches: list[Any]) -> int:
        acked = 0
        async for response in stub.StreamEvents(iter(batches)):
            acked += len(response.acks)
        return acked

    async with contextlib.AsyncExitStack() as stack:
        # A connection per stream, as separate ingress processes would have: spread over the workers.
        channels = [await stack.enter_async_context(authorised_channel(address)) for _ in requests]
        await asyncio.gather(*(channel.channel_ready() for channel in channels))
        stubs = [stop_ingest_pb2_grpc.StopIngestStub(channel) for channel in channels]
        began = time.perf_counter()
        acked = sum(await asyncio.gather(*map(one_stream, stubs, requests)))
        elapsed = time.perf_counter() - began
    return {"events_per_s": acked / elapsed, "events": acked}


async def unary_latency(address: str, args: argparse.Namespace) -> dict[str, float]:
    from stopgate.v1 import stop_ingest_pb2, stop_ingest_pb2_grpc

    count = int(args.rate * args.seconds)
    singles = events(args.events, count, "single")
    latencies: list[float] = []
    async with authorised_channel(address) as channel:
        stub = stop_ingest_pb2_grpc.StopIngestStub(channel)

        async def one(raw: Any) -> None:
            started = time.perf_counter()
            await stub.IngestEvent(stop_ingest_pb2.IngestEventRequest(event=raw), timeout=10)
            latencies.append(time.perf_counter() - started)

        tasks = []
        start = time.perf_counter()
        for i, raw in enumerate(singles):
            await asyncio.sleep(max(0.0, start + i / args.rate - time.perf_counter()))
            tasks.append(asyncio.create_task(one(raw)))
        await asyncio.gather(*tasks)
    latencies.sort()
    return {"p50_ms": 1000 * percentile(latencies, 0.5), "p99_ms": 1000 * percentile(latencies, 0.99)}


async def statements_over_connections(
    dsn: str, args: argparse.Namespace, send: Callable[[DbConnection, range], Awaitable[None]]
) -> float:
    """Events per second of `send(connection, rows)` for every batch of B of the N events, the batches
    spread over S connections as the streams spread them."""
    pool = await asyncpg.create_pool(dsn, min_size=args.streams, max_size=args.streams)
    per_stream = args.events // args.streams

    async def one_stream(s: int) -> None:
        async with pool.acquire() as connection:
            for start in range(s * per_stream, (s + 1) * per_stream, args.batch):
                await send(connection, range(start, start + args.batch))

    started = time.perf_counter()
    await asyncio.gather(*(one_stream(s) for s in range(args.streams)))
    elapsed = time.perf_counter() - started
    await pool.close()
    return float(per_stream * args.streams / elapsed)


async def raw_insert(dsn: str, args: argparse.Namespace) -> dict[str, float]:
    """The baseline: the same rows, inserted as they are, B per statement over S connections."""
    setup = await asyncpg.connect(dsn)
    await setup.execute("DROP TABLE IF EXISTS inbound_events_raw")
    await setup.execute("CREATE TABLE inbound_events_raw (LIKE inbound_events INCLUDING ALL)")
    await setup.close()
    now = datetime.now(UTC)
    # The columns of RAW_INSERT after phone and event_id, as stopgate stores these STOPs.
    constant = [now, "SMS_REPLY", SHORTCODE, "", "STOP", "", "", "", "", "OPT_OUT", "STOP", "EXACT"]
    constant += ["QUARANTINED", "acme", "spring", now]

    async def insert(connection: DbConnection, rows: range) -> None:
        columns = [[phone(i) for i in rows], [f"raw-{i}" for i in rows]]
        await connection.execute(RAW_INSERT, *columns, *([value] * len(rows) for value in constant))

    return {"events_per_s": await statements_over_connections(dsn, args, insert)}


async def statement_only(dsn: str, args: argparse.Namespace) -> dict[str, float]:
    """The bound PostgreSQL sets: stopgate's ingest_round for the same STOPs, B per statement over S
    connections, as the server sends it, with none of the server's own work. Every event must come back
    QUARANTINED, so that this measures the whole effect of a STOP, not a shortcut."""
    from stopgate_server.domain.ingest import Classified, Inbound, Source
    from stopgate_server.domain.keywords import Classification, Intent, MatchKind
    from stopgate_server.store.ingest import round_parameters
    from stopgate_server.store.queries import QUERIES
    from stopgate_server.usecases.ingest import BOUNDS

    now = datetime.now(UTC)
    outcomes: Counter[str] = Counter()

    async def apply(connection: DbConnection, rows: range) -> None:
        stop = Classification(Intent.OPT_OUT, "STOP", MatchKind.EXACT)
        events = [
            Classified(
                Inbound(
                    event_id=f"direct-{i}",
                    phone=phone(i),
                    received_at=now,
                    source=Source.SMS_REPLY,
                    recipient=SHORTCODE,
                    shortcode=SHORTCODE,
                    network="",
                    text="STOP",
                    country_prefix="",
                    reason="",
                    licence_hint="",
                    intent_hint=None,
                ),
                stop,
            )
            for i in rows
        ]
        parameters = round_parameters(events, BOUNDS)  # as store.ingest sends them
        outcomes.update(
            row["outcome"] for row in await connection.fetch(*QUERIES["ingest_round"].bind(**parameters))
        )

    rate = await statements_over_connections(dsn, args, apply)
    if outcomes != Counter(QUARANTINED=args.events // args.streams * args.streams):
        raise SystemExit(f"ingest_round did not quarantine every event: {dict(outcomes)}")
    return {"events_per_s": rate}


async def load_sends(dsn: str, count: int) -> None:
    connection = await asyncpg.connect(dsn)
    sent_at = datetime.now(UTC) - timedelta(hours=1)
    await connection.copy_records_to_table(
        "sends",
        records=((phone(i), sent_at, "acme", "spring", SHORTCODE) for i in range(count)),
        columns=["phone", "sent_at", "licence_id", "campaign_id", "sender"],
    )
    await connection.execute(
        "INSERT INTO campaign_counters (licence_id, campaign_id, sent_count) VALUES ('acme', 'spring', $1)",
        count,
    )
    await connection.execute("ANALYZE")
    await connection.close()


def client(mode: str, target: str, args: argparse.Namespace) -> dict[str, float]:
    command = [sys.executable, str(HERE), "--client", mode, "--target", target]
    for name in ("events", "batch", "streams", "rate", "seconds"):
        command += [f"--{name}", str(getattr(args, name))]
    return client_figures(command)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000, help="events per streamed run")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--streams", type=int, default=4)
    parser.add_argument("--rate", type=float, default=100.0, help="IngestEvent calls per second")
    parser.add_argument("--seconds", type=float, default=10.0, help="duration of the IngestEvent run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="stopgate server processes")
    parser.add_argument(
        "--profile", type=Path, help="py-spy the server during the streamed rounds into this file"
    )
    parser.add_argument("--client", choices=["stream", "unary", "raw", "statement"], help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.events % (args.streams * args.batch):
        parser.error("--events must be a multiple of --streams x --batch (each stream sends whole batches)")
    if args.client:
        modes = {
            "stream": stream_load,
            "unary": unary_latency,
            "raw": raw_insert,
            "statement": statement_only,
        }
        run = modes[args.client]
        print(json.dumps(asyncio.run(run(args.target, args))))
        return 0

    streamed, statement, raw = [], [], []
    with private_database() as (dsn, workdir):
        asyncio.run(load_sends(dsn, args.events + int(args.rate * args.seconds)))
        database = postmaster_pid(workdir)
        with stopgate_server(dsn, workers=args.workers) as server:
            address = server.address
            for round_number in range(1, args.rounds + 1):
                asyncio.run(_reset(dsn))
                cpu_before = cpu_seconds(server.pid), cpu_seconds(database)
                with profiled(server.pid, args.profile if round_number == 1 else None):
                    figures = client("stream", address, args)
                if figures["events"] != args.events:
                    raise SystemExit(f"{figures['events']:,.0f} of {args.events:,} streamed events acked")
                streamed.append(figures["events_per_s"])
                server_ms, database_ms = (
                    1000 * (cpu_seconds(pid) - before) / (args.events / 1000)
                    for pid, before in zip((server.pid, database), cpu_before, strict=True)
                )
                asyncio.run(_reset(dsn))
                before = cpu_seconds(database)
                statement.append(client("statement", dsn, args)["events_per_s"])
                between = cpu_seconds(database)
                raw.append(client("raw", dsn, args)["events_per_s"])
                statement_ms, raw_ms = (
                    1000 * (end - start) / (args.events / 1000)
                    for start, end in ((before, between), (between, cpu_seconds(database)))
                )
                print(
                    f"round {round_number}: stopgate {streamed[-1]:,.0f} durable events/s,"
                    f" its statement alone {statement[-1]:,.0f}, raw insert {raw[-1]:,.0f} rows/s;"
                    f" ratios {streamed[-1] / raw[-1]:.2f} and {statement[-1] / raw[-1]:.2f}\n"
                    f"  PostgreSQL CPU per 1,000 events: stopgate {database_ms:.0f} ms"
                    f" (and the server {server_ms:.0f} ms), statement alone {statement_ms:.0f} ms,"
                    f" raw insert {raw_ms:.0f} ms",
                    flush=True,
                )
            latency = client("unary", address, args)
    rate, floor, baseline = (statistics.median(figures) for figures in (streamed, statement, raw))
    print(
        f"\nmedians over {args.rounds} rounds ({args.events:,} events, {args.batch} per request,"
        f" {args.streams} streams): stopgate {rate:,.0f} events/s, its statement alone {floor:,.0f} events/s,"
        f" raw insert {baseline:,.0f} rows/s; ratio to the raw insert {rate / baseline:.2f}"
        f" (the statement alone: {floor / baseline:.2f})"
    )
    print(
        f"IngestEvent at {args.rate:g} events/s for {args.seconds:g} s:"
        f" p50 {latency['p50_ms']:.1f} ms, p99 {latency['p99_ms']:.1f} ms"
    )
    return 0


async def _reset(dsn: str) -> None:
    """Forget the previous round's events and their effects (the sends stay)."""
    connection = await asyncpg.connect(dsn)
    await connection.execute(
        "TRUNCATE inbound_events, quarantine, shortcode_stop_list, number_history;"
        " UPDATE campaign_counters SET unsubscribe_count = 0, unsubscribes_sms_reply = 0"
    )
    await connection.close()


if __name__ == "__main__":
    sys.exit(main())
