"""Request ids (AIP-155) on RecordSends and CheckBatch with a campaign: a request repeated with its id
(concurrently, after a timeout, after a failure) records its sends once and gets the first answer."""

from __future__ import annotations

import asyncio
import time
import uuid
from typing import Any

import asyncpg
import grpc
import pytest
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
)
from stopgate_server.app import Application

pb = quarantine_check_pb2
ACME = common_pb2.Sender(address="ACME")
MARKETING = common_pb2.MESSAGE_CATEGORY_MARKETING
ALICE, BOB, CAROL = "+33612345678", "+33698765432", "+447700900123"


@pytest.fixture
def stub(channel: grpc.aio.Channel) -> Any:
    return quarantine_check_pb2_grpc.QuarantineCheckStub(channel)


@pytest.fixture
def reporting(channel: grpc.aio.Channel) -> Any:
    return reporting_pb2_grpc.ReportingStub(channel)


def record_request(request_id: str, numbers: list[str], campaign: str = "spring") -> pb.RecordSendsRequest:
    return pb.RecordSendsRequest(
        licence_id="acme", campaign_id=campaign, sender=ACME, phone_numbers=numbers, request_id=request_id
    )


def check_request(request_id: str, numbers: list[str], campaign: str = "spring") -> pb.CheckBatchRequest:
    return pb.CheckBatchRequest(
        licence_id="acme",
        sender=ACME,
        category=MARKETING,
        phone_numbers=numbers,
        campaign_id=campaign,
        request_id=request_id,
    )


async def sends(db: asyncpg.Connection, campaign: str = "spring") -> int:
    count: int = await db.fetchval(
        "SELECT count(*) FROM sends WHERE licence_id = 'acme' AND campaign_id = $1", campaign
    )
    return count


async def report(reporting: Any, campaign: str = "spring") -> tuple[int, int]:
    reply = await reporting.GetCampaignReport(
        reporting_pb2.GetCampaignReportRequest(licence_id="acme", campaign_id=campaign), timeout=10
    )
    return reply.report.sent_count, reply.report.unique_recipients


async def held_counters(db: asyncpg.Connection) -> None:
    """Lock the counters row of campaign "spring" in the caller's transaction: the first copy of a request
    blocks there, holding its request id uncommitted."""
    await db.execute("INSERT INTO campaign_counters (licence_id, campaign_id) VALUES ('acme', 'spring')")
    await db.execute("SELECT FROM campaign_counters WHERE licence_id = 'acme' FOR UPDATE")


async def waiting(db: asyncpg.Connection, statements: int) -> None:
    """Return once `statements` other sessions wait on a lock; bounded: 10 s."""
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        await db.execute("SELECT pg_stat_clear_snapshot()")  # else a transaction sees its first snapshot
        count = await db.fetchval(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        if count >= statements:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"fewer than {statements} statements waited on a lock")


def error_info(error: grpc.aio.AioRpcError) -> error_details_pb2.ErrorInfo:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        info = error_details_pb2.ErrorInfo()
        if detail.Unpack(info):
            return info
    raise AssertionError("no ErrorInfo detail")


def bad_fields(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    for detail in status.details:
        bad_request = error_details_pb2.BadRequest()
        if detail.Unpack(bad_request):
            return [v.field for v in bad_request.field_violations]
    raise AssertionError("no BadRequest detail")


async def test_five_concurrent_copies_record_once(stub: Any, reporting: Any, db: asyncpg.Connection) -> None:
    """The copies overlap for sure: the campaign's counters are locked until copies wait on the first
    one's uncommitted request id."""
    request = record_request(str(uuid.uuid4()), [ALICE, BOB, CAROL, ALICE])
    async with db.transaction():
        await held_counters(db)
        copies = [asyncio.ensure_future(stub.RecordSends(request, timeout=30)) for _ in range(5)]
        # The first copy waits on the counters, two others at least on its request id (the server's pool
        # holds 4 connections, and its health probe may hold one).
        await waiting(db, 3)
    replies = await asyncio.gather(*copies)
    assert [reply.recorded_count for reply in replies] == [4] * 5
    assert await sends(db) == 4
    assert await report(reporting) == (4, 3)


async def test_concurrent_checks_with_one_id_record_once_and_answer_alike(
    stub: Any, reporting: Any, db: asyncpg.Connection
) -> None:
    await stub.QuarantineNumbers(
        pb.QuarantineNumbersRequest(licence_id="acme", phone_numbers=[CAROL], actor="ops", reason="asked")
    )
    request = check_request(str(uuid.uuid4()), [ALICE, BOB, CAROL])
    async with db.transaction():
        await held_counters(db)
        copies = [asyncio.ensure_future(stub.CheckBatch(request, timeout=30)) for _ in range(5)]
        await waiting(db, 3)
    replies = await asyncio.gather(*copies)
    assert {reply.SerializeToString() for reply in replies} == {replies[0].SerializeToString()}
    assert (replies[0].allowed_count, replies[0].blocked_count, replies[0].recorded_sends) == (2, 1, 2)
    assert await sends(db) == 2
    assert await report(reporting) == (2, 2)


async def test_a_retry_after_a_client_timeout_records_nothing_twice(
    stub: Any, reporting: Any, db: asyncpg.Connection
) -> None:
    """The caller gave up while the server was still recording: it cannot know whether the sends were
    recorded, and retries with the same id once the server is responsive again."""
    request = record_request(str(uuid.uuid4()), [ALICE, BOB])
    async with db.transaction():
        await held_counters(db)
        with pytest.raises(grpc.aio.AioRpcError) as timed_out:
            await stub.RecordSends(request, timeout=0.5)
        assert timed_out.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    retried = await stub.RecordSends(request, timeout=10)
    again = await stub.RecordSends(request, timeout=10)
    assert retried.recorded_count == again.recorded_count == 2
    assert await sends(db) == 2
    assert await report(reporting) == (2, 2)


async def test_a_repeated_check_gets_the_first_answer_but_never_a_stale_allow(
    stub: Any, reporting: Any, db: asyncpg.Connection
) -> None:
    """A number quarantined between the first answer and its repeat is BLOCK in the repeat (the one
    difference from the first answer: never an ALLOW for a number that said STOP since); nothing is recorded
    again, and recorded_sends is the first answer's."""
    request = check_request(str(uuid.uuid4()), [ALICE, BOB])
    first = await stub.CheckBatch(request, timeout=10)
    assert first.allowed_count == 2
    assert await stub.CheckBatch(request, timeout=10) == first  # nothing changed: the first answer as it was
    await stub.QuarantineNumbers(
        pb.QuarantineNumbersRequest(licence_id="acme", phone_numbers=[ALICE], actor="ops", reason="asked")
    )
    repeated = await stub.CheckBatch(request, timeout=10)
    assert [pb.Verdict.Name(r.verdict) for r in repeated.results] == ["VERDICT_BLOCK", "VERDICT_ALLOW"]
    assert repeated.results[0].reason == pb.CHECK_REASON_QUARANTINED
    assert repeated.results[1] == first.results[1]
    assert (repeated.allowed_count, repeated.blocked_count, repeated.recorded_sends) == (1, 1, 2)
    assert await sends(db) == 2
    fresh = await stub.CheckBatch(check_request(str(uuid.uuid4()), [ALICE, BOB]), timeout=10)
    assert (fresh.allowed_count, fresh.blocked_count, fresh.recorded_sends) == (1, 1, 1)
    assert await report(reporting) == (3, 2)


async def test_ids_compare_case_insensitively(stub: Any, db: asyncpg.Connection) -> None:
    request_id = str(uuid.uuid4())
    await stub.RecordSends(record_request(request_id, [ALICE]), timeout=10)
    repeated = await stub.RecordSends(record_request(request_id.upper(), [ALICE]), timeout=10)
    assert repeated.recorded_count == 1
    assert await sends(db) == 1


async def test_the_same_id_for_a_different_request_is_refused(stub: Any, db: asyncpg.Connection) -> None:
    request_id = str(uuid.uuid4())
    await stub.RecordSends(record_request(request_id, [ALICE]), timeout=10)
    for different in (record_request(request_id, [BOB]), record_request(request_id, [ALICE], "autumn")):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await stub.RecordSends(different, timeout=10)
        assert refused.value.code() == grpc.StatusCode.ALREADY_EXISTS
        assert "request_id" in (refused.value.details() or "")
        info = error_info(refused.value)
        assert (info.reason, dict(info.metadata)) == ("REQUEST_ID_REUSED", {"field": "request_id"})
    assert await sends(db) + await sends(db, "autumn") == 1


async def test_an_id_belongs_to_its_licence_and_method(stub: Any, db: asyncpg.Connection) -> None:
    """Another licence, or the other method, choosing the same id is another request."""
    request_id = str(uuid.uuid4())
    await stub.RecordSends(record_request(request_id, [ALICE]), timeout=10)
    checked = await stub.CheckBatch(check_request(request_id, [ALICE, BOB]), timeout=10)
    other_licence = record_request(request_id, [BOB])
    other_licence.licence_id = "globex"
    other = await stub.RecordSends(other_licence, timeout=10)
    assert (checked.recorded_sends, other.recorded_count) == (2, 1)
    assert await sends(db) == 3


async def test_a_failed_first_attempt_keeps_no_id(stub: Any, db: asyncpg.Connection) -> None:
    """The id is recorded in the statement that records the sends: rolled back with them, so the retry
    records them."""
    await db.execute(
        "CREATE FUNCTION refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE 'refused'; END $$;"
        " CREATE TRIGGER refuse BEFORE INSERT ON campaign_counters FOR EACH ROW EXECUTE FUNCTION refuse()"
    )
    request = record_request(str(uuid.uuid4()), [ALICE, BOB])
    with pytest.raises(grpc.aio.AioRpcError) as failed:
        await stub.RecordSends(request, timeout=10)
    assert failed.value.code() == grpc.StatusCode.INTERNAL
    assert await db.fetchval("SELECT count(*) FROM send_requests") == 0
    await db.execute("DROP TRIGGER refuse ON campaign_counters")
    retried = await stub.RecordSends(request, timeout=10)
    assert retried.recorded_count == 2
    assert await sends(db) == 2


async def test_without_an_id_every_call_records(stub: Any, db: asyncpg.Connection) -> None:
    for _ in range(2):
        await stub.RecordSends(record_request("", [ALICE]), timeout=10)
        await stub.CheckBatch(check_request("", [BOB]), timeout=10)
    assert await sends(db) == 4
    assert await db.fetchval("SELECT count(*) FROM send_requests") == 0


async def test_a_check_without_a_campaign_is_answered_afresh(stub: Any, db: asyncpg.Connection) -> None:
    request = check_request(str(uuid.uuid4()), [ALICE], campaign="")
    first = await stub.CheckBatch(request, timeout=10)
    await stub.QuarantineNumbers(
        pb.QuarantineNumbersRequest(licence_id="acme", phone_numbers=[ALICE], actor="ops", reason="asked")
    )
    second = await stub.CheckBatch(request, timeout=10)
    assert (first.allowed_count, second.blocked_count) == (1, 1)
    assert await db.fetchval("SELECT count(*) FROM send_requests") == 0


@pytest.mark.parametrize(
    "request_id",
    [
        "not-a-uuid",
        "0b6f5c3e8f4e4d7a9c1b2a3d4e5f6a7b",
        "{0b6f5c3e-8f4e-4d7a-9c1b-2a3d4e5f6a7b}",
        str(uuid.UUID(int=0)),
    ],
)
async def test_a_malformed_id_names_the_field(stub: Any, db: asyncpg.Connection, request_id: str) -> None:
    for call, request in (
        (stub.RecordSends, record_request(request_id, [ALICE])),
        (stub.CheckBatch, check_request(request_id, [ALICE])),
    ):
        with pytest.raises(grpc.aio.AioRpcError) as refused:
            await call(request, timeout=10)
        assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert bad_fields(refused.value) == ["request_id"]
    assert await sends(db) == 0


async def test_expired_ids_are_deleted_by_the_maintenance(
    app: Application, stub: Any, db: asyncpg.Connection
) -> None:
    """After the retention (24 h by default) an id is forgotten: the same request then records again."""
    old, recent = str(uuid.uuid4()), str(uuid.uuid4())
    await stub.RecordSends(record_request(old, [ALICE]), timeout=10)
    await stub.RecordSends(record_request(recent, [BOB]), timeout=10)
    await db.execute(
        "UPDATE send_requests SET created_at = now() - interval '24 hours 1 second' WHERE request_id = $1",
        uuid.UUID(old),
    )
    await app.maintain_once()
    kept = await db.fetch("SELECT request_id FROM send_requests")
    assert [str(row["request_id"]) for row in kept] == [recent]
    await stub.RecordSends(record_request(old, [ALICE]), timeout=10)
    await stub.RecordSends(record_request(recent, [BOB]), timeout=10)
    assert await sends(db) == 3
