"""Long request work takes turns on the event loop: the other calls of the process run in between, and
work that fits in one turn runs without a pause."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Sequence

from stopgate_server.turns import TURN_S, in_turns


async def other_calls_during(work: Awaitable[list[int]]) -> tuple[list[int], int]:
    """The result of `work`, and how many turns a concurrent task got while it ran."""
    turns = 0

    async def another_call() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(another_call())
    await asyncio.sleep(0)
    before = turns
    result = await work
    during = turns - before
    other.cancel()
    return result, during


def doubled_slowly(chunk: Sequence[int]) -> list[int]:
    """Holds the loop for a fifth of a turn per chunk, as parsing numbers or classifying long texts does."""
    until = time.monotonic() + TURN_S / 5
    while time.monotonic() < until:
        pass
    return [item * 2 for item in chunk]


async def test_long_work_lets_other_calls_run_and_keeps_the_order() -> None:
    result, during = await other_calls_during(in_turns(doubled_slowly, range(100), chunk=2))
    assert result == [item * 2 for item in range(100)]
    assert during >= 5  # 50 chunks of a fifth of a turn: a pause after every five or six


async def test_work_that_fits_in_one_turn_runs_without_a_pause() -> None:
    result, during = await other_calls_during(in_turns(list, range(1000), chunk=10))
    assert result == list(range(1000))
    assert during == 0


async def test_passes_one_after_another_never_hold_the_loop_longer_than_one_turn() -> None:
    """Reading then classifying a request: the second pass starts after a pause if the first used its turn."""

    async def two_passes() -> list[int]:
        first = await in_turns(doubled_slowly, range(5), chunk=1)  # a whole turn, a pause only at its end
        return first + await in_turns(doubled_slowly, range(2), chunk=1)

    result, during = await other_calls_during(two_passes())
    assert result == [item * 2 for item in [*range(5), *range(2)]]
    assert during >= 1
