"""An in-memory index of the block lists, derived from PostgreSQL and kept current by LISTEN/NOTIFY.

Every insert into or delete from `quarantine` and `shortcode_stop_list` is announced by a trigger on the
channel `stopgate_blocklist` when it commits (up to 64 changed rows per notification, each a line
"#@<since, microseconds since the epoch>" then a line "<q|s>|<+|->|<licence_id or shortcode>|<phone>"; a
TRUNCATE as a line "#!q" or "#!s"). The index listens on a connection of its own (application_name
`stopgate-blocklist-index`), loads a snapshot after LISTEN took effect, and applies the announcements in
commit order.

It can prove it is current: every HEARTBEAT_INTERVAL_S it sends a heartbeat through the same channel.
PostgreSQL delivers notifications in commit order, so once a heartbeat sent at time h comes back, every
change committed before h has been applied. `is_current` is true only while the last heartbeat back was
sent less than MAX_STALENESS_S ago, the listening connection is open, no load is under way and no `sync`
is waiting; callers fall back to PostgreSQL otherwise. `sync`, called after a write, sends a heartbeat and
waits for it, so the writing process answers from an index that holds its own write.

It heals (invariant 8). Whatever goes wrong (the connection lost or terminated, PostgreSQL restarting, a
heartbeat not answered within SEND_TIMEOUT_S, none back for HUNG_AFTER_S, a bug), the failure is logged
with its traceback and reported to `on_restart`, the connection is dropped, and the index reconnects after
a short capped backoff and loads a new snapshot. Every wait on the listening connection is bounded.

Writes that bypass the triggers (`session_replication_role = replica`, as logical replication and
`pg_restore --disable-triggers` use) are announced by nothing: every reconcile interval the index compares
each list with PostgreSQL's (a Digest: size, sum and xor of its phones, xor of them scrambled) and reloads the
lists that differ.

A current index answers a check on its own, `since` included: no query per batch. It may be up to
MAX_STALENESS_S behind; invariant 3 bounds only how late a STOP may block, and a number released in
another process may still be blocked for that long (never the reverse, which would be a wrong ALLOW).
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import logging
import random
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Collection, Iterator, Sequence
from operator import itemgetter

import asyncpg

from stopgate_server.store import CONNECTION_ERRORS
from stopgate_server.store.phone_set import Digest, PhoneSet, PhoneSetLoader, numbers_of
from stopgate_server.store.queries import QUERIES

log = logging.getLogger(__name__)

CHANNEL = "stopgate_blocklist"
APPLICATION_NAME = "stopgate-blocklist-index"  # of the listening connection, for operators and tests
HEARTBEAT_INTERVAL_S = 0.1
MAX_STALENESS_S = 0.5
SEND_TIMEOUT_S = 1.0  # a statement on the listening connection slower than this: the connection is hung
HUNG_AFTER_S = 2.0  # heartbeats sent but none back for this long: the connection is hung
CONNECT_TIMEOUT_S = 2.0
CLOSE_TIMEOUT_S = 1.0
STOP_TIMEOUT_S = 5.0
# Reconnect after 0.05 s, doubling up to 1 s (each with jitter, so that processes spread their attempts):
# once PostgreSQL is reachable again, the next attempt is at most a second away.
RECONNECT_MIN_S = 0.05
RECONNECT_MAX_S = 1.0
RECONCILE_SESSION = {  # the settings of the reconciliation's connection
    "application_name": "stopgate-blocklist-reconcile",
    "statement_timeout": "120000",  # the aggregate reads every entry: longer than the pool's statements may
    # Background work: one core of PostgreSQL, never all of them, so that the statements of the calls being
    # served do not queue behind a parallel scan (BENCHMARKS.md, Reconciliation).
    "max_parallel_workers_per_gather": "0",
}
RECONCILE_TIMEOUT_S = 300.0
LOAD_TIMEOUT_S = 300.0  # reading every list: about ten times a load of 10M entries (BENCHMARKS.md, Sizing)
MAX_TOUCHED = 100_000  # changes during one comparison beyond which the round gives up (and runs next time)
SNAPSHOT_CHUNK = 10_000  # rows per fetch: a fetch's objects leave heap behind (BENCHMARKS.md, Sizing)
Listed = dict[str, int]  # phone → since, in microseconds since the epoch
ListId = tuple[str, str]  # ("q", licence_id) or ("s", shortcode)
UNKNOWN_SINCE = -1  # an entry announced without its time (by a trigger older than migration 0005)
KINDS = {"q": "quarantine", "s": "stop_list"}
SEND_ERRORS: tuple[type[Exception], ...] = (*CONNECTION_ERRORS, asyncpg.PostgresError)  # a heartbeat not sent


def spare_from_garbage_collection() -> None:
    """Every full garbage collection walks each tracked container entry by entry (BENCHMARKS.md, Sizing):
    a pause for every call in flight. Large lists are now numpy arrays, which the collector
    does not walk, but small lists are still dicts. The index's lists cannot form reference cycles and are
    freed by reference counting when replaced, so after a load the collector is told to leave everything
    alive now alone (after one collection, so that no garbage is kept)."""
    gc.collect()
    gc.freeze()


class BlocklistIndex:
    """{licence: phones} and {shortcode: phones} PhoneSets, current within MAX_STALENESS_S (module doc)."""

    def __init__(self, dsn: str, pool: asyncpg.Pool, reconcile_interval_s: float = 30.0) -> None:
        self._dsn = dsn
        self._pool = pool
        self._reconcile_interval_s = reconcile_interval_s
        self._quarantine: dict[str, PhoneSet] = {}
        self._stop_lists: dict[str, PhoneSet] = {}
        self._listener: asyncpg.Connection | None = None
        self._load_lock = asyncio.Lock()  # one load at a time: they share the buffer
        self._generation = 0  # connections made so far: a comparison spanning a reload is void
        self._loaded = False
        self._buffer: list[str] | None = None  # announcements received while a snapshot loads
        self._failure: Exception | None = None  # raised by a notification, for the listening task to report
        # The phones of each list changed during a comparison (None: none under way, or too many changes).
        self._touched: defaultdict[ListId, set[str]] | None = None
        self._touched_count = 0
        self._truncations = 0
        self._token = uuid.uuid4().hex[:12]  # tells this process's heartbeats from the others'
        self._heartbeats = itertools.count(1)
        self._sent_at: dict[int, float] = {}
        self._heard_at = 0.0
        self._confirmed_seq = 0
        self._confirmed_sent_at = float("-inf")
        self._required_seq = 0
        self._confirmations: dict[int, asyncio.Future[None]] = {}
        self._sends: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None
        self._reconciler: asyncio.Task[None] | None = None
        self.on_round_trip: Callable[[float], None] | None = None  # heartbeat round trips, in seconds
        self.on_restart: Callable[[], None] | None = None  # each failure the index started over after
        # (KINDS value, how many lists of that kind) reloaded by a reconciliation
        self.on_reloaded: Callable[[str, int], None] | None = None

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
            and self._buffer is None
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
        then keep the index current, reconnecting whenever anything fails, and reconcile it with PostgreSQL
        every reconcile interval."""
        self._task = asyncio.create_task(self._run(), name="blocklist-index")
        self._reconciler = asyncio.create_task(self._reconcile_forever(), name="blocklist-reconcile")

    async def stop(self) -> None:
        """Stop listening and reconciling. Never raises (a failure is logged) and returns within
        STOP_TIMEOUT_S + CLOSE_TIMEOUT_S, whatever state PostgreSQL or the connection is in."""
        tasks = [task for task in (self._task, self._reconciler) if task is not None]
        self._task = self._reconciler = None
        for task in (*tasks, *self._sends):
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=STOP_TIMEOUT_S)
        for task in tasks:
            if task.done() and not task.cancelled() and task.exception() is not None:
                log.error("block list index task had failed", exc_info=task.exception())
            elif not task.done():
                log.error(
                    "block list index task did not stop in time; left behind", extra={"task": task.get_name()}
                )
        self._loaded = False
        listener, self._listener = self._listener, None
        if listener is not None:
            await _close(listener)

    async def sync(self, timeout_s: float = 1.0) -> bool:
        """Wait until every change committed before this call is in the index, for `timeout_s` at most;
        return whether it is. Until then (or when the wait times out) `is_current` is false, so no check is
        answered from an index missing the change. The heartbeat goes through the pool, not the listening
        connection, so that a hung listener holds no caller up for longer than `timeout_s`."""
        if self._listener is None or self._listener.is_closed():
            # not listening: not current either, so checks go to PostgreSQL, which has the change
            return False
        seq = next(self._heartbeats)
        self._required_seq = max(self._required_seq, seq)
        confirmed = asyncio.get_running_loop().create_future()
        self._confirmations[seq] = confirmed
        # A send cut short by the timeout finishes on its own (asyncpg hands a connection back to the pool
        # only once a cancelled statement has ended), bounded by its own timeout.
        send = asyncio.create_task(self._send_through_pool(seq))
        self._sends.add(send)
        send.add_done_callback(_forget(self._sends))
        try:
            async with asyncio.timeout(timeout_s):
                await asyncio.shield(send)
                await confirmed
            return True
        except SEND_ERRORS as exc:
            log.warning(
                "block list index did not confirm a write in time; checks use PostgreSQL meanwhile",
                extra={"error": repr(exc)},
            )
            return False
        finally:
            self._confirmations.pop(seq, None)

    async def reconcile(self) -> set[ListId]:
        """Compare every list with PostgreSQL's and reload those that differ, looked at twice so that
        changes in flight never cause a reload; return the lists reloaded. A round that cannot tell (the
        index is not current, or it reloaded meanwhile) reloads nothing."""
        differing = await self._differing(None)
        if differing:
            differing = await self._differing(differing) or set()
        if not differing:
            return set()
        log.warning(
            "block lists differed from PostgreSQL (written bypassing the triggers?); reloading them",
            extra={kind: sorted(key for k, key in differing if k == short) for short, kind in KINDS.items()},
        )
        if not await self._reload(differing):
            return set()  # reconnecting: the full load under way reads every list anew
        if self.on_reloaded is not None:
            for short, kind in KINDS.items():
                if reloaded := sum(k == short for k, _ in differing):
                    self.on_reloaded(kind, reloaded)
        return differing

    async def _run(self) -> None:
        """Keep the index current until cancelled: (re)connect and load, listen, and start over after any
        failure, with backoff."""
        failures = 0
        while True:
            try:
                async with self._load_lock:
                    await self._connect_and_load()
                failures = 0
                await self._keep_current()
            except Exception:
                failures += 1
                jitter = random.uniform(0.5, 1)  # noqa: S311 - jitter, not a secret
                delay = min(RECONNECT_MAX_S, RECONNECT_MIN_S * 2 ** (failures - 1)) * jitter
                self._drop_listener()
                log.error(
                    "block list index failed; checks use PostgreSQL until it has reconnected and reloaded",
                    exc_info=True,
                    extra={"failures_in_a_row": failures, "retry_in_s": round(delay, 3)},
                )
                if self.on_restart is not None:
                    self.on_restart()
                await asyncio.sleep(delay)

    async def _connect_and_load(self) -> None:
        self._generation += 1
        self._loaded = False
        self._failure = None
        self._sent_at.clear()
        self._confirmed_sent_at = float("-inf")
        self._buffer = []
        try:
            self._listener = await asyncpg.connect(
                self._dsn, timeout=CONNECT_TIMEOUT_S, server_settings={"application_name": APPLICATION_NAME}
            )
            async with asyncio.timeout(SEND_TIMEOUT_S):
                await self._listener.add_listener(CHANNEL, self._on_notification)
            started = time.monotonic()
            lists = await self._read(None)
            self._quarantine = {key: phone_set for (kind, key), phone_set in lists.items() if kind == "q"}
            self._stop_lists = {key: phone_set for (kind, key), phone_set in lists.items() if kind == "s"}
        finally:
            buffered, self._buffer = self._buffer or [], None
        self._apply(buffered)
        spare_from_garbage_collection()
        self._heard_at = time.monotonic()
        self._loaded = True
        log.info(
            "block list index loaded",
            extra={"entries": self.size, "seconds": round(time.monotonic() - started, 3)},
        )

    async def _keep_current(self) -> None:
        """Send a heartbeat every HEARTBEAT_INTERVAL_S; raise as soon as the listening connection is lost,
        hung or broken."""
        while True:
            if self._failure is not None:
                raise self._failure
            listener = self._listener
            if listener is None or listener.is_closed():
                raise ConnectionError("the listening connection was closed")
            if time.monotonic() - self._heard_at > HUNG_AFTER_S:
                await asyncio.sleep(0)  # answers already received but not yet read (the loop was held) count
            silence = time.monotonic() - self._heard_at
            if silence > HUNG_AFTER_S:
                raise TimeoutError(
                    f"no heartbeat came back for {silence:.1f} s: the listening connection hangs"
                )
            seq = next(self._heartbeats)
            self._sent_at[seq] = time.monotonic()
            await asyncio.wait_for(
                listener.execute(*QUERIES["blocklist_heartbeat"].bind(payload=self._heartbeat(seq))),
                SEND_TIMEOUT_S,
            )
            await asyncio.sleep(HEARTBEAT_INTERVAL_S)

    def _drop_listener(self) -> None:
        """Forget the listening connection at once; terminate, not close: it may hang."""
        self._loaded = False
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.terminate()

    async def _read(self, only: Collection[ListId] | None) -> dict[ListId, PhoneSet]:
        """Every list (or those of `only`) as PostgreSQL has them now. Bounded by LOAD_TIMEOUT_S: a pool
        connection whose peer went silent (a partition) would otherwise hold the index, which cannot
        reconnect while a load holds its lock, until TCP gives up."""
        loaders: defaultdict[ListId, PhoneSetLoader] = defaultdict(PhoneSetLoader)
        async with (
            asyncio.timeout(LOAD_TIMEOUT_S),
            self._pool.acquire() as connection,
            connection.transaction(isolation="repeatable_read"),
        ):
            if only is None:
                cursor = await connection.cursor(QUERIES["blocklist_snapshot"].sql)
            else:
                cursor = await connection.cursor(
                    *QUERIES["blocklist_snapshot_of"].bind(**_keys_by_kind(only))
                )
            while rows := await cursor.fetch(SNAPSHOT_CHUNK):
                chunk: defaultdict[ListId, list[tuple[str, int]]] = defaultdict(list)
                for kind, list_key, phone, since in rows:
                    chunk[kind, list_key].append((phone, since))
                for list_id, entries in chunk.items():
                    loaders[list_id].extend(entries)
        # Built in a worker thread: the sorts (numpy, without the GIL) take seconds at 10M entries, during
        # which the calls this process serves would otherwise wait. Reading the rows there too made loads
        # slower (BENCHMARKS.md, Sizing).
        return await asyncio.to_thread(
            lambda: {list_id: loader.build() for list_id, loader in loaders.items()}
        )

    async def _reload(self, list_ids: Collection[ListId]) -> bool:
        """Replace the lists with PostgreSQL's, buffering announcements meanwhile as a full load does; False
        when the index is reconnecting instead (its full load reads every list anew)."""
        async with self._load_lock:
            if not self._loaded:
                return False
            self._buffer = []
            try:
                lists = await self._read(list_ids)
                for list_id in list_ids:
                    kind, key = list_id
                    if list_id in lists:
                        self._lists(kind)[key] = lists[list_id]
                    else:
                        self._lists(kind).pop(key, None)
            finally:
                buffered, self._buffer = self._buffer or [], None
                self._apply(buffered)
        spare_from_garbage_collection()
        return True

    async def _settled(self, generation: int) -> bool:
        """Whether every change committed before now is in the index, loaded on the same connection as at
        `generation`. Only this caller's heartbeat must come back: under steady ingest some other `sync` is
        nearly always waiting, which keeps `is_current` false but says nothing of this round."""
        return await self.sync() and self._loaded and self._buffer is None and self._generation == generation

    async def _reconcile_forever(self) -> None:
        while True:
            await asyncio.sleep(self._reconcile_interval_s)
            try:
                await self.reconcile()
            except CONNECTION_ERRORS as exc:
                log.warning(
                    "block list reconciliation failed; next round to come", extra={"error": repr(exc)}
                )
            except Exception:
                log.error("block list reconciliation failed; next round to come", exc_info=True)

    async def _differing(self, only: Collection[ListId] | None) -> set[ListId] | None:
        """The lists (all, or those of `only`) whose phones differ between PostgreSQL and the index, or None
        when this round cannot tell.

        PostgreSQL's digests are taken in one snapshot S, between two heartbeats h1 and h2: the index holds
        every change committed before h1, and after h2 every change committed before S, plus some committed
        after it. The phones of a list changed in the index after h1 (`touched`) are the only ones whose state
        in S the index cannot know: they are left out of both sides, their state in S read in the same
        snapshot. Each list's digest is taken at once with its touched phones, the event loop free between
        lists."""
        generation, truncations = self._generation, self._truncations
        connection = await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT_S,
            server_settings=RECONCILE_SESSION,
        )
        try:
            async with (
                asyncio.timeout(RECONCILE_TIMEOUT_S),
                connection.transaction(isolation="repeatable_read", readonly=True),
            ):
                if not await self._settled(generation):
                    return None
                self._touched, self._touched_count = defaultdict(set), 0
                if only is None:
                    rows = await connection.fetch(QUERIES["blocklist_summary"].sql)
                else:
                    rows = await connection.fetch(
                        *QUERIES["blocklist_summary_of"].bind(**_keys_by_kind(only))
                    )
                if not await self._settled(generation):
                    return None
                theirs = {
                    (r["kind"], r["list_key"]): Digest.of(
                        r["size"], int(r["total"]), r["mixed"], r["scrambled"]
                    )
                    for r in rows
                }
                list_ids = set(theirs) | self._list_ids() if only is None else set(only)
                ours: dict[ListId, Digest] = {}
                left_out: list[tuple[str, str, str]] = []
                for list_id in list_ids:
                    touched = self._touched_phones(list_id)
                    if touched is None:
                        return None
                    kind, key = list_id
                    phone_set = self._lists(kind).get(key)
                    ours[list_id] = self._digest(list_id).without(
                        [p for p in touched if phone_set is not None and p in phone_set]
                    )
                    left_out += [(kind, key, phone) for phone in touched]
                    await asyncio.sleep(0)
                if (
                    self._touched is None
                    or generation != self._generation
                    or truncations != self._truncations
                ):
                    return None
                kinds, keys, phones = zip(*left_out, strict=True) if left_out else ((), (), ())
                in_snapshot = await connection.fetch(
                    *QUERIES["blocklist_members_of"].bind(
                        kinds=list(kinds), list_keys=list(keys), phones=list(phones)
                    )
                )
        finally:
            self._touched = None
            await _close(connection)
        left_in_s: defaultdict[ListId, list[str]] = defaultdict(list)
        for kind, key, phone in in_snapshot:
            left_in_s[kind, key].append(phone)
        for list_id, phones_in_s in left_in_s.items():
            theirs[list_id] = theirs.get(list_id, EMPTY).without(phones_in_s)
        return {list_id for list_id in list_ids if ours[list_id] != theirs.get(list_id, EMPTY)}

    def _digest(self, list_id: ListId) -> Digest:
        kind, key = list_id
        phone_set = self._lists(kind).get(key)
        return phone_set.digest() if phone_set is not None else EMPTY

    def _touched_phones(self, list_id: ListId) -> set[str] | None:
        """The phones of the list changed since the comparison began (a copy), or None when too many were."""
        return None if self._touched is None else set(self._touched.get(list_id, ()))

    def _list_ids(self) -> set[ListId]:
        return {("q", key) for key in self._quarantine} | {("s", key) for key in self._stop_lists}

    def _lists(self, kind: str) -> dict[str, PhoneSet]:
        return self._quarantine if kind == "q" else self._stop_lists

    def _heartbeat(self, seq: int) -> str:
        return f"h|{self._token}|{seq}"

    async def _send_through_pool(self, seq: int) -> None:
        self._sent_at[seq] = time.monotonic()
        try:
            await self._pool.execute(
                *QUERIES["blocklist_heartbeat"].bind(payload=self._heartbeat(seq)), timeout=SEND_TIMEOUT_S
            )
        except BaseException:
            self._sent_at.pop(seq, None)
            raise

    def _on_notification(self, connection: object, _pid: int, _channel: str, message: object) -> None:
        if connection is not self._listener:
            return  # from a connection replaced since
        try:
            payload = str(message)
            if payload.startswith("h|"):
                _, token, seq = payload.split("|")
                if token == self._token:
                    self._on_heartbeat(int(seq))
            elif self._buffer is not None:
                self._buffer.extend(payload.split("\n"))
            else:
                self._apply(payload.split("\n"))
        except Exception as exc:
            # The index may now miss a change: not current until the listening task has reloaded it.
            self._failure = exc
            self._loaded = False

    def _on_heartbeat(self, seq: int) -> None:
        sent_at = self._sent_at.pop(seq, None)
        if sent_at is None:  # sent on a connection that has been replaced since
            return
        self._heard_at = time.monotonic()
        if self.on_round_trip is not None:
            self.on_round_trip(self._heard_at - sent_at)
        if seq > self._confirmed_seq:
            self._confirmed_seq, self._confirmed_sent_at = seq, sent_at
        for waiting in [s for s in self._confirmations if s <= seq]:
            future = self._confirmations.pop(waiting)
            if not future.done():
                future.set_result(None)

    def _apply(self, lines: list[str]) -> None:
        """Apply announced lines in order, each run of additions to one list at once."""
        for (kind, operation, list_key), run in itertools.groupby(_changes(lines), key=itemgetter(0, 1, 2)):
            lists = self._lists(kind)
            if operation == "!":
                lists.clear()
                self._truncations += 1
                continue
            changes = [(phone, since) for *_, phone, since in run]
            if self._touched is not None:
                self._touched[kind, list_key].update(phone for phone, _ in changes)
                self._touched_count += len(changes)
                if self._touched_count > MAX_TOUCHED:
                    self._touched = None  # the comparison gives up
            phone_set = lists.get(list_key)
            if operation == "+":
                if phone_set is None:
                    phone_set = lists[list_key] = PhoneSet()
                phone_set.update(changes)
            elif phone_set is not None:
                for phone, _ in changes:
                    phone_set.discard(phone)


EMPTY = Digest(0, 0, 0, 0)


def _keys_by_kind(list_ids: Collection[ListId]) -> dict[str, list[str]]:
    """The licences and the shortcodes of `list_ids`: the arguments of the `_of` queries."""
    return {
        "licences": [key for kind, key in list_ids if kind == "q"],
        "shortcodes": [key for kind, key in list_ids if kind == "s"],
    }


async def _close(connection: asyncpg.Connection) -> None:
    """Close a connection, and terminate it if it does not close within CLOSE_TIMEOUT_S."""
    try:
        await asyncio.wait_for(connection.close(), CLOSE_TIMEOUT_S)
    except Exception:
        connection.terminate()


def _forget(tasks: set[asyncio.Task[None]]) -> Callable[[asyncio.Task[None]], None]:
    """A done callback that drops the task from `tasks` and retrieves its exception (logged by the sync
    that waited for it, if any), so that asyncio does not report it as never retrieved."""

    def done(task: asyncio.Task[None]) -> None:
        tasks.discard(task)
        if not task.cancelled():
            task.exception()

    return done


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
