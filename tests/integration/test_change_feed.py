"""The change feed (Reporting.WatchBlocklistChanges): every change of the block lists, in order, resumable
from any cursor, scoped by token, and paced by its reader. Against a real PostgreSQL and an in-process
server."""

from __future__ import annotations

import asyncio
import contextlib
import random
from collections import defaultdict
from collections.abc import AsyncIterator, Callable
from typing import Any

import asyncpg
import grpc
import pytest
from clients import EitherClient
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate.errors import StopgateError
from stopgate.interceptors import bearer_token
from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc
from stopgate.v1 import reporting_pb2 as pb
from stopgate.v1.reporting_pb2_grpc import ReportingStub
from stopgate_server.app import Application
from stopgate_server.errors import FailedPrecondition
from stopgate_server.shutdown import shutting_down
from stopgate_server.store.tokens import ROLES
from stopgate_server.usecases import change_feed

LICENCES = ("acme", "globex")
SHORTCODE = "36180"
Key = tuple[str, str, str]  # (list, licence or shortcode, phone)
QUARANTINE_ONE = "INSERT INTO quarantine (phone, licence_id, since, source) VALUES ($1, $2, now(), 'IMPORT')"
STOP_LIST_ONE = "INSERT INTO shortcode_stop_list (phone, shortcode, since) VALUES ($1, $2, now())"


def _key(change: pb.BlocklistChange) -> Key:
    if change.shortcode:
        return "s", change.shortcode, change.phone_number
    return "q", change.licence_id, change.phone_number


def _added(change: pb.BlocklistChange) -> bool:
    return change.kind in (pb.BLOCKLIST_CHANGE_KIND_QUARANTINED, pb.BLOCKLIST_CHANGE_KIND_STOP_LISTED)


async def _churn(database_url: str, writers: int, changes: int, seed: int) -> int:
    """`writers` connections adding and removing random numbers of a small set (so that they contend for the
    same numbers) in the quarantines of LICENCES and SHORTCODE's stop list, in statements of up to 50 rows,
    until `changes` changes are made between them; how many were made (each row actually inserted or
    deleted)."""
    made = 0
    phones = [f"+336{n:08d}" for n in range(1500)]

    async def write(number: int) -> None:
        nonlocal made
        rng = random.Random(seed * 100 + number)
        connection = await asyncpg.connect(database_url)
        try:
            while made < changes:
                some = rng.sample(phones, rng.randint(1, 50))
                owner = rng.choice((*LICENCES, SHORTCODE))
                try:
                    rows = await connection.fetch(*_statement(rng.random() < 0.55, owner, sorted(some)))
                except asyncpg.DeadlockDetectedError:
                    continue  # two writers took the same numbers in another order: nothing was changed
                made += len(rows)
        finally:
            await connection.close()

    await asyncio.gather(*(write(n) for n in range(writers)))
    return made


def _statement(add: bool, owner: str, phones: list[str]) -> tuple[str, list[str], str]:
    """Add or remove `phones` in `owner`'s list (a licence's quarantine, or SHORTCODE's stop list),
    returning the rows changed."""
    if owner == SHORTCODE:
        table, column, source = "shortcode_stop_list", "shortcode", ""
    else:
        table, column, source = "quarantine", "licence_id", "source"
    if add:
        columns = f"phone, {column}, since" + (f", {source}" if source else "")
        values = "p, $2, now()" + (", 'SMS_REPLY'" if source else "")
        sql = f"INSERT INTO {table} ({columns}) SELECT {values} FROM unnest($1::text[]) p"  # noqa: S608
        return f"{sql} ON CONFLICT DO NOTHING RETURNING phone", phones, owner
    sql = f"DELETE FROM {table} WHERE {column} = $2 AND phone = ANY($1) RETURNING phone"  # noqa: S608
    return sql, phones, owner


async def test_a_consumer_that_disconnects_and_resumes_at_random_sees_every_change_in_order(
    channel: grpc.aio.Channel, database_url: str, db: asyncpg.Connection
) -> None:
    """100,000 changes by four writers contending for the same numbers, while a consumer drops its stream at
    random points and resumes from the last cursor it recorded (sometimes an older one, as after a crash
    between applying and recording). The changes it sees, duplicates removed, are exactly those made; for
    each number they alternate added, removed, added... as they were made; and replaying them gives the
    lists' final state."""
    feed = ReportingStub(channel)
    first = await anext(aiter(feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest(), timeout=30)))
    start_cursor = first.cursor  # from now: nothing before the writers start
    writers = asyncio.create_task(_churn(database_url, writers=4, changes=100_000, seed=7))

    rng = random.Random(11)
    seen: dict[int, pb.BlocklistChange] = {}
    order: list[int] = []  # change ids in the order first seen
    recorded = [start_cursor]  # cursors the consumer recorded, oldest first
    resumes = 0
    made: int | None = None
    async with asyncio.timeout(240):
        while made is None or len(seen) < made:
            cursor = recorded[-1] if rng.random() < 0.8 else rng.choice(recorded[-5:])
            call = feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest(after_cursor=cursor))
            # Responses before this consumer "drops" the stream: few, because a consumer slower than the
            # writers gets full pages (1,000 changes), so 100,000 changes may take only about 100 responses.
            stop_after = rng.randint(1, 8)
            try:
                async for response in call:
                    for change in response.changes:
                        if change.change_id not in seen:
                            seen[change.change_id] = change
                            order.append(change.change_id)
                        elif seen[change.change_id] != change:
                            pytest.fail(f"change {change.change_id} came twice, differently")
                        if rng.random() < 0.001:  # recorded after a change, mid-response
                            recorded.append(change.cursor)
                    recorded.append(response.cursor)
                    stop_after -= 1
                    if writers.done() and made is None:
                        made = writers.result()
                    if stop_after == 0 or (made is not None and len(seen) >= made):
                        break
            finally:
                call.cancel()
            resumes += 1
            if writers.done() and made is None:
                made = writers.result()

    assert made is not None
    assert made >= 100_000
    assert resumes > 10
    assert len(seen) == made == await db.fetchval("SELECT count(*) FROM blocklist_changes")
    by_number: dict[Key, list[bool]] = defaultdict(list)
    for change_id in order:
        by_number[_key(seen[change_id])].append(_added(seen[change_id]))
    for key, steps in by_number.items():
        assert steps == [step % 2 == 0 for step in range(len(steps))], f"{key} changed out of order: {steps}"
    members = {
        ("q", r["licence_id"], r["phone"]) for r in await db.fetch("SELECT licence_id, phone FROM quarantine")
    }
    members |= {
        ("s", r["shortcode"], r["phone"])
        for r in await db.fetch("SELECT shortcode, phone FROM shortcode_stop_list")
    }
    assert {key for key, steps in by_number.items() if steps[-1]} == members


async def test_changes_made_through_the_service_carry_what_made_them(
    channel: grpc.aio.Channel, client: EitherClient
) -> None:
    checks = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
    stream = ReportingStub(channel).WatchBlocklistChanges(pb.WatchBlocklistChangesRequest(), timeout=30)
    cursor = (await anext(aiter(stream))).cursor
    stream.cancel()
    await checks.QuarantineNumbers(
        quarantine_check_pb2.QuarantineNumbersRequest(
            licence_id="acme", phone_numbers=["+33612345678"], actor="ops", reason="asked by phone"
        ),
        timeout=10,
    )
    await checks.ReleaseNumbers(
        quarantine_check_pb2.ReleaseNumbersRequest(
            licence_id="acme",
            phone_numbers=["+33612345678"],
            actor="ops",
            reason="renewed consent",
            consent_reference="form-7",
        ),
        timeout=10,
    )
    async with asyncio.timeout(30):
        responses = await client.collect_until("watch_blocklist_changes", _holding(2), cursor)
    changes = [change for response in responses for change in response.changes]
    assert [(c.kind, c.licence_id, c.phone_number, c.source) for c in changes] == [
        (pb.BLOCKLIST_CHANGE_KIND_QUARANTINED, "acme", "+33612345678", common_pb2.EVENT_SOURCE_MANUAL),
        (pb.BLOCKLIST_CHANGE_KIND_RELEASED, "acme", "+33612345678", common_pb2.EVENT_SOURCE_MANUAL),
    ]
    assert changes[0].change_id < changes[1].change_id
    assert changes[0].cursor < changes[1].cursor or len(changes[0].cursor) < len(changes[1].cursor)
    assert changes[1].since == changes[0].since  # a removal describes the entry removed


def _holding(count: int) -> Callable[[list[pb.WatchBlocklistChangesResponse]], bool]:
    """Whether responses hold `count` changes."""
    return lambda responses: sum(len(response.changes) for response in responses) >= count


async def test_a_token_limited_to_licences_sees_its_licences_and_their_shortcodes_only(
    app: Application, channel: grpc.aio.Channel, db: asyncpg.Connection, tokens: Any
) -> None:
    await db.execute(
        "INSERT INTO shortcode_licences (licence_id, shortcode, bound_by) VALUES ('acme', $1, 't')", SHORTCODE
    )
    token = await tokens(*ROLES, licences=("acme",))
    metadata = (("authorization", f"Bearer {token}"),)
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as own:
        feed = ReportingStub(own)
        start = (
            await anext(
                aiter(feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest(), metadata=metadata))
            )
        ).cursor
        for licence in LICENCES:
            await db.execute(QUARANTINE_ONE, "+33600000001", licence)
        for shortcode in (SHORTCODE, "60999"):
            await db.execute(STOP_LIST_ONE, "+33600000001", shortcode)
        await db.execute("DELETE FROM quarantine WHERE licence_id = 'acme'")
        everything = await _changes_after(ReportingStub(channel), start, 5)
        assert {(c.licence_id, c.shortcode) for c in everything} == {
            ("acme", ""),
            ("globex", ""),
            ("", SHORTCODE),
            ("", "60999"),
        }
        own_changes = await _changes_after(feed, start, 3, metadata)
        assert [(c.kind, c.licence_id, c.shortcode) for c in own_changes] == [
            (pb.BLOCKLIST_CHANGE_KIND_QUARANTINED, "acme", ""),
            (pb.BLOCKLIST_CHANGE_KIND_STOP_LISTED, "", SHORTCODE),
            (pb.BLOCKLIST_CHANGE_KIND_RELEASED, "acme", ""),
        ]
        only_globex = await _changes_after(ReportingStub(channel), start, 1, licence_ids=["globex"])
        assert [(c.licence_id, c.phone_number) for c in only_globex] == [("globex", "+33600000001")]
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await _changes_after(feed, start, 1, metadata, licence_ids=["globex"])
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED
        assert "globex" in (denied.value.details() or "")


async def _changes_after(
    feed: Any, cursor: str, count: int, metadata: Any = (), licence_ids: list[str] | None = None
) -> list[pb.BlocklistChange]:
    """The first `count` changes after `cursor` (and a check that no other comes within a tick or two)."""
    request = pb.WatchBlocklistChangesRequest(after_cursor=cursor, licence_ids=licence_ids or [])
    call: Any = feed.WatchBlocklistChanges(request, metadata=metadata)
    changes: list[pb.BlocklistChange] = []
    try:
        async with asyncio.timeout(20):
            async for response in call:
                changes.extend(response.changes)
                if len(changes) >= count:
                    break
        more = [response async for response in _within(call, change_feed.TICK_INTERVAL_S * 6)]
        assert [change for response in more for change in response.changes] == []  # nothing more
    finally:
        call.cancel()
    return changes


async def _within(call: Any, seconds: float) -> AsyncIterator[pb.WatchBlocklistChangesResponse]:
    """The responses of a stream that come within `seconds`."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            async for response in call:
                yield response


@pytest.mark.parametrize(
    ("cursor", "code", "field"),
    [
        ("garbage", grpc.StatusCode.INVALID_ARGUMENT, "after_cursor"),
        ("1.x", grpc.StatusCode.INVALID_ARGUMENT, "after_cursor"),
        ("999999999", grpc.StatusCode.INVALID_ARGUMENT, "after_cursor"),
    ],
)
async def test_a_bad_cursor_is_invalid_and_names_the_field(
    channel: grpc.aio.Channel, cursor: str, code: grpc.StatusCode, field: str
) -> None:
    call = ReportingStub(channel).WatchBlocklistChanges(pb.WatchBlocklistChangesRequest(after_cursor=cursor))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await anext(aiter(call))
    assert failed.value.code() == code
    status = rpc_status.from_call(failed.value)
    assert status is not None
    bad = error_details_pb2.BadRequest()
    assert any(detail.Unpack(bad) for detail in status.details)
    assert [v.field for v in bad.field_violations] == [field]


async def test_a_cursor_older_than_the_retention_is_expired_and_the_oldest_start_works(
    app: Application, channel: grpc.aio.Channel, db: asyncpg.Connection
) -> None:
    feed = ReportingStub(channel)
    old = (await anext(aiter(feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest())))).cursor
    await db.execute(QUARANTINE_ONE, "+33600000002", "acme")
    await _changes_after(feed, old, 1)  # ticked
    await db.execute(QUARANTINE_ONE, "+33600000003", "acme")
    await _changes_after(feed, old, 2)
    assert app.change_feed is not None
    await app.change_feed.purge(retention_s=0)
    assert await db.fetchval("SELECT count(*) FROM blocklist_change_ticks") == 1
    assert await db.fetchval("SELECT count(*) FROM blocklist_changes") == 0

    call = feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest(after_cursor=old))
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await anext(aiter(call))
    assert failed.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    status = rpc_status.from_call(failed.value)
    info = error_details_pb2.ErrorInfo()
    assert status is not None
    assert any(detail.Unpack(info) for detail in status.details)
    assert info.reason == "CURSOR_EXPIRED"

    oldest = feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest(start=pb.FEED_START_OLDEST))
    await db.execute(QUARANTINE_ONE, "+33600000004", "acme")
    async with asyncio.timeout(20):
        async for response in oldest:
            if response.changes:
                assert [c.phone_number for c in response.changes] == ["+33600000004"]
                break
    oldest.cancel()


async def test_a_consumer_that_does_not_read_holds_the_transports_buffer_not_the_feed(
    app: Application, api_token: str, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """100,000 changes wait for a consumer that reads nothing: the server reads the pages that the
    consumer's flow-control window lets it send (here gRPC's initial 64 KiB, the window not grown by
    bandwidth probes), then waits; none more while the consumer does not read. Once it reads, every change
    comes. A consumer that does not read at all is ended by the stream idle timeout (test_edge_limits)."""
    assert app.change_feed is not None
    pages_read = 0
    read_page = app.change_feed.store.page

    async def counted(*args: Any) -> Any:
        nonlocal pages_read
        pages_read += 1
        return await read_page(*args)

    monkeypatch.setattr(app.change_feed.store, "page", counted)
    async with grpc.aio.insecure_channel(
        f"127.0.0.1:{app.grpc_port}",
        options=[("grpc.http2.bdp_probe", 0)],
        interceptors=bearer_token(api_token),
    ) as channel:
        feed = ReportingStub(channel)
        start = (await anext(aiter(feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest())))).cursor
        await _quarantine_many(database_url, "+3361", 100_000)
        await asyncio.sleep(change_feed.TICK_INTERVAL_S * 4)
        pages_read = 0
        call = feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest(after_cursor=start))
        held = -1
        async with asyncio.timeout(30):  # the consumer reads nothing, until the server stops reading too
            while held != pages_read:
                held = pages_read
                await asyncio.sleep(1)
        await asyncio.sleep(2)
        assert pages_read == held  # waiting, not reading on
        assert 1 <= held <= 5  # a page is about 90 kB: what the window and one write hold
        seen = 0
        async with asyncio.timeout(60):
            async for response in call:
                seen += len(response.changes)
                if seen >= 100_000:
                    break
        call.cancel()
    assert seen == 100_000
    assert pages_read >= 100


async def _quarantine_many(database_url: str, prefix: str, count: int) -> None:
    """Quarantine `count` numbers starting with `prefix` in acme, in one statement."""
    connection = await asyncpg.connect(database_url)
    try:
        await connection.execute(
            "INSERT INTO quarantine (phone, licence_id, since, source) SELECT $1 || lpad(n::text, 7, '0'),"
            " 'acme', now(), 'IMPORT' FROM generate_series(1, $2::int) n",
            prefix,
            count,
        )
    finally:
        await connection.close()


async def test_the_client_resumes_by_itself_when_the_stream_fails(
    app: Application,
    channel: grpc.aio.Channel,
    client: EitherClient,
    db: asyncpg.Connection,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The server ends every stream after two responses with UNAVAILABLE: the client's iterator opens it
    again after the last response and the caller sees each change once, in order."""
    assert app.change_feed is not None
    follow = app.change_feed.follow

    async def flaky(*args: Any) -> Any:
        sent = 0
        async for page in follow(*args):
            yield page
            sent += 1
            if sent == 2:
                raise shutting_down()  # UNAVAILABLE, as a stopping server ends its streams

    monkeypatch.setattr(app.change_feed, "follow", flaky)
    monkeypatch.setattr(change_feed, "PAGE", 10)
    start = ReportingStub(channel).WatchBlocklistChanges(pb.WatchBlocklistChangesRequest())
    first = await anext(aiter(start))
    start.cancel()
    await db.execute(
        "INSERT INTO quarantine (phone, licence_id, since, source)"
        " SELECT '+3362' || lpad(n::text, 7, '0'), 'acme', now(), 'IMPORT' FROM generate_series(1, 95) n"
    )
    async with asyncio.timeout(60):
        responses = await client.collect_until("watch_blocklist_changes", _holding(95), first.cursor)
    phones = [change.phone_number for response in responses for change in response.changes]
    assert phones == [f"+3362{n:07d}" for n in range(1, 96)]


async def test_the_client_fails_at_once_on_a_bad_cursor(client: EitherClient) -> None:
    with pytest.raises(StopgateError) as failed:
        await client.collect_until("watch_blocklist_changes", _holding(1), "0.5")
    assert failed.value.code == grpc.StatusCode.INVALID_ARGUMENT


async def test_a_stream_whose_next_changes_were_purged_meanwhile_is_expired_not_skipped(
    app: Application, channel: grpc.aio.Channel, db: asyncpg.Connection
) -> None:
    """A consumer behind the retention when the hourly purge runs must learn it, not jump over what was
    purged: its next read ends the stream with CURSOR_EXPIRED."""
    assert app.change_feed is not None
    feed = ReportingStub(channel)
    old = (await anext(aiter(feed.WatchBlocklistChanges(pb.WatchBlocklistChangesRequest())))).cursor
    await db.execute(QUARANTINE_ONE, "+33600000005", "acme")
    await _changes_after(feed, old, 1)  # ticked
    position = await app.change_feed.start(old, change_feed.Start.NOW)
    stream = app.change_feed.follow(position, None)
    assert (await anext(stream)).changes == []  # the start, at once
    await app.change_feed.purge(retention_s=0)
    with pytest.raises(FailedPrecondition) as expired:
        await anext(stream)
    assert expired.value.reason == "CURSOR_EXPIRED"
