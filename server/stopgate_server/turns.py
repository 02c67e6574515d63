"""Turns on the event loop for long request work.

All the calls of a server process share one event loop. A request at the limits (1,000 events of 1,600
characters, 10,000 numbers in national format) takes up to a second of Python work to read; done in one
go, it would hold up every other call of the process, CheckBatch included, for that long. Such work runs
in `in_turns`, which pauses whenever it has held the loop for TURN_S.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from typing import TypeVar

TURN_S = 0.005  # the longest a request's work holds the event loop before the other calls get a turn
# A pause, not sleep(0): gRPC's completion-queue thread needs the GIL to hand the waiting calls to the event
# loop, and a poll with no timeout gives it up too briefly (BENCHMARKS.md, Fairness, measures both).
PAUSE_S = 0.0005

Item = TypeVar("Item")
Result = TypeVar("Result")


async def in_turns(
    work: Callable[[Sequence[Item]], list[Result]], items: Sequence[Item], chunk: int
) -> list[Result]:
    """`work(items)`, done `chunk` items at a time, with a pause for the other calls whenever it has held
    the event loop for TURN_S, the last chunk included: work done in several passes (an ingest request is
    read, then classified) holds the loop no longer than one pass. `chunk` should take well under TURN_S:
    work that fits in one turn (nearly all requests) runs without a pause."""
    results: list[Result] = []
    turn_ends = time.monotonic() + TURN_S
    for start in range(0, len(items), chunk):
        results += work(items[start : start + chunk])
        if time.monotonic() > turn_ends:
            await asyncio.sleep(PAUSE_S)
            turn_ends = time.monotonic() + TURN_S
    return results
