"""QuarantineCheck through the gRPC stubs, against a real PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from clients import OwnServer, wait_until_index_current
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc
from stopgate_server.app import Application
from stopgate_server.domain.times import from_micros

pb = quarantine_check_pb2
ACME = common_pb2.Sender(address="ACME")
SHORTCODE = common_pb2.Sender(address="36180")
MARKETING = common_pb2.MESSAGE_CATEGORY_MARKETING
CONFIRMATION = common_pb2.MESSAGE_CATEGORY_OPT_OUT_CONFIRMATION
ALICE, BOB, CAROL = "+33612345678", "+33698765432", "+447700900123"


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Any:
    return quarantine_check_pb2_grpc.QuarantineCheckStub(channel)


async def check(stub: Any, numbers: list[str], licence: str = "acme", **fields: Any) -> pb.CheckBatchResponse:
    fields.setdefault("sender", ACME)
    fields.setdefault("category", MARKETING)
    request = pb.CheckBatchRequest(licence_id=licence, phone_numbers=numbers, **fields)
    response: pb.CheckBatchResponse = await stub.CheckBatch(request, timeout=10)
    return response


def verdicts(response: pb.CheckBatchResponse) -> list[tuple[str, str]]:
    return [(pb.Verdict.Name(r.verdict), pb.CheckReason.Name(r.reason)) for r in response.results]


async def quarantine(stub: Any, numbers: list[str], licence: str = "acme") -> pb.QuarantineNumbersResponse:
    request = pb.QuarantineNumbersRequest(
        licence_id=licence, phone_numbers=numbers, actor="ops", reason="asked"
    )
    response: pb.QuarantineNumbersResponse = await stub.QuarantineNumbers(request, timeout=10)
    return response


async def stop_list(
    db: asyncpg.Connection, shortcode: str, phone: str, stopped_ago: timedelta, seen_by: Application | None
) -> None:
    """A shortcode stop list entry as StopIngest writes it (ingest is another service), then `seen_by`'s
    index waits until it has heard of it (another process's write may take up to a second: invariant 3)."""
    await db.execute(
        "INSERT INTO shortcode_stop_list (phone, shortcode, since, event_id, last_stop_at)"
        " VALUES ($1, $2, now() - $3::interval, 'evt-1', now() - $3::interval)",
        phone,
        shortcode,
        stopped_ago,
    )
    await _heard_of_it(seen_by)


async def stop_quarantine(
    db: asyncpg.Connection, licence: str, phone: str, stopped_ago: timedelta, seen_by: Application | None
) -> None:
    """A licence quarantine entry from a STOP event, as StopIngest writes it; then as `stop_list`."""
    await db.execute(
        "INSERT INTO quarantine (phone, licence_id, since, source, event_id, last_stop_at)"
        " VALUES ($1, $2, now() - $3::interval, 'SMS_REPLY', 'evt-2', now() - $3::interval)",
        phone,
        licence,
        stopped_ago,
    )
    await _heard_of_it(seen_by)


async def _heard_of_it(app: Application | None) -> None:
    if app is not None:
        assert app.index is not None
        await app.index.sync()


def field_violations(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            return [v.field for v in bad_request.field_violations]
    raise AssertionError("no BadRequest detail")


async def test_clean_numbers_are_allowed_in_input_order(stub: Any) -> None:
    response = await check(stub, [ALICE, "not a number", BOB, ALICE, "06 12 34 56 78"], default_region="FR")
    assert [r.phone_number for r in response.results] == [ALICE, "not a number", BOB, ALICE, "06 12 34 56 78"]
    assert [r.e164 for r in response.results] == [ALICE, "", BOB, ALICE, ALICE]
    assert verdicts(response) == [
        ("VERDICT_ALLOW", "CHECK_REASON_UNSPECIFIED"),
        ("VERDICT_INVALID", "CHECK_REASON_INVALID_NUMBER"),
        ("VERDICT_ALLOW", "CHECK_REASON_UNSPECIFIED"),
        ("VERDICT_ALLOW", "CHECK_REASON_UNSPECIFIED"),
        ("VERDICT_ALLOW", "CHECK_REASON_UNSPECIFIED"),
    ]
    assert (response.allowed_count, response.blocked_count, response.invalid_count) == (4, 0, 1)


async def test_quarantine_blocks_every_category_of_its_licence_only(stub: Any) -> None:
    manual = await quarantine(stub, [ALICE, ALICE, BOB])
    assert [r.outcome for r in manual.results] == [pb.MANUAL_OUTCOME_QUARANTINED] * 3
    again = await quarantine(stub, [ALICE])
    assert again.results[0].outcome == pb.MANUAL_OUTCOME_ALREADY_QUARANTINED

    for category in (MARKETING, common_pb2.MESSAGE_CATEGORY_TRANSACTIONAL, CONFIRMATION):
        response = await check(stub, [ALICE, CAROL, BOB, ALICE], category=category)
        assert [v for v, _ in verdicts(response)] == [
            "VERDICT_BLOCK",
            "VERDICT_ALLOW",
            "VERDICT_BLOCK",
            "VERDICT_BLOCK",
        ]
        assert response.results[0].reason == pb.CHECK_REASON_QUARANTINED
        assert response.results[0].since.ToDatetime(UTC) > datetime.now(UTC) - timedelta(minutes=1)
        assert (response.allowed_count, response.blocked_count) == (1, 3)

    other_licence = await check(stub, [ALICE, BOB], licence="globex")
    assert [v for v, _ in verdicts(other_licence)] == ["VERDICT_ALLOW", "VERDICT_ALLOW"]


async def test_release_needs_consent_and_unblocks(stub: Any) -> None:
    await quarantine(stub, [ALICE])
    request = pb.ReleaseNumbersRequest(
        licence_id="acme", phone_numbers=[ALICE, BOB], actor="ops", reason="re-opt-in"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.ReleaseNumbers(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == ["consent_reference"]
    assert verdicts(await check(stub, [ALICE]))[0][0] == "VERDICT_BLOCK"

    request.consent_reference = "form-2026-118"
    released = await stub.ReleaseNumbers(request, timeout=10)
    assert [r.outcome for r in released.results] == [
        pb.MANUAL_OUTCOME_RELEASED,
        pb.MANUAL_OUTCOME_NOT_QUARANTINED,
    ]
    assert verdicts(await check(stub, [ALICE]))[0][0] == "VERDICT_ALLOW"


async def test_shortcode_stop_list_blocks_every_licence_sending_from_it(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    await stop_list(db, "36180", ALICE, timedelta(days=2), app)
    for licence in ("acme", "globex"):
        response = await check(stub, [ALICE, BOB], licence=licence, sender=SHORTCODE)
        assert verdicts(response) == [
            ("VERDICT_BLOCK", "CHECK_REASON_SHORTCODE_STOP_LIST"),
            ("VERDICT_ALLOW", "CHECK_REASON_UNSPECIFIED"),
        ]
    assert (
        verdicts(await check(stub, [ALICE], sender=common_pb2.Sender(address="60999")))[0][0]
        == "VERDICT_ALLOW"
    )
    assert verdicts(await check(stub, [ALICE], sender=ACME))[0][0] == "VERDICT_ALLOW"
    declared = common_pb2.Sender(address="36180", type=common_pb2.SENDER_TYPE_SHORTCODE)
    assert verdicts(await check(stub, [ALICE], sender=declared))[0][0] == "VERDICT_BLOCK"


async def test_one_free_confirmation_within_five_minutes_of_a_stop(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    await stop_quarantine(db, "acme", ALICE, timedelta(seconds=30), app)
    await stop_quarantine(db, "acme", BOB, timedelta(minutes=6), app)
    await quarantine(stub, [CAROL])  # manual: no STOP, so no confirmation

    marketing = await check(stub, [ALICE], category=MARKETING)
    assert verdicts(marketing) == [("VERDICT_BLOCK", "CHECK_REASON_QUARANTINED")]
    first = await check(stub, [ALICE, BOB, CAROL], category=CONFIRMATION)
    assert verdicts(first) == [
        ("VERDICT_ALLOW", "CHECK_REASON_CONFIRMATION_WINDOW"),
        ("VERDICT_BLOCK", "CHECK_REASON_QUARANTINED"),
        ("VERDICT_BLOCK", "CHECK_REASON_QUARANTINED"),
    ]
    second = await check(stub, [ALICE], category=CONFIRMATION)
    assert verdicts(second) == [("VERDICT_BLOCK", "CHECK_REASON_QUARANTINED")]


async def test_concurrent_confirmation_checks_grant_it_once(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    await stop_quarantine(db, "acme", ALICE, timedelta(seconds=10), app)
    await stop_list(db, "36180", ALICE, timedelta(seconds=10), app)
    responses = await asyncio.gather(
        *(check(stub, [ALICE], category=CONFIRMATION, sender=SHORTCODE) for _ in range(8))
    )
    granted = [r for r in responses if r.results[0].verdict == pb.VERDICT_ALLOW]
    assert len(granted) == 1


async def test_campaign_checks_record_allowed_sends_and_counters(stub: Any, db: asyncpg.Connection) -> None:
    await quarantine(stub, [BOB])
    first = await check(stub, [ALICE, BOB, "junk", CAROL], campaign_id="spring-sale")
    assert first.recorded_sends == 2
    second = await check(stub, [ALICE], campaign_id="spring-sale")
    assert second.recorded_sends == 1
    sends = await db.fetch("SELECT phone, sender FROM sends WHERE campaign_id = 'spring-sale' ORDER BY phone")
    assert sorted((r["phone"], r["sender"]) for r in sends) == [
        (ALICE, "ACME"),
        (ALICE, "ACME"),
        (CAROL, "ACME"),
    ]
    counters = await db.fetchrow("SELECT * FROM campaign_counters WHERE campaign_id = 'spring-sale'")
    assert counters is not None
    assert (counters["sent_count"], counters["unique_recipients"]) == (3, 2)
    assert (await check(stub, [ALICE])).recorded_sends == 0


async def test_record_sends_all_or_nothing(stub: Any, db: asyncpg.Connection) -> None:
    sent_at = datetime.now(UTC) - timedelta(days=3)
    request = pb.RecordSendsRequest(
        licence_id="acme", campaign_id="c1", sender=SHORTCODE, phone_numbers=[ALICE, "bogus", BOB]
    )
    request.sent_at.FromDatetime(sent_at)
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RecordSends(request, timeout=10)
    assert field_violations(caught.value) == ["phone_numbers[1]"]
    assert await db.fetchval("SELECT count(*) FROM sends") == 0

    del request.phone_numbers[1]
    assert (await stub.RecordSends(request, timeout=10)).recorded_count == 2
    stored = await db.fetch("SELECT sent_at FROM sends WHERE campaign_id = 'c1'")
    assert {abs(r["sent_at"] - sent_at) < timedelta(milliseconds=1) for r in stored} == {True}

    request.sent_at.FromDatetime(datetime.now(UTC) - timedelta(days=40))
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RecordSends(request, timeout=10)
    assert field_violations(caught.value) == ["sent_at"]


async def test_number_status_tells_the_whole_story(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    record = pb.RecordSendsRequest(
        licence_id="acme", campaign_id="winter", sender=SHORTCODE, phone_numbers=[ALICE]
    )
    await stub.RecordSends(record, timeout=10)
    await quarantine(stub, [ALICE])
    release = pb.ReleaseNumbersRequest(
        licence_id="acme", phone_numbers=[ALICE], actor="ops", reason="typo", consent_reference="ticket-9"
    )
    await stub.ReleaseNumbers(release, timeout=10)
    await quarantine(stub, [ALICE])
    await stop_list(db, "36180", ALICE, timedelta(hours=1), app)

    status = await stub.GetNumberStatus(
        pb.GetNumberStatusRequest(licence_id="acme", phone_number="0612345678", default_region="FR")
    )
    assert status.e164 == ALICE
    assert status.quarantined
    assert status.source == common_pb2.EVENT_SOURCE_MANUAL
    assert [s.shortcode for s in status.stop_lists] == ["36180"]
    assert (status.last_send.campaign_id, status.last_send.sender) == ("winter", "36180")
    assert [(pb.HistoryAction.Name(h.action), h.actor, h.consent_reference) for h in status.history] == [
        ("HISTORY_ACTION_MANUAL_QUARANTINE", "ops", ""),
        ("HISTORY_ACTION_MANUAL_RELEASE", "ops", "ticket-9"),
        ("HISTORY_ACTION_MANUAL_QUARANTINE", "ops", ""),
    ]
    elsewhere = await stub.GetNumberStatus(pb.GetNumberStatusRequest(licence_id="globex", phone_number=ALICE))
    assert not elsewhere.quarantined
    assert not elsewhere.history
    assert not elsewhere.HasField("last_send")


@pytest.mark.parametrize(
    ("fields", "violations"),
    [
        ({"licence_id": "", "phone_numbers": [ALICE]}, ["licence_id"]),
        ({"licence_id": "a b", "phone_numbers": [ALICE]}, ["licence_id"]),
        ({"phone_numbers": []}, ["phone_numbers"]),
        ({"phone_numbers": [ALICE] * 10_001}, ["phone_numbers"]),
        ({"phone_numbers": ["1" * 65]}, ["phone_numbers[0]"]),
        ({"phone_numbers": [ALICE], "category": 0}, ["category"]),
        ({"phone_numbers": [ALICE], "category": 42}, ["category"]),
        ({"phone_numbers": [ALICE], "sender": None}, ["sender.address"]),
        ({"phone_numbers": [ALICE], "sender": common_pb2.Sender(address="!!")}, ["sender.address"]),
        (
            {
                "phone_numbers": [ALICE],
                "sender": common_pb2.Sender(address="ACME", type=common_pb2.SENDER_TYPE_SHORTCODE),
            },
            ["sender.address"],
        ),
        ({"phone_numbers": [ALICE], "default_region": "XX"}, ["default_region"]),
        ({"phone_numbers": [ALICE], "campaign_id": "x" * 65}, ["campaign_id"]),
        ({"licence_id": "", "phone_numbers": [], "category": 0}, ["licence_id", "category", "phone_numbers"]),
    ],
)
async def test_bad_check_requests_name_the_field(
    stub: Any, db: asyncpg.Connection, fields: dict[str, Any], violations: list[str]
) -> None:
    values: dict[str, Any] = {"licence_id": "acme", "sender": ACME, "category": MARKETING, "campaign_id": "c"}
    values.update(fields)
    if values["sender"] is None:
        del values["sender"]
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckBatch(pb.CheckBatchRequest(**values), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == violations
    assert await db.fetchval("SELECT count(*) FROM sends") == 0


async def test_manual_actions_need_actor_and_reason(stub: Any, db: asyncpg.Connection) -> None:
    request = pb.QuarantineNumbersRequest(licence_id="acme", phone_numbers=[ALICE, "nope"])
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.QuarantineNumbers(request, timeout=10)
    assert field_violations(caught.value) == ["actor", "reason", "phone_numbers[1]"]
    assert await db.fetchval("SELECT count(*) FROM quarantine") == 0
    assert await db.fetchval("SELECT count(*) FROM number_history") == 0


async def test_a_stop_written_by_another_process_blocks_within_a_second(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    """Invariant 3 through the index: a write this process did not make reaches it by NOTIFY."""
    await wait_until_index_current(app)
    await stop_quarantine(db, "acme", ALICE, timedelta(0), seen_by=None)
    started = asyncio.get_running_loop().time()
    while verdicts(await check(stub, [ALICE]))[0][0] != "VERDICT_BLOCK":
        assert asyncio.get_running_loop().time() - started < 1.0
        await asyncio.sleep(0.005)
    assert app.index is not None
    assert app.index.is_current()


async def test_the_writing_process_blocks_at_once(app: Application, stub: Any) -> None:
    await wait_until_index_current(app)
    await quarantine(stub, [CAROL])
    assert verdicts(await check(stub, [CAROL]))[0] == ("VERDICT_BLOCK", "CHECK_REASON_QUARANTINED")


async def test_check_fails_closed_while_the_database_is_down(own_server: OwnServer) -> None:
    """Invariant 4: with PostgreSQL stopped, CheckBatch answers UNAVAILABLE, never ALLOW."""
    stub = quarantine_check_pb2_grpc.QuarantineCheckStub(own_server.channel)
    await quarantine(stub, [ALICE])
    assert verdicts(await check(stub, [ALICE, BOB]))[0][0] == "VERDICT_BLOCK"
    await asyncio.to_thread(own_server.cluster.stop)
    for _ in range(20):
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await check(stub, [ALICE, BOB])
        assert caught.value.code() == grpc.StatusCode.UNAVAILABLE
    await asyncio.to_thread(own_server.cluster.start)
    for _ in range(100):
        try:
            response = await check(stub, [ALICE, BOB])
            break
        except grpc.aio.AioRpcError:
            await asyncio.sleep(0.1)
    assert verdicts(response)[0][0] == "VERDICT_BLOCK"


async def test_the_longest_licence_ids_reach_the_index_in_full_notifications(
    app: Application, stub: Any
) -> None:
    """A notification holds at most 8,000 bytes: a chunk of 64-character licence ids must fit in it."""
    await wait_until_index_current(app)
    licence = "l" * 64
    numbers = [f"+336{i:08d}" for i in range(250)]
    outcomes = (await quarantine(stub, numbers, licence=licence)).results
    assert {r.outcome for r in outcomes} == {pb.MANUAL_OUTCOME_QUARANTINED}
    assert app.index is not None
    assert app.index.is_current()
    response = await check(stub, numbers, licence=licence)
    assert response.blocked_count == 250


async def test_large_lists_are_exact_whether_announced_or_loaded(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    """Past phone_set.MIN_ARRAY numbers a list lives in arrays: changes heard by NOTIFY and a fresh
    snapshot load give the same entries with the same `since` as PostgreSQL, and CheckBatch answers from
    them exactly."""
    await wait_until_index_current(app)
    assert app.index is not None
    await db.execute(
        "INSERT INTO quarantine (phone, licence_id, since, source)"
        " SELECT '+336' || lpad(i::text, 8, '0'), 'acme', now() - i * interval '1.000001 s', 'IMPORT'"
        " FROM generate_series(0, 2999) i"
    )
    await db.execute("DELETE FROM quarantine WHERE phone LIKE '%5'")
    await app.index.sync()
    asked = [f"+336{i:08d}" for i in range(3100)]
    rows = await db.fetch("SELECT phone, since FROM quarantine WHERE licence_id = 'acme'")
    stored = {row["phone"]: row["since"] for row in rows}
    assert len(stored) == 2700

    def found_by_index() -> dict[str, datetime]:
        assert app.index is not None
        found = app.index.find("acme", "", asked)
        assert found is not None
        return {phone: from_micros(us) for phone, us in found[0].items()}

    assert found_by_index() == stored
    assert app.index.quarantine_size == 2700
    await app.index.stop()
    await app.index.start()
    await wait_until_index_current(app)
    assert found_by_index() == stored
    assert app.index.quarantine_size == 2700
    response = await check(stub, asked)
    blocked = {
        r.phone_number: r.since.ToDatetime(UTC) for r in response.results if r.verdict == pb.VERDICT_BLOCK
    }
    assert blocked == stored


async def test_an_entry_announced_without_its_since_is_answered_by_postgresql(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    """Triggers older than migration 0005 announced no `since`: the index then lets PostgreSQL answer."""
    await wait_until_index_current(app)
    assert app.index is not None
    since = datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    await db.execute("ALTER TABLE quarantine DISABLE TRIGGER quarantine_insert_notify")
    await db.execute(
        "INSERT INTO quarantine (phone, licence_id, since, source) VALUES ($1, 'acme', $2, 'IMPORT')",
        ALICE,
        since,
    )
    await db.execute("ALTER TABLE quarantine ENABLE TRIGGER quarantine_insert_notify")
    await db.execute("SELECT pg_notify('stopgate_blocklist', E'#0\\nq|+|acme|' || $1)", ALICE)
    await app.index.sync()
    assert app.index.find("acme", "", [ALICE, BOB]) is None
    response = await check(stub, [ALICE, BOB])
    assert verdicts(response) == [
        ("VERDICT_BLOCK", "CHECK_REASON_QUARANTINED"),
        ("VERDICT_ALLOW", "CHECK_REASON_UNSPECIFIED"),
    ]
    assert response.results[0].since.ToDatetime(UTC) == since


async def test_truncated_lists_are_emptied_in_the_index(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    """TRUNCATE fires no delete trigger; it is announced on its own, or the index would keep blocking."""
    await wait_until_index_current(app)
    await quarantine(stub, [ALICE])
    await stop_list(db, "36180", BOB, timedelta(0), seen_by=app)
    assert [v for v, _ in verdicts(await check(stub, [ALICE, BOB], sender=SHORTCODE))] == [
        "VERDICT_BLOCK"
    ] * 2
    await db.execute("TRUNCATE quarantine")
    await db.execute("TRUNCATE shortcode_stop_list")
    assert app.index is not None
    await app.index.sync()
    assert app.index.is_current()
    assert [v for v, _ in verdicts(await check(stub, [ALICE, BOB], sender=SHORTCODE))] == [
        "VERDICT_ALLOW"
    ] * 2


async def test_writes_answer_while_the_index_is_not_listening(app: Application, stub: Any) -> None:
    """A manual action commits and answers even when the index has no connection (checks then read
    PostgreSQL, which holds the change)."""
    assert app.index is not None
    await app.index.stop()
    assert not app.index.is_current()
    await quarantine(stub, [ALICE])
    assert verdicts(await check(stub, [ALICE]))[0] == ("VERDICT_BLOCK", "CHECK_REASON_QUARANTINED")


async def test_sync_before_the_index_ever_connected(app: Application) -> None:
    from stopgate_server.store.blocklist import BlocklistIndex

    assert app.pool is not None
    index = BlocklistIndex("postgresql://127.0.0.1:1/never", app.pool)
    await asyncio.wait_for(index.sync(), timeout=2)
    assert not index.is_current()


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        (-62_135_596_800, 0),  # 0001-01-01T00:00:00Z, the first valid Timestamp
        (253_402_300_799, 999_999_999),  # 9999-12-31T23:59:59.999999999Z, the last
        (253_402_300_800, 0),
        (-62_135_596_801, 0),
        (0, -1),
        (0, 1_000_000_000),
        (2**63 - 1, 2**31 - 1),
        (-(2**63), -(2**31)),
    ],
)
async def test_record_sends_at_the_ends_of_time_names_sent_at(
    stub: Any, db: asyncpg.Connection, seconds: int, nanos: int
) -> None:
    """Invariant 7: years 1 and 9999 are outside the accepted window, the rest is no Timestamp at all;
    either way the answer is INVALID_ARGUMENT naming sent_at, and nothing is recorded."""
    request = pb.RecordSendsRequest(
        licence_id="acme", campaign_id="c1", sender=SHORTCODE, phone_numbers=[ALICE]
    )
    request.sent_at.seconds, request.sent_at.nanos = seconds, nanos
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.RecordSends(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field_violations(caught.value) == ["sent_at"]
    assert await db.fetchval("SELECT count(*) FROM sends") == 0
