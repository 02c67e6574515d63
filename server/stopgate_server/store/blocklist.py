"""An in-memory index of the block lists, derived from PostgreSQL and kept current by LISTEN/NOTIFY.

Every insert into or delete from `quarantine` and `shortcode_stop_list` is announced by a trigger on the
channel `stopgate_blocklist` when it commits (up to 64 changed rows per notification, each a line
"#@<since, microseconds since the epoch>" then a line "<q|s>|<+|->|<licence_id or shortcode>|<phone>"; a
TRUNCATE as a line "#!q" or "#!s"). The index listens on a connection of its own, loads a snapshot after
LISTEN took effect, and applies the announcements in commit order.

It can prove it is current: every HEARTBEAT_INTERVAL_S it sends a heartbeat through the same channel.
PostgreSQL delivers notifications in commit order, so once a heartbeat sent at time h comes back, every
change committed before h has been applied. `is_current` is true only while the last heartbeat back was
sent less than MAX_STALENESS_S ago, the listening connection is open, and no `sync` is waiting; callers
fall back to PostgreSQL otherwise. `sync`, called after a write, sends a heartbeat and waits for it, so
the writing process answers from an index that holds its own write.

A current index answers a check on its own, `since` included: no query per batch. It may be up to
MAX_STALENESS_S behind; invariant 3 bounds only how late a STOP may block, and a number released in
another process may still be blocked for that long (never the reverse, which would be a wrong ALLOW).
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from operator import itemgetter

import asyncpg

from stopgate_server.store.phone_set import PhoneSet, PhoneSetLoader, numbers_of
from stopgate_server.store.queries import QUERIES

log = logging.getLogger(__name__)

CHANNEL = "stopgate_blocklist"
HEARTBEAT_INTERVAL_S = 0.1
MAX_STALENESS_S = 0.5
SNAPSHOT_CHUNK = 10_000  # rows per fetch; a fetch's objects leave heap behind (50,000: 62 B a number at 1M)
Listed = dict[str, int]  # phone → since, in microseconds since the epoch
UNKNOWN_SINCE = -1  # an entry announced without its time (by a trigger older than migration 0005)


def spare_from_garbage_collection() -> None:
    """Every full garbage collection walks each tracked container entry by entry: ~50 ms per million index
    entries of sets, a pause for every call in flight. Large lists are now numpy arrays, which the collector
    does not walk, but small lists are still dicts. The index's lists cannot form reference cycles and are
    freed by reference counting when replaced, so after a load the collector is told to leave everything
    alive now alone (after one collection, so that no garbage is kept)."""
    gc.collect()
    gc.freeze()


class BlocklistIndex:
    """{licence: phones} and {shortcode: phones} PhoneSets, current within MAX_STALENESS_S (module doc)."""

    def __init__(self, dsn: str, pool: asyncpg.Pool) -> None:
        self._dsn = dsn
        self._pool = pool
        self._quarantine: dict[str, PhoneSet] = {}
        self._stop_lists: dict[str, PhoneSet] = {}
        self._listener: asyncpg.Connection | None = None
        self._listener_lock = asyncio.Lock()
        self._loaded = False
        self._buffer: list[str] | None = None  # announcements received while a snapshot loads
        self._token = uuid.uuid4().hex[:12]  # tells this process's heartbeats from the others'
        self._heartbeats = itertools.count(1)
        self._sent_at: dict[int, float] = {}
        self._confirmed_seq = 0
        self._confirmed_sent_at = float("-inf")
        self._required_seq = 0
        self._confirmations: dict[int, asyncio.Future[None]] = {}
        self._task: asyncio.Task[None] | None = None
        self.on_round_trip: Callable[[float], None] | None = None  # heartbeat round trips, in seconds

    @property
    def quarantine_size(self) -> int:
        return sum(map(len, self._quarantine.values()))

    @property
    def stop_list_size(self) -> int:
        return sum(map(len, self._stop_lists.values()))

    @property
    def size(self) -> int:
        return self.quarantine_size + self.stop_list_size

    def is_current(self) -> bool:
        return (
            self._loaded
            and self._listener is not None
            and not self._listener.is_closed()
            and self._confirmed_seq >= self._required_seq
            and time.monotonic() - self._confirmed_sent_at <= MAX_STALENESS_S
        )

    def find(self, licence_id: str, shortcode: str, phones: Sequence[str]) -> tuple[Listed, Listed] | None:
        """The phones (E.164) quarantined in the licence, and those on the shortcode's stop list (when
        shortcode is not ""), with their `since`; None when one of them has no known `since`."""
        quarantine = self._quarantine.get(licence_id)
        stop_list = self._stop_lists.get(shortcode) if shortcode else None
        in_arrays = (quarantine and quarantine.has_array) or (stop_list and stop_list.has_array)
        numbers = numbers_of(phones) if in_arrays else None  # parsed once for both lists
        quarantined = quarantine.members(phones, numbers) if quarantine else {}
        stop_listed = stop_list.members(phones, numbers) if stop_list else {}
        if UNKNOWN_SINCE in quarantined.values() or UNKNOWN_SINCE in stop_listed.values():
            return None
        return quarantined, stop_listed

    async def start(self) -> None:
        """Connect, listen and load a snapshot in the background (checks use PostgreSQL until it is loaded),
        then keep the index current, reconnecting when the connection is lost."""
        self._task = asyncio.create_task(self._run(), name="blocklist-index")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.close()

    async def sync(self, timeout_s: float = 1.0) -> None:
        """Wait until every change committed before this call is in the index. Until then (or when the
        wait times out) `is_current` is false, so no check is answered from an index missing the change."""
        if self._listener is None or self._listener.is_closed():
            return  # not listening: not current either, so checks go to PostgreSQL, which has the change
        seq = next(self._heartbeats)
        self._required_seq = max(self._required_seq, seq)
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations[seq] = confirmed
        try:
            await self._send_heartbeat(seq)
            await asyncio.wait_for(confirmed, timeout_s)
        except (TimeoutError, OSError, asyncpg.PostgresError, asyncpg.InterfaceError):
            log.warning("block list index did not confirm a write in time; checks use PostgreSQL meanwhile")
        finally:
            self._confirmations.pop(seq, None)

    async def _run(self) -> None:
        while True:
            try:
                if self._listener is None or self._listener.is_closed():
                    self._loaded = False
                    await self._connect_and_load()
                await self._send_heartbeat(next(self._heartbeats))
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self._loaded = False
                log.warning(
                    "block list index lost PostgreSQL; checks use PostgreSQL", extra={"error": str(exc)}
                )
                await asyncio.sleep(1.0)
                continue
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    async def _connect_and_load(self) -> None:
        if self._listener is not None and not self._listener.is_closed():
            await self._listener.close()
        self._listener = await asyncpg.connect(self._dsn, timeout=10)
        self._sent_at.clear()
        self._buffer = []
        await self._listener.add_listener(CHANNEL, self._on_notification)
        started = time.monotonic()
        loaders: defaultdict[tuple[str, str], PhoneSetLoader] = defaultdict(PhoneSetLoader)
        async with self._pool.acquire() as connection, connection.transaction(isolation="repeatable_read"):
            cursor = await connection.cursor(QUERIES["blocklist_snapshot"])
            while rows := await cursor.fetch(SNAPSHOT_CHUNK):
                chunk: defaultdict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
                for kind, list_key, phone, since in rows:
                    chunk[kind, list_key].append((phone, since))
                for list_id, entries in chunk.items():
                    loaders[list_id].extend(entries)
        # Built in a worker thread: the sorts (numpy, without the GIL) take 1-3 s at 10M entries, during which
        # the calls this process serves would otherwise wait. Reading the rows there too made loads slower.
        lists = await asyncio.to_thread(
            lambda: {list_id: loader.build() for list_id, loader in loaders.items()}
        )
        self._quarantine = {key: phone_set for (kind, key), phone_set in lists.items() if kind == "q"}
        self._stop_lists = {key: phone_set for (kind, key), phone_set in lists.items() if kind == "s"}
        buffered, self._buffer = self._buffer, None
        self._apply(buffered)
        spare_from_garbage_collection()
        self._loaded = True
        log.info(
            "block list index loaded",
            extra={"entries": self.size, "seconds": round(time.monotonic() - started, 3)},
        )

    async def _send_heartbeat(self, seq: int) -> None:
        assert self._listener is not None
        self._sent_at[seq] = time.monotonic()
        async with self._listener_lock:
            await self._listener.execute(QUERIES["blocklist_heartbeat"], f"h|{self._token}|{seq}")

    def _on_notification(self, _connection: object, _pid: int, _channel: str, message: object) -> None:
        payload = str(message)
        if payload.startswith("h|"):
            _, token, seq = payload.split("|")
            if token == self._token:
                self._on_heartbeat(int(seq))
        elif self._buffer is not None:
            self._buffer.extend(payload.split("\n"))
        else:
            self._apply(payload.split("\n"))

    def _on_heartbeat(self, seq: int) -> None:
        sent_at = self._sent_at.pop(seq, None)
        if sent_at is None:  # sent on a connection that has been replaced since
            return
        if self.on_round_trip is not None:
            self.on_round_trip(time.monotonic() - sent_at)
        if seq > self._confirmed_seq:
            self._confirmed_seq, self._confirmed_sent_at = seq, sent_at
        for waiting in [s for s in self._confirmations if s <= seq]:
            future = self._confirmations.pop(waiting)
            if not future.done():
                future.set_result(None)

    def _apply(self, lines: list[str]) -> None:
        """Apply announced lines in order, each run of additions to one list at once."""
        for (kind, operation, list_key), run in itertools.groupby(_changes(lines), key=itemgetter(0, 1, 2)):
            lists = self._quarantine if kind == "q" else self._stop_lists
            phone_set = lists.get(list_key)
            if operation == "!":
                lists.clear()
            elif operation == "+":
                if phone_set is None:
                    phone_set = lists[list_key] = PhoneSet()
                phone_set.update([(phone, since) for *_, phone, since in run])
            elif phone_set is not None:
                for *_, phone, _ in run:
                    phone_set.discard(phone)


def _changes(lines: list[str]) -> Iterator[tuple[str, str, str, str, int]]:
    """(kind, operation, list key, phone, since) of each announced change, in order. "#@<since>" gives
    the time of the entry on the next line; "#!q" and "#!s" say the quarantine or the stop lists were
    truncated (operation "!"); other "#" lines are the nonce that keeps PostgreSQL from dropping a
    notification identical to another."""
    since = UNKNOWN_SINCE
    for line in lines:
        if line.startswith("#"):
            since = int(line[2:]) if line.startswith("#@") else UNKNOWN_SINCE
            if line.startswith("#!"):
                yield line[2:], "!", "", "", UNKNOWN_SINCE
            continue
        kind, operation, rest = line.split("|", 2)
        list_key, phone = rest.rsplit("|", 1)
        yield kind, operation, list_key, phone, since
        since = UNKNOWN_SINCE
