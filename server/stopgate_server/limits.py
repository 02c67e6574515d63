"""What a process lets its callers hold: stopgate calls running at once, streams open per connection and per
token, and how long a stream may stay idle. The call interceptor applies them to every call.

The counts are per process (workers share nothing): N workers admit N times as much, and a client's
connection goes to one of them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Hashable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from stopgate_server.config import Settings, variable
from stopgate_server.errors import DeadlineExceeded, ResourceExhausted, ServiceError, Unavailable
from stopgate_server.obs import metrics

T = TypeVar("T")

STREAM_IDLE = "STREAM_IDLE"
STREAM_NOT_READ = "STREAM_NOT_READ"
for _reason in (STREAM_IDLE, STREAM_NOT_READ):
    metrics.IDLE_STREAMS_ENDED.labels(_reason)


@dataclass(frozen=True)
class Limits:
    """The settings of the same names."""

    max_concurrent_rpcs: int
    max_open_streams_per_connection: int
    max_open_streams_per_token: int
    stream_idle_timeout_s: float

    @classmethod
    def of(cls, settings: Settings) -> Limits:
        return cls(
            max_concurrent_rpcs=settings.max_concurrent_rpcs,
            max_open_streams_per_connection=settings.max_open_streams_per_connection,
            max_open_streams_per_token=settings.max_open_streams_per_token,
            stream_idle_timeout_s=settings.stream_idle_timeout_s,
        )


class Cap:
    """At most `limit` calls held at once per key; the next is refused with RESOURCE_EXHAUSTED, its message
    made of `refusal` (with {holder}, {limit} and {setting}) and counted under the setting."""

    def __init__(self, limit: int, setting: str, refusal: str) -> None:
        self.limit = limit
        self.setting = setting
        self.refusal = refusal
        self._held: dict[Hashable, int] = {}  # keys with none held are removed: memory follows open calls
        metrics.REFUSED_CALLS.labels(setting)

    @contextlib.contextmanager
    def held(self, key: Hashable, holder: str) -> Iterator[None]:
        """Hold one place of `key` for the duration of the block, released however the block ends."""
        count = self._held.get(key, 0)
        if count >= self.limit:
            metrics.REFUSED_CALLS.labels(self.setting).inc()
            message = self.refusal.format(holder=holder, limit=self.limit, setting=variable(self.setting))
            raise ResourceExhausted(message)
        self._held[key] = count + 1
        try:
            yield
        finally:
            remaining = self._held.pop(key) - 1
            if remaining:
                self._held[key] = remaining


class Caps:
    """The caps of one process, shared by all its calls."""

    SERVER = "server"  # the one key of the process-wide cap

    def __init__(self, limits: Limits) -> None:
        self.calls = Cap(
            limits.max_concurrent_rpcs,
            "max_concurrent_rpcs",
            "{holder} is running {limit} calls, the most {setting} allows; retry with backoff",
        )
        self.streams_per_connection = Cap(
            limits.max_open_streams_per_connection,
            "max_open_streams_per_connection",
            "{holder} has {limit} streams open, the most {setting} allows; end one first",
        )
        self.streams_per_token = Cap(
            limits.max_open_streams_per_token,
            "max_open_streams_per_token",
            "{holder} has {limit} streams open, the most {setting} allows; end one first",
        )


class IdleTimeout:
    """Ends a stream whose client neither sends (a request stream) nor reads (a response stream) for
    `seconds`; None lets the stream wait for ever (health Watch: idle by design)."""

    def __init__(self, seconds: float | None) -> None:
        self.seconds = seconds

    async def receive(self, step: Awaitable[T]) -> T:
        """The next request, or UNAVAILABLE (STREAM_IDLE) when none came in time: the client opens a new
        stream when it has more to send."""
        return await self._bounded(
            step,
            lambda s: Unavailable(
                f"the stream was closed after {s:g} s without a request message"
                f" ({variable('stream_idle_timeout_s')}); open a new stream to send more",
                reason=STREAM_IDLE,
            ),
        )

    async def send(self, step: Awaitable[T]) -> T:
        """A response written, or DEADLINE_EXCEEDED (STREAM_NOT_READ) when the client read nothing in time
        (the write waits while the client's flow-control window is full). That status reaches the client
        after the data it has not read yet, so grpc_server_handled_total counts the call only then (or when
        the client goes away); its caps and its database work are released at once."""
        return await self._bounded(
            step,
            lambda s: DeadlineExceeded(
                f"the client read nothing for {s:g} s ({variable('stream_idle_timeout_s')}); the stream was"
                " ended",
                reason=STREAM_NOT_READ,
            ),
        )

    async def _bounded(self, step: Awaitable[T], expired: Callable[[float], ServiceError]) -> T:
        if self.seconds is None:
            return await step
        timeout = asyncio.timeout(self.seconds)
        try:
            async with timeout:
                return await step
        except TimeoutError:
            if not timeout.expired():
                raise
            error = expired(self.seconds)
            metrics.IDLE_STREAMS_ENDED.labels(error.reason).inc()
            raise error from None
