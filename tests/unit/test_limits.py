"""The caps and the idle timeout of limits.py, alone: counts exact however a holder leaves, refusals that name
the setting, and only the timeout's own expiry ending a stream."""

from __future__ import annotations

import asyncio

import pytest
from stopgate_server.errors import DeadlineExceeded, ResourceExhausted, Unavailable
from stopgate_server.limits import Cap, IdleTimeout


def cap() -> Cap:
    return Cap(
        2, "max_open_streams_per_token", "{holder} has {limit} streams open, the most {setting} allows"
    )


def test_a_cap_refuses_past_its_limit_per_key_naming_the_setting() -> None:
    streams = cap()
    with streams.held("a", "token 'a'"), streams.held("a", "token 'a'"):
        with (
            pytest.raises(ResourceExhausted) as refused,
            streams.held("a", "token 'a'"),
        ):
            pass
        assert refused.value.message == (
            "token 'a' has 2 streams open, the most STOPGATE_MAX_OPEN_STREAMS_PER_TOKEN allows"
        )
        with streams.held("b", "token 'b'"):
            pass


def test_a_place_is_freed_however_its_holder_ends() -> None:
    streams = cap()
    for ending in (ValueError, asyncio.CancelledError):
        with pytest.raises(ending), streams.held("a", "token 'a'"), streams.held("a", "token 'a'"):
            raise ending
    with (  # both places are free again, and only those
        streams.held("a", "token 'a'"),
        streams.held("a", "token 'a'"),
        pytest.raises(ResourceExhausted),
        streams.held("a", "token 'a'"),
    ):
        pass


async def test_the_idle_timeout_ends_a_step_that_waits_too_long() -> None:
    idle = IdleTimeout(0.05)
    with pytest.raises(Unavailable) as silent:
        await idle.receive(asyncio.sleep(10))
    assert silent.value.reason == "STREAM_IDLE"
    assert "0.05 s without a request message (STOPGATE_STREAM_IDLE_TIMEOUT_S)" in silent.value.message
    with pytest.raises(DeadlineExceeded) as unread:
        await idle.send(asyncio.sleep(10))
    assert unread.value.reason == "STREAM_NOT_READ"
    assert await idle.receive(asyncio.sleep(0, "in time")) == "in time"
    assert await IdleTimeout(None).receive(asyncio.sleep(0.1, "no limit")) == "no limit"


async def test_a_timeout_of_the_step_itself_is_not_idleness() -> None:
    async def failing() -> None:
        raise TimeoutError("the step's own")

    with pytest.raises(TimeoutError, match="the step's own"):
        await IdleTimeout(10).receive(failing())
