"""Reading a StreamEvents request shares the event loop: a request of long texts does not hold up the other
calls of its process while it is classified."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from stopgate.v1 import common_pb2, stop_ingest_pb2
from stopgate_server.api.stop_ingest import MAX_EVENTS, MAX_TEXT, _read


async def test_reading_a_request_of_long_texts_lets_other_calls_run() -> None:
    # The longest texts, each distinct (no cached classification): about a second of work on one core.
    raws = [
        stop_ingest_pb2.InboundEvent(
            event_id=f"long-{i}",
            source=common_pb2.EVENT_SOURCE_SMS_REPLY,
            phone_number="+33612345678",
            text=f"{i} {'stop ' * MAX_TEXT}"[:MAX_TEXT],
        )
        for i in range(MAX_EVENTS)
    ]
    turns = 0

    async def another_call() -> None:
        nonlocal turns
        while True:
            turns += 1
            await asyncio.sleep(0)

    other = asyncio.create_task(another_call())
    await asyncio.sleep(0)
    before = turns
    reads = await _read(raws, datetime.now(UTC))
    during = turns - before
    other.cancel()

    assert [read.event.event_id for read in reads if read.event] == [raw.event_id for raw in raws]
    # Without turns the other call would not run at all until the whole request was read.
    assert during > 1
