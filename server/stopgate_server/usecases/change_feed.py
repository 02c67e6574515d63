"""The change feed: every change of the block lists, for the teams that keep their own copy.

A consumer starts after a cursor (or now, or at the oldest change kept), first catches up from PostgreSQL,
then follows the changes as they commit, with no gap and no reordering at the hand-over: both are the same
reads of ticks (store/migrations/0013_change_feed.sql), the live ones simply of the newest. Each change
carries the cursor to resume after it; a consumer that reconnects with its last cursor misses nothing and
may see again what it had not yet recorded (at least once; change ids tell duplicates).

Each server process ticks (one process at a time records a tick) every `TICK_INTERVAL_S`, and its streams
read the ticks they have not read yet. A stream reads one page at a time and waits while its client does not
read (gRPC flow control): a slow consumer slows only its own stream. A stream with nothing to send sends its
position every `HEARTBEAT_S`, so that its consumer can save it and knows the stream is alive.
Tests: tests/integration/test_change_feed.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Collection
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import Enum

from stopgate_server.domain.change_feed import Change, Position
from stopgate_server.errors import FailedPrecondition, FieldViolation, InvalidArgument, PermissionDenied
from stopgate_server.shutdown import StreamsEnding, shutting_down
from stopgate_server.store.change_feed import ChangeFeedStore

log = logging.getLogger(__name__)
TICK_INTERVAL_S = 0.05  # the feed's delay from a commit to its delivery is about this
HEARTBEAT_S = 15.0
PAGE = 1000  # changes per message
TICKS_PER_READ = 10_000  # a consumer whose licences changed in none of them moves on by this many per read
PURGE_BATCH = 10_000
CURSOR_EXPIRED = "CURSOR_EXPIRED"


class Start(Enum):
    NOW = "NOW"  # the changes committed from now on
    OLDEST = "OLDEST"  # every change kept (STOPGATE_CHANGE_FEED_RETENTION_S)


@dataclass(frozen=True)
class FeedPage:
    """Changes in feed order (none: a heartbeat), and the position after them to resume from."""

    changes: list[Change]
    position: Position


class ChangeFeed:
    def __init__(self, store: ChangeFeedStore, streams_ending: StreamsEnding) -> None:
        self.store = store
        self.streams_ending = streams_ending
        self.latest = 0  # the latest tick this process knows of
        self._ticked = asyncio.Event()  # set, and replaced, when `latest` moves

    async def tick_forever(self) -> None:
        """Record ticks (when no other process does) and learn the latest; database failures are logged
        and retried."""
        while True:
            try:
                self._learn(await self.store.tick())
            except Exception as exc:  # the database away: the feed waits, checks go on
                log.warning("change feed tick failed; retrying", extra={"error": type(exc).__name__})
                await asyncio.sleep(1.0)
            await asyncio.sleep(TICK_INTERVAL_S)

    async def start(self, cursor: str, start: Start) -> Position:
        """Where a stream starts: after `cursor`, else now or at the oldest change kept. An invalid cursor
        is INVALID_ARGUMENT; one older than what is kept FAILED_PRECONDITION (CURSOR_EXPIRED)."""
        oldest, latest = await self.store.bounds()
        self._learn(latest)
        if not cursor:
            return Position(latest if start is Start.NOW else oldest)
        position = Position.parse(cursor)
        if position is None:
            raise InvalidArgument([FieldViolation("after_cursor", "not a cursor of this feed")])
        if position.tick > latest:
            raise InvalidArgument(
                [FieldViolation("after_cursor", "is ahead of this feed (a cursor of another deployment?)")]
            )
        if position < Position(oldest):  # the oldest tick kept is read from its end
            raise _expired(cursor)
        return position

    @staticmethod
    def licences(requested: Collection[str], limited_to: Collection[str]) -> Collection[str] | None:
        """The licences a stream follows: those requested (none: all), within the caller's own when it is
        limited to licences (PERMISSION_DENIED for another); None for every change."""
        if limited_to:
            others = sorted(set(requested) - set(limited_to))
            if others:
                raise PermissionDenied(f"the token may not follow the changes of licences {others}")
            return requested or limited_to
        return requested or None

    async def follow(self, after: Position, licences: Collection[str] | None) -> AsyncIterator[FeedPage]:
        """The changes after `after` (of `licences` only, unless None), a page at a time, for ever: first a
        page without changes at once (where the stream starts, for a consumer that started from now), then
        one without changes every `HEARTBEAT_S` while there are none. Ends with UNAVAILABLE
        (SERVER_SHUTTING_DOWN) when the server stops."""
        loop = asyncio.get_running_loop()
        yield FeedPage([], after)
        sent_at = loop.time()
        while True:
            ticked, target = self._ticked, self.latest  # the event to wait on, taken before reading
            while after < Position(target):  # not yet at the end of the target tick
                if self.streams_ending.ending:
                    raise shutting_down()
                to_tick = min(target, after.tick + TICKS_PER_READ)
                oldest, changes = await self.store.page(after, to_tick, licences, PAGE)
                if after < Position(oldest):  # purged while this stream read (a consumer behind it)
                    raise _expired(after.cursor())
                after = changes[-1].position if len(changes) == PAGE else Position(to_tick)
                if changes or loop.time() - sent_at >= HEARTBEAT_S:
                    yield FeedPage(changes, after)
                    sent_at = loop.time()
            if loop.time() - sent_at >= HEARTBEAT_S:
                yield FeedPage([], after)
                sent_at = loop.time()
            if self.latest == target:  # else a tick came while reading: read on
                until_heartbeat = max(0.0, HEARTBEAT_S - (loop.time() - sent_at))
                await self.streams_ending.unless_ending(_until(ticked, until_heartbeat))

    async def purge(self, retention_s: float) -> None:
        """Forget the ticks and changes older than the retention (the latest tick always stays)."""
        before = datetime.now(UTC) - timedelta(seconds=retention_s)
        ticks, changes = await self.store.purge(before, PURGE_BATCH)
        if ticks or changes:
            log.info("purged the change feed's old changes", extra={"ticks": ticks, "changes": changes})

    def _learn(self, latest: int) -> None:
        if latest > self.latest:
            self.latest = latest
            self._ticked.set()
            self._ticked = asyncio.Event()


async def _until(ticked: asyncio.Event, within_s: float) -> None:
    """Until `ticked` is set (the next tick), or `within_s` seconds."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(within_s):
            await ticked.wait()


def _expired(cursor: str) -> FailedPrecondition:
    return FailedPrecondition(
        f"the feed no longer holds the changes after cursor {cursor!r} (older than its retention): copy the"
        " current state again (ExportQuarantine) and follow the feed from the oldest change kept or from now",
        reason=CURSOR_EXPIRED,
    )
