"""ClassifyText and the classifier: texts/s for the replies people send, and the longest texts' cost.

Two measures, each over R rounds:
- in process, `keywords.classify` over a mix of distinct replies (bare keywords, keywords with shortcodes,
  natural requests and chatter in seven languages, and 1,600-character texts), its cache cleared first, so
  every text is read in full: texts/s, and the slowest 1,600-character text in ms;
- through gRPC, ClassifyText from a client process of its own, K calls in flight for S seconds after a
  warm-up, against one `stopgate serve`: calls/s and p50/p99.

    .venv/bin/python bench/classify.py
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

from harness import authorised_channel, client_figures, closed_loop, private_database, stopgate_server

HERE = Path(__file__).resolve()
REPLIES = [
    ("STOP", "FR"), ("Stop", "GB"), ("stop 36180", "FR"), ("ARRET", "FR"), ("STOPP", "DE"), ("BAJA", "ES"),
    ("please stop texting me", "US"), ("remove me from your list", "GB"), ("unsubscribe me now!!", "US"),
    ("who is this? stop messaging me", "US"), ("I never signed up for this, stop", "GB"),
    ("merci de ne plus m'envoyer de messages", "FR"), ("désinscription svp", "BE"),
    ("bitte keine Nachrichten mehr", "DE"), ("abmelden", "DE"), ("uitschrijven", "NL"),
    ("laat me met rust", "NL"), ("no me manden más mensajes", "ES"), ("cancellami", "IT"),
    ("non voglio più ricevere messaggi", "IT"), ("pare de me enviar mensagens", "PT"), ("SAIR", "BR"),
    ("START", "FR"), ("yes", "US"), ("HELP", "GB"), ("aide", "FR"), ("info", "DE"),
    ("don't stop the offers, I love them", "US"), ("see you at the bus stop", "GB"),
    ("can't stop laughing at this", "US"), ("ok merci, à demain", "FR"), ("Danke, bis bald", "DE"),
    ("¿a qué hora abre la tienda?", "ES"), ("grazie mille!", "IT"), ("obrigado pela informação", "PT"),
    ("wat is de prijs?", "NL"), ("S T O P", "FR"), ("s.t.o.p", "GB"), ("stooooop", "US"), ("STOP36180", "FR"),
]  # fmt: skip
LONG = [
    ("stop " * 320, "FR"),
    ("s.t.o.p " * 200, "GB"),
    ("please do not " * 114, "US"),
    ("S T O P " * 200, "GB"),
    ("Bonjour, " + "je voudrais savoir si la promotion est toujours valable ce week-end. " * 23, "FR"),
]


def distinct_texts(rounds: int) -> list[tuple[str, str]]:
    """The replies, each made distinct (trailing spaces, which the classifier reads past) so that no cache
    helps."""
    return [(text + " " * n, country) for n in range(rounds) for text, country in REPLIES]


def in_process(args: argparse.Namespace) -> dict[str, float]:
    from stopgate_server.domain import keywords

    texts = distinct_texts(args.repeat)

    def clear() -> None:
        """Empty every cache of the classifier's module, so that each text is read in full."""
        for value in vars(keywords).values():
            if hasattr(value, "cache_clear"):
                value.cache_clear()

    clear()
    started = time.perf_counter()
    for text, country in texts:
        keywords.classify(text, country)
    rate = len(texts) / (time.perf_counter() - started)
    slowest = 0.0
    for text, country in LONG:
        clear()
        started = time.perf_counter()
        keywords.classify(text[:1600], country)
        slowest = max(slowest, time.perf_counter() - started)
    return {"texts_per_s": rate, "slowest_long_ms": 1000 * slowest}


async def drive(address: str, args: argparse.Namespace) -> dict[str, Any]:
    from stopgate.v1 import stop_ingest_pb2, stop_ingest_pb2_grpc

    requests = [stop_ingest_pb2.ClassifyTextRequest(text=t, country=c) for t, c in distinct_texts(50)]
    async with authorised_channel(address) as channel:
        stub = stop_ingest_pb2_grpc.StopIngestStub(channel)

        async def one(i: int) -> int:
            await stub.ClassifyText(requests[i % len(requests)], timeout=10)
            return 1

        figures = await closed_loop(one, args.in_flight, args.warmup, args.seconds)
    return {"calls_per_s": figures.items_per_s, "p50_ms": figures.p50_ms, "p99_ms": figures.p99_ms}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=250, help="distinct variants of each reply, in process")
    parser.add_argument("--in-flight", type=int, default=16)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--client", metavar="ADDRESS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.client:
        print(json.dumps(asyncio.run(drive(args.client, args))))
        return 0

    local = []
    for round_number in range(1, args.rounds + 1):
        figures = in_process(args)
        local.append(figures)
        print(
            f"round {round_number} in process: {figures['texts_per_s']:,.0f} texts/s;"
            f" slowest 1,600-character text {figures['slowest_long_ms']:.3f} ms",
            flush=True,
        )
    remote = []
    with private_database() as (dsn, _), stopgate_server(dsn) as server:
        for round_number in range(1, args.rounds + 1):
            command = [sys.executable, str(HERE), "--client", server.address]
            for name in ("in_flight", "seconds", "warmup"):
                command += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
            figures = client_figures(command, timeout=600)
            remote.append(figures)
            print(
                f"round {round_number} ClassifyText: {figures['calls_per_s']:,.0f} calls/s,"
                f" p50 {figures['p50_ms']:.2f} ms, p99 {figures['p99_ms']:.2f} ms",
                flush=True,
            )
    local_rate = statistics.median(r["texts_per_s"] for r in local)
    slowest = statistics.median(r["slowest_long_ms"] for r in local)
    calls = statistics.median(r["calls_per_s"] for r in remote)
    print(
        f"\nmedians over {args.rounds} rounds: in process {local_rate:,.0f} texts/s (slowest long text"
        f" {slowest:.3f} ms); ClassifyText {calls:,.0f} calls/s ({args.in_flight} in flight)"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
