"""The event-loop lag probe: work that holds the loop shows in `stopgate_event_loop_lag_seconds`."""

from __future__ import annotations

import asyncio
import time

from prometheus_client import REGISTRY
from stopgate_server.obs import metrics


def observed(at_most: str = "+Inf") -> float:
    value = REGISTRY.get_sample_value("stopgate_event_loop_lag_seconds_bucket", {"le": at_most})
    return value or 0.0


async def test_a_held_loop_is_observed_as_lag() -> None:
    probe = asyncio.create_task(metrics.watch_event_loop(interval_s=0.01))
    await asyncio.sleep(0.05)  # a few quick probes
    before_all, before_long = observed(), observed() - observed("0.25")
    time.sleep(0.3)  # noqa: ASYNC251 - holds the loop, as a long request read in one go would
    await asyncio.sleep(0.05)
    probe.cancel()
    assert observed() > before_all
    # the probe that waited for the sleep (and that of any server the test session runs on this loop)
    assert observed() - observed("0.25") >= before_long + 1
