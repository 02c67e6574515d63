"""Report latency whatever the campaign's size, and export throughput with flat server memory.

Loads two campaigns into a private PostgreSQL: "small" with 10,000 sends and "big" with N sends (1% of
each campaign's recipients sent STOP, attributed to their send), and their counters. Starts `stopgate
serve`; from a client process of its own: GetCampaignReport K times for each campaign (p50/p99), then
ExportInteractions of "big" in full (rows/s), while the server's resident memory is read before and its
peak after. Loopback only.

    .venv/bin/python bench/reporting.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import asyncpg
from harness import (
    authorised_channel,
    client_figures,
    percentile,
    private_database,
    rss_kib,
    stopgate_server,
)

HERE = Path(__file__).resolve()
STOP_FIELDS = ("SMS_REPLY", "STOP", "OPT_OUT", "QUARANTINED", "acme")  # source ... licence_id


async def load(dsn: str, campaign: str, sends: int, offset: int) -> None:
    """`sends` sends of a campaign to distinct numbers, 1% of them STOPped, and the campaign's counters."""
    connection = await asyncpg.connect(dsn)
    start = datetime.now(UTC) - timedelta(days=2)
    phones = [f"+336{offset + i:08d}" for i in range(sends)]
    times = [start + timedelta(milliseconds=i) for i in range(sends)]
    await connection.copy_records_to_table(
        "sends",
        records=((p, t, "acme", campaign, "36180") for p, t in zip(phones, times, strict=True)),
        columns=["phone", "sent_at", "licence_id", "campaign_id", "sender"],
    )
    stopped = range(0, sends, 100)
    columns = ["phone", "event_id", "received_at", "source", "raw_text", "intent", "outcome", "licence_id"]
    columns += ["campaign_id", "attributed_sent_at"]
    await connection.copy_records_to_table(
        "inbound_events",
        records=(
            (
                phones[i],
                f"{campaign}-stop-{i}",
                times[i] + timedelta(hours=1),
                *STOP_FIELDS,
                campaign,
                times[i],
            )
            for i in stopped
        ),
        columns=columns,
    )
    # Each STOP points to the send it was attributed to, as ingest records it
    await connection.execute(
        """UPDATE inbound_events e SET attributed_send_id = s.send_id FROM sends s
           WHERE e.campaign_id = $1 AND s.campaign_id = $1
             AND s.phone = e.phone AND s.sent_at = e.attributed_sent_at""",
        campaign,
    )
    await connection.execute(
        """INSERT INTO campaign_counters (licence_id, campaign_id, sent_count, unique_recipients,
               unsubscribe_count, unsubscribes_sms_reply, first_send_at, last_send_at)
           VALUES ('acme', $1, $2, $2, $3, $3, $4, $5)""",
        campaign,
        sends,
        len(stopped),
        times[0],
        times[-1],
    )
    await connection.execute("ANALYZE")
    await connection.close()


async def drive(address: str, calls: int) -> dict[str, float]:
    from stopgate.v1 import reporting_pb2, reporting_pb2_grpc

    figures: dict[str, float] = {}
    async with authorised_channel(address) as channel:
        stub = reporting_pb2_grpc.ReportingStub(channel)
        for campaign in ("small", "big"):
            request = reporting_pb2.GetCampaignReportRequest(licence_id="acme", campaign_id=campaign)
            latencies = []
            for _ in range(calls):
                started = time.perf_counter()
                await stub.GetCampaignReport(request, timeout=10)
                latencies.append(time.perf_counter() - started)
            latencies.sort()
            figures[f"{campaign}_p50_ms"] = 1000 * percentile(latencies, 0.5)
            figures[f"{campaign}_p99_ms"] = 1000 * percentile(latencies, 0.99)
        rows, stopped, started = 0, 0, time.perf_counter()
        export = reporting_pb2.ExportInteractionsRequest(licence_id="acme", campaign_id="big")
        async for chunk in stub.ExportInteractions(export, timeout=600):
            rows += len(chunk.interactions)
            stopped += sum(
                row.status == reporting_pb2.INTERACTION_STATUS_STOPPED for row in chunk.interactions
            )
        figures["export_rows"] = rows
        figures["export_stopped"] = stopped
        figures["export_rows_per_s"] = rows / (time.perf_counter() - started)
    return figures


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sends", type=int, default=1_000_000, help="sends of the big campaign")
    parser.add_argument("--calls", type=int, default=2000, help="GetCampaignReport calls per campaign")
    parser.add_argument("--client", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(drive(args.client, args.calls))))
        return 0

    with private_database() as (dsn, _):
        started = time.perf_counter()
        asyncio.run(load(dsn, "small", 10_000, 0))
        asyncio.run(load(dsn, "big", args.sends, 10_000))
        print(f"loaded {10_000 + args.sends:,} sends in {time.perf_counter() - started:.1f}s", flush=True)
        with stopgate_server(dsn) as server:
            rss_before, _ = rss_kib(server.pid)
            command = [sys.executable, str(HERE), "--client", server.address, "--calls", str(args.calls)]
            figures = client_figures(command)
            _, peak_after = rss_kib(server.pid)
    print(
        f"GetCampaignReport, {args.calls} calls each: 10,000 sends p50 {figures['small_p50_ms']:.2f} ms"
        f" p99 {figures['small_p99_ms']:.2f} ms; {args.sends:,} sends p50 {figures['big_p50_ms']:.2f} ms"
        f" p99 {figures['big_p99_ms']:.2f} ms"
    )
    rows, rate = figures["export_rows"], figures["export_rows_per_s"]
    print(
        f"ExportInteractions: {rows:,.0f} rows at {rate:,.0f} rows/s;"
        f" server RSS {rss_before / 1024:.1f} MiB before, peak {peak_after / 1024:.1f} MiB after"
        f" (growth {(peak_after - rss_before) / 1024:.1f} MiB)"
    )
    if rows != args.sends:
        print(f"FAILED: the big campaign's export has {rows:,.0f} rows, not one per send ({args.sends:,})")
        return 1
    if figures["export_stopped"] != len(range(0, args.sends, 100)):
        print(f"FAILED: the export has {figures['export_stopped']:,.0f} STOPPED rows, not one per STOP")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
