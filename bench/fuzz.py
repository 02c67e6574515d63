"""The long run of the fuzz test (invariant 7): N protobuf-valid requests per RPC, 0 INTERNAL and 0 UNKNOWN.

Starts a private PostgreSQL and `stopgate serve`, then sends every RPC of the four stopgate.v1 services N
requests drawn by tests/fuzzing.py (the strategies of tests/integration/test_fuzz.py, which runs 500 per
RPC in `make test`): timestamps over the whole int64/int32 range, NUL, astral text, strings at every
length limit, unknown enum numbers, forged page tokens. Prints one line per RPC with its status codes, and
exits 1 if any call ended INTERNAL or UNKNOWN, leaked exception text, or the server stopped answering.

    .venv/bin/python bench/fuzz.py [--examples 20000] [--only Reporting/]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
from collections import Counter
from typing import Any

import grpc
from harness import ROOT, private_database, stopgate_server
from hypothesis import HealthCheck, Phase, given, settings
from stopgate.v1 import common_pb2, stop_ingest_pb2, stop_ingest_pb2_grpc

sys.path.insert(0, str(ROOT / "tests"))  # the fuzz test's strategies and the list of RPCs live there
from contracts import METHODS
from fuzzing import acceptable, call, payloads


def fuzz_rpc(
    loop: asyncio.AbstractEventLoop,
    channel: grpc.aio.Channel,
    metadata: Any,
    path: str,
    method: Any,
    examples: int,
) -> tuple[Counter[str], list[str]]:
    """`examples` calls of one RPC: how many ended with each status code, and the unacceptable ones. Runs in
    a worker thread (hypothesis drives a plain function) while `loop` keeps running the calls."""
    codes: Counter[str] = Counter()
    failures: list[str] = []

    # Only generation: nothing raises inside, so there is nothing to shrink, and no example database.
    @settings(
        max_examples=examples,
        deadline=None,
        database=None,
        phases=[Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(frames=payloads(method))
    def one(frames: list[bytes]) -> None:
        code, details = asyncio.run_coroutine_threadsafe(
            call(channel, metadata, path, method, frames), loop
        ).result()
        codes[code.name] += 1
        if not acceptable(code, details):
            failures.append(f"{code.name}: {details[:200]!r} (request frames: {[f[:100] for f in frames]})")

    one()
    return codes, failures


async def alive(channel: grpc.aio.Channel, metadata: Any) -> bool:
    """The server still answers (a call that needs no database)."""
    reply = await stop_ingest_pb2_grpc.StopIngestStub(channel).ClassifyText(
        stop_ingest_pb2.ClassifyTextRequest(text="STOP"), metadata=metadata, timeout=10
    )
    return bool(reply.intent == common_pb2.INTENT_OPT_OUT)


async def run(address: str, methods: list[tuple[str, Any]], examples: int) -> tuple[Counter[str], bool]:
    """Fuzz each RPC in turn; print its figures. (status code counts over all RPCs, whether any failed)"""
    total: Counter[str] = Counter()
    failed = False
    loop = asyncio.get_running_loop()
    # The token as metadata, not through harness's interceptors: those drive a client stream from a
    # generator of their own, which logs a spurious error each time the server ends a stream early.
    metadata = (("authorization", f"Bearer {os.environ['STOPGATE_TOKEN']}"),)
    async with grpc.aio.insecure_channel(address) as channel:
        for path, method in methods:
            began = time.monotonic()
            codes, failures = await asyncio.to_thread(
                fuzz_rpc, loop, channel, metadata, path, method, examples
            )
            still = await alive(channel, metadata)
            total.update(codes)
            failed = failed or bool(failures) or not still
            figures = ", ".join(f"{code} {count}" for code, count in codes.most_common())
            seconds = time.monotonic() - began
            print(f"{path}: {sum(codes.values())} calls in {seconds:.0f} s: {figures}", flush=True)
            for failure in failures[:5]:
                print(f"  FAILED {failure}", flush=True)
            if not still:
                print("  FAILED the server no longer answers", flush=True)
    return total, failed


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--examples", type=int, default=20_000, help="requests per RPC")
    parser.add_argument("--only", default="", help="fuzz only the RPCs whose path contains this")
    args = parser.parse_args()
    methods = [(path, method) for path, method in METHODS if args.only in path]
    started = time.monotonic()
    with private_database() as (dsn, _), stopgate_server(dsn) as server:
        total, failed = asyncio.run(run(server.address, methods, args.examples))
    bad = total["INTERNAL"] + total["UNKNOWN"]
    print(
        f"{len(methods)} RPCs, {sum(total.values())} calls in {time.monotonic() - started:.0f} s; "
        f"INTERNAL or UNKNOWN: {bad}; {'FAILED' if failed else 'passed'}",
        flush=True,
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
