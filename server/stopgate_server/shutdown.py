"""What a stopping server needs to know: the calls it is running, and whether request streams must end.

The sequence itself (health NOT_SERVING, drain delay, no new calls, grace, cut) is `Application.stop`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Iterator
from dataclasses import dataclass
from typing import TypeVar

from stopgate_server.errors import Unavailable

Request = TypeVar("Request")


def shutting_down() -> Unavailable:
    """How a request stream ends on a stopping server (clients reconnect on UNAVAILABLE)."""
    return Unavailable(
        "the server is shutting down: open the stream again (another server will answer); StreamEvents:"
        " resend what was not acked",
        reason="SERVER_SHUTTING_DOWN",
    )


@dataclass(frozen=True)
class RunningCall:
    method: str
    ran_s: float


class InFlightCalls:
    """The calls a server process is running (method and start), so that a shutdown can say what it cut."""

    def __init__(self) -> None:
        self._calls: dict[int, tuple[str, float]] = {}
        self._numbers = itertools.count()

    @contextlib.contextmanager
    def track(self, method: str) -> Iterator[None]:
        number = next(self._numbers)
        self._calls[number] = (method, time.monotonic())
        try:
            yield
        finally:
            del self._calls[number]

    def running(self) -> list[RunningCall]:
        """The calls running now, the longest-running first."""
        now = time.monotonic()
        calls = sorted(self._calls.values(), key=lambda call: call[1])
        return [RunningCall(method, round(now - started, 3)) for method, started in calls]


class StreamsEnding:
    """Set once a stopping server accepts no more calls: request streams (StreamEvents) end then, after the
    request in flight, so that their clients reconnect to another server within the grace period."""

    def __init__(self) -> None:
        self._event = asyncio.Event()
        self._reads: set[asyncio.Timeout] = set()  # of the streams waiting for their next request

    @property
    def ending(self) -> bool:
        return self._event.is_set()

    def begin(self) -> None:
        self._event.set()
        now = asyncio.get_running_loop().time()
        for read in self._reads:
            read.reschedule(now)  # ends the wait at once

    async def requests(self, requests: AsyncIterator[Request]) -> AsyncIterator[Request]:
        """The stream's requests until it must end; then UNAVAILABLE, reason SERVER_SHUTTING_DOWN. The stream
        only ends while waiting for its next request: one handed over is always handled and acked (one
        arriving just as the stream ends is not acked, so its client sends it again). Each wait is a timeout
        without a deadline that `begin` expires: no task per request."""
        iterator = aiter(requests)
        while not self._event.is_set():
            read = asyncio.timeout(None)
            self._reads.add(read)
            try:
                async with read:
                    request = await anext(iterator)
            except StopAsyncIteration:
                return
            except TimeoutError:
                if not read.expired():
                    raise
                break
            finally:
                self._reads.discard(read)
            yield request
        raise shutting_down()

    async def unless_ending(self, stream: Awaitable[None]) -> None:
        """Run a stream that only ends when its client goes (the health Watch, which has told its client
        NOT_SERVING by then) until streams must end; then UNAVAILABLE, reason SERVER_SHUTTING_DOWN. Left
        open, it would hold every shutdown for the whole grace period."""
        running = asyncio.ensure_future(stream)
        ending = asyncio.ensure_future(self._event.wait())
        try:
            await asyncio.wait((running, ending), return_when=asyncio.FIRST_COMPLETED)
        finally:
            ending.cancel()
            if not running.done():
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
        if running.cancelled():
            raise shutting_down()
        running.result()


class StopSignals:
    """SIGTERM and SIGINT as a server process sees them. The first asks for a drain (`requested`); a SIGINT
    after it (Ctrl-C twice) asks to skip the drain delay (`hurry`). A repeated SIGTERM changes nothing, so
    that an orchestrator repeating it does not cut the drain short."""

    def __init__(self) -> None:
        self.requested = asyncio.Event()
        self.hurry = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self._received, signum)

    def _received(self, signum: int) -> None:
        if self.requested.is_set() and signum == signal.SIGINT:
            self.hurry.set()
        self.requested.set()
