"""How long requests at the limits hold up the other calls of a server worker.

Starts `stopgate serve` with one worker, then from a client process of its own, on one connection: a small
CheckBatch (100 E.164 numbers) every 20 ms, its latency measured first alone, then beside each kind of heavy
request, sent back to back on the same connection until R of them are answered:
- StreamEvents requests of 1,000 events of 1,600-character texts, each text distinct (none has a cached
  classification);
- CheckBatch requests of 10,000 numbers in national format ("06 12 34 56 78" with default region FR), which
  go through the full phone number parser;
- CheckMessages requests of 1,000 texts of 1,520 characters (ten SMS parts) for France.
A worker that read such a request in one go would make every small check wait for it. Loopback only; stops
by itself.

    .venv/bin/python bench/fairness.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from harness import authorised_channel, client_figures, percentile, private_database, stopgate_server

HERE = Path(__file__).resolve()
CHECK_EVERY_S = 0.02


def small_check() -> Any:
    from stopgate.v1 import common_pb2, quarantine_check_pb2

    return quarantine_check_pb2.CheckBatchRequest(
        licence_id="acme",
        sender=common_pb2.Sender(address="36180"),
        category=common_pb2.MESSAGE_CATEGORY_MARKETING,
        phone_numbers=[f"+3361{i:08d}" for i in range(100)],
    )


def long_text_requests(count: int) -> list[Any]:
    from stopgate.v1 import common_pb2, stop_ingest_pb2

    return [
        stop_ingest_pb2.StreamEventsRequest(
            events=[
                stop_ingest_pb2.InboundEvent(
                    event_id=f"long-{r}-{i}",
                    source=common_pb2.EVENT_SOURCE_SMS_REPLY,
                    phone_number=f"+3362{i:07d}",
                    recipient="36180",
                    text=f"{r} {i} {'stop ' * 400}"[:1600],
                )
                for i in range(1000)
            ]
        )
        for r in range(count)
    ]


def national_checks(count: int) -> list[Any]:
    from stopgate.v1 import common_pb2, quarantine_check_pb2

    rng = random.Random(7)
    return [
        quarantine_check_pb2.CheckBatchRequest(
            licence_id="acme",
            sender=common_pb2.Sender(address="36180"),
            category=common_pb2.MESSAGE_CATEGORY_MARKETING,
            default_region="FR",
            phone_numbers=[
                "0{} {:02d} {:02d} {:02d} {:02d}".format(6, *(rng.randrange(100) for _ in range(4)))
                for _ in range(10_000)
            ],
        )
        for _ in range(count)
    ]


def long_campaign_texts(count: int) -> list[Any]:
    from stopgate.v1 import common_pb2, message_compliance_pb2

    return [
        message_compliance_pb2.CheckMessagesRequest(
            country="FR",
            sender=common_pb2.Sender(address="36180"),
            category=common_pb2.MESSAGE_CATEGORY_MARKETING,
            texts=[f"{r} {i} {'Soldes d ete en magasin, offre speciale. ' * 40}"[:1520] for i in range(1000)],
        )
        for r in range(count)
    ]


async def measure(address: str, requests: int) -> dict[str, list[float]]:
    """Small-check latencies (sorted, seconds): alone, and beside each kind of heavy request."""
    from stopgate.v1 import message_compliance_pb2_grpc, quarantine_check_pb2_grpc, stop_ingest_pb2_grpc

    check = small_check()
    long_texts, national = long_text_requests(requests), national_checks(requests)
    campaign_texts = long_campaign_texts(requests)
    async with authorised_channel(address) as channel:
        checks = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
        ingest = stop_ingest_pb2_grpc.StopIngestStub(channel)
        compliance = message_compliance_pb2_grpc.MessageComplianceStub(channel)

        async def small_checks_while(heavy: Awaitable[None]) -> list[float]:
            running = asyncio.ensure_future(heavy)
            calls: list[asyncio.Task[float]] = []

            async def one() -> float:
                started = time.perf_counter()
                await checks.CheckBatch(check, timeout=60)
                return time.perf_counter() - started

            while not running.done():
                calls.append(asyncio.create_task(one()))
                await asyncio.sleep(CHECK_EVERY_S)
            await running
            return sorted(await asyncio.gather(*calls))

        async def idle() -> None:
            await asyncio.sleep(2)

        async def stream_long_texts() -> None:
            responses = [response async for response in ingest.StreamEvents(iter(long_texts))]
            assert [len(response.acks) for response in responses] == [1000] * requests

        async def check_national_numbers() -> None:
            for request in national:
                response = await checks.CheckBatch(request, timeout=60)
                assert response.invalid_count == 0

        async def check_campaign_texts() -> None:
            for request in campaign_texts:
                response = await compliance.CheckMessages(request, timeout=60)
                assert len(response.assessments) == len(request.texts)

        scenarios: dict[str, Callable[[], Awaitable[None]]] = {
            "alone": idle,
            "long texts": stream_long_texts,
            "national numbers": check_national_numbers,
            "campaign texts": check_campaign_texts,
        }
        return {name: await small_checks_while(heavy()) for name, heavy in scenarios.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5, help="heavy requests of each kind")
    parser.add_argument("--client", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(measure(args.client, args.requests))))
        return 0

    with private_database() as (dsn, _), stopgate_server(dsn, workers=1) as server:
        command = [sys.executable, str(HERE), "--client", server.address, "--requests", str(args.requests)]
        results = client_figures(command)
    print(f"CheckBatch of 100 numbers every {1000 * CHECK_EVERY_S:g} ms on one connection (one worker):")
    print("| beside | calls | p50 | p99 | max |\n|---|---:|---:|---:|---:|")
    heavy = {
        "alone": "nothing",
        "long texts": f"{args.requests} StreamEvents requests of 1,000 1,600-character texts",
        "national numbers": f"{args.requests} CheckBatch requests of 10,000 numbers in national format",
        "campaign texts": f"{args.requests} CheckMessages requests of 1,000 1,520-character texts",
    }
    for name, latencies in results.items():
        p50, p99, most = (
            1000 * value for value in (percentile(latencies, 0.5), percentile(latencies, 0.99), latencies[-1])
        )
        print(f"| {heavy[name]} | {len(latencies)} | {p50:.1f} ms | {p99:.1f} ms | {most:.1f} ms |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
