"""CheckMessages throughput of one server process: messages/s for typical 1 to 3 part campaign texts.

Starts a private PostgreSQL and `stopgate serve`, then drives CheckMessages from a client process of its
own: requests of 100 personalised texts (French and Belgian marketing, a third of them with typographic
characters that force UCS-2), K requests in flight, for S seconds after a warm-up, over R rounds. Prints
messages/s and p50/p99 per request; the goal is at least 20,000 messages/s per server process.

    .venv/bin/python bench/check_messages.py
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import sys
from pathlib import Path
from typing import Any

from harness import authorised_channel, client_figures, closed_loop, private_database, stopgate_server

HERE = Path(__file__).resolve()
OPENINGS = ["Bonjour {name}", "{name}, ce week-end", "Chère {name}", "Hello {name}"]
BODIES = [
    "profitez de -30% sur toute la collection hiver avec le code HIVER30",
    "nos soldes commencent: jusqu'à -50% en magasin et en ligne, livraison offerte dès 30€",
    "votre carte fidélité vous donne droit à un bon d’achat de 10€ valable jusqu’au 31/12…",  # UCS-2
    "découvrez les nouveautés de la saison dans votre magasin le plus proche, ouvert de 9h à 20h du lundi "
    "au samedi, et profitez d'une remise de 15% sur présentation de ce message en caisse",
]
ENDINGS = ["", " STOP 00000", " STOP au 36180"]


def texts(count: int, rng: random.Random) -> list[str]:
    """Personalised texts of 1 to 3 parts."""
    result = []
    for _ in range(count):
        name = rng.choice(["Camille", "Léa", "Jean-Pierre", "Zoé", "Marc"])
        body = " ".join(rng.choice(BODIES) for _ in range(rng.choice([1, 1, 2, 3])))
        result.append(f"{rng.choice(OPENINGS).format(name=name)}, {body}.{rng.choice(ENDINGS)}")
    return result


async def drive(address: str, args: argparse.Namespace) -> dict[str, Any]:
    from stopgate.v1 import common_pb2, message_compliance_pb2, message_compliance_pb2_grpc

    rng = random.Random(7)
    requests = [
        message_compliance_pb2.CheckMessagesRequest(
            texts=texts(args.texts, rng),
            country=rng.choice(["FR", "BE"]),
            sender=common_pb2.Sender(address="ACME"),
            category=common_pb2.MESSAGE_CATEGORY_MARKETING,
            shortcode="36180",
        )
        for _ in range(64)
    ]
    parts = [
        sum(1 + len(t.encode("utf-16-le")) // 2 // 134 for t in request.texts) / len(request.texts)
        for request in requests
    ]
    async with authorised_channel(address) as channel:
        stub = message_compliance_pb2_grpc.MessageComplianceStub(channel)

        async def one(i: int) -> int:
            request = requests[i % len(requests)]
            response = await stub.CheckMessages(request, timeout=30)
            if len(response.assessments) != len(request.texts):
                raise RuntimeError(f"{len(response.assessments)} assessments of {len(request.texts)} texts")
            return len(request.texts)

        figures = await closed_loop(one, args.in_flight, args.warmup, args.seconds)
    return {
        "messages_per_s": figures.items_per_s,
        "p50_ms": figures.p50_ms,
        "p99_ms": figures.p99_ms,
        "approx_parts_per_text": statistics.mean(parts),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--texts", type=int, default=100, help="texts per CheckMessages request")
    parser.add_argument("--in-flight", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--warmup", type=float, default=2.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(drive(args.client, args))))
        return 0

    runs = []
    with private_database() as (dsn, _), stopgate_server(dsn) as server:
        address = server.address
        for round_number in range(1, args.rounds + 1):
            command = [sys.executable, str(HERE), "--client", address]
            for name in ("texts", "in_flight", "seconds", "warmup"):
                command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            figures = client_figures(command, timeout=600)
            runs.append(figures)
            rate, p50, p99 = figures["messages_per_s"], figures["p50_ms"], figures["p99_ms"]
            print(
                f"round {round_number}: {rate:,.0f} messages/s, p50 {p50:.1f} ms, p99 {p99:.1f} ms"
                f" per request of {args.texts}",
                flush=True,
            )
    rate = statistics.median(r["messages_per_s"] for r in runs)
    p50 = statistics.median(r["p50_ms"] for r in runs)
    p99 = statistics.median(r["p99_ms"] for r in runs)
    print(
        f"\nmedian over {args.rounds} rounds: {rate:,.0f} messages/s (p50 {p50:.1f} ms, p99 {p99:.1f} ms per"
        f" request of {args.texts} texts, {args.in_flight} in flight, ~{runs[0]['approx_parts_per_text']:.1f}"
        " parts per text)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
