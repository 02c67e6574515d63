"""The Python client against a real server: every test runs with `AsyncClient` and with `Client`."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from clients import EitherClient
from stopgate import (
    AsyncClient,
    CheckReason,
    InboundEvent,
    IngestOutcome,
    InteractionStatus,
    MessageCategory,
    Verdict,
    as_datetime,
    write_csv,
)
from stopgate.errors import InvalidArgumentError, NotFoundError, from_status
from stopgate.v1 import (
    common_pb2,
    message_compliance_pb2,
    quarantine_check_pb2,
    reporting_pb2,
    stop_ingest_pb2,
)
from stopgate_server.app import Application

MARKETING = common_pb2.MESSAGE_CATEGORY_MARKETING
SMS_REPLY = common_pb2.EVENT_SOURCE_SMS_REPLY


def stop(event_id: str, phone: str, text: str = "STOP", recipient: str = "36180") -> InboundEvent:
    return InboundEvent(
        event_id=event_id, source=SMS_REPLY, phone_number=phone, text=text, recipient=recipient
    )


async def test_check_batch_blocks_quarantined_and_marks_invalid(client: EitherClient) -> None:
    await client.call("quarantine_numbers", "acme", ["+33612345678"], actor="ops", reason="complaint")
    reply = await client.call(
        "check_batch",
        "acme",
        ["+33612345678", "06 12 34 56 79", "nonsense"],
        sender="36180",
        category=MARKETING,
        default_region="FR",
    )
    assert [r.verdict for r in reply.results] == [
        quarantine_check_pb2.VERDICT_BLOCK,
        quarantine_check_pb2.VERDICT_ALLOW,
        quarantine_check_pb2.VERDICT_INVALID,
    ]
    assert reply.results[0].reason == quarantine_check_pb2.CHECK_REASON_QUARANTINED
    assert reply.results[1].e164 == "+33612345679"
    assert (reply.allowed_count, reply.blocked_count, reply.invalid_count) == (1, 1, 1)


async def test_check_batch_splits_25000_numbers_and_keeps_their_order(client: EitherClient) -> None:
    numbers = [f"+336{i:08d}" for i in range(25_000)]
    quarantined = numbers[::1_000]
    await client.call("quarantine_numbers", "acme", quarantined, actor="ops", reason="complaint")

    reply = await client.call("check_batch", "acme", numbers, sender="36180", category=MARKETING)

    assert [r.phone_number for r in reply.results] == numbers  # one server request holds at most 10,000
    blocked = [r.phone_number for r in reply.results if r.verdict == quarantine_check_pb2.VERDICT_BLOCK]
    assert blocked == quarantined
    assert (reply.allowed_count, reply.blocked_count) == (25_000 - 25, 25)


async def test_results_read_by_friendly_names_and_times_compare_with_the_callers(
    client: EitherClient,
) -> None:
    before = datetime.now(UTC)
    sent_at = (before - timedelta(hours=1)).astimezone(timezone(timedelta(hours=2)))  # any zone, aware
    await client.call("record_sends", "acme", "spring", ["+33612345678"], sender="36180", sent_at=sent_at)
    await client.call("quarantine_numbers", "acme", ["+33612345678"], actor="ops", reason="complaint")

    reply = await client.call(
        "check_batch",
        "acme",
        ["+33612345678", "nonsense"],
        sender="36180",
        category=MessageCategory.MARKETING,
    )

    blocked, invalid = reply.results
    assert Verdict(blocked.verdict) is Verdict.BLOCK
    assert CheckReason(blocked.reason).name == "QUARANTINED"
    assert Verdict(invalid.verdict).name == "INVALID"
    assert before <= as_datetime(blocked.since) <= datetime.now(UTC)
    (row,) = await client.collect("export_interactions", "acme", "spring")
    assert as_datetime(row.sent_at) == sent_at
    assert InteractionStatus(row.status) is InteractionStatus.SENT
    with pytest.raises(ValueError, match="start_time must be timezone-aware"):
        await client.call("get_licence_summary", "acme", start_time=datetime(2026, 1, 1))


async def test_sends_stops_reports_and_exports(client: EitherClient) -> None:
    recipients = ["+33612340001", "+33612340002", "+33612340003"]
    checked = await client.call(
        "check_batch", "acme", recipients, sender="36180", category=MARKETING, campaign_id="spring"
    )
    assert checked.recorded_sends == 3
    recorded = await client.call(
        "record_sends",
        "acme",
        "winter",
        ["+33612340009"],
        sender="36180",
        sent_at=datetime.now(UTC) - timedelta(days=1),
    )
    assert recorded.recorded_count == 1
    ingested = await client.call("ingest_event", stop("e-1", "+33612340002"))
    assert ingested.ack.outcome == stop_ingest_pb2.INGEST_OUTCOME_QUARANTINED
    assert (ingested.ack.attributed_licence_id, ingested.ack.attributed_campaign_id) == ("acme", "spring")

    report = (await client.call("get_campaign_report", "acme", "spring")).report
    assert (report.sent_count, report.unsubscribe_count) == (3, 1)
    campaigns = await client.collect("iter_campaign_reports", "acme", page_size=1)
    assert sorted(r.campaign_id for r in campaigns) == ["spring", "winter"]
    summary = await client.call("get_licence_summary", "acme")
    assert summary.quarantine_size == 1

    interactions = await client.collect("export_interactions", "acme", "spring")
    assert sorted((i.phone_number, i.status) for i in interactions) == [
        ("+33612340001", reporting_pb2.INTERACTION_STATUS_SENT),
        ("+33612340002", reporting_pb2.INTERACTION_STATUS_STOPPED),
        ("+33612340003", reporting_pb2.INTERACTION_STATUS_SENT),
    ]
    entries = await client.collect("export_quarantine", "acme")
    assert [(e.phone_number, e.campaign_id, e.event_id) for e in entries] == [
        ("+33612340002", "spring", "e-1")
    ]

    out = io.StringIO()
    assert write_csv(interactions, out, reporting_pb2.Interaction.DESCRIPTOR) == 3
    header, *rows = out.getvalue().splitlines()
    assert header == "phone_number,sent_at,sender,status,stopped_at,stop_source,stop_event_id"
    stopped = next(row for row in rows if row.startswith("+33612340002,"))
    assert stopped.split(",")[3] == "STOPPED"
    assert stopped.endswith(",SMS_REPLY,e-1")


async def test_manual_quarantine_release_and_status_history(client: EitherClient) -> None:
    first = await client.call("quarantine_numbers", "acme", ["+33612345678"], actor="ana", reason="complaint")
    again = await client.call("quarantine_numbers", "acme", ["+33612345678"], actor="ana", reason="complaint")
    released = await client.call(
        "release_numbers", "acme", ["+33612345678"], actor="bo", reason="new consent", consent_reference="c-7"
    )
    assert [first.results[0].outcome, again.results[0].outcome, released.results[0].outcome] == [
        quarantine_check_pb2.MANUAL_OUTCOME_QUARANTINED,
        quarantine_check_pb2.MANUAL_OUTCOME_ALREADY_QUARANTINED,
        quarantine_check_pb2.MANUAL_OUTCOME_RELEASED,
    ]
    status = await client.call("get_number_status", "acme", "06 12 34 56 78", default_region="FR")
    assert (status.e164, status.quarantined) == ("+33612345678", False)
    assert [(h.action, h.actor) for h in status.history] == [  # every action is audited, even a no-op
        (quarantine_check_pb2.HISTORY_ACTION_MANUAL_QUARANTINE, "ana"),
        (quarantine_check_pb2.HISTORY_ACTION_MANUAL_QUARANTINE, "ana"),
        (quarantine_check_pb2.HISTORY_ACTION_MANUAL_RELEASE, "bo"),
    ]
    assert status.history[-1].consent_reference == "c-7"


async def test_stream_events_acks_every_event_in_order_and_replays_as_duplicates(
    client: EitherClient,
) -> None:
    events = [stop(f"s-{i}", f"+3361100{i:04d}") for i in range(1_200)]

    acks = await client.collect("stream_events", events, batch_size=500)

    assert [a.event_id for a in acks] == [e.event_id for e in events]
    assert {a.outcome for a in acks} == {stop_ingest_pb2.INGEST_OUTCOME_QUARANTINED}
    replayed = await client.collect("stream_events", iter(events), batch_size=1_000)
    assert [a.event_id for a in replayed] == [e.event_id for e in events]
    assert {a.outcome for a in replayed} == {stop_ingest_pb2.INGEST_OUTCOME_DUPLICATE}


async def test_stream_events_rejects_a_bad_event_and_goes_on(client: EitherClient) -> None:
    events = [stop("ok-1", "+33612345671"), stop("bad", "not a number"), stop("ok-2", "+33612345672")]
    acks = await client.collect("stream_events", events)
    assert [a.outcome for a in acks] == [
        stop_ingest_pb2.INGEST_OUTCOME_QUARANTINED,
        stop_ingest_pb2.INGEST_OUTCOME_REJECTED,
        stop_ingest_pb2.INGEST_OUTCOME_QUARANTINED,
    ]
    assert "phone_number" in acks[1].error.message
    error = from_status(acks[1].error)  # as client/README.md shows
    assert isinstance(error, InvalidArgumentError)
    assert IngestOutcome(acks[1].outcome) is IngestOutcome.REJECTED
    assert [v.field for v in error.field_violations] == ["phone_number"], error


async def test_classify_and_message_compliance(client: EitherClient) -> None:
    classified = await client.call("classify_text", "ARRET")
    assert (classified.intent, classified.language) == (common_pb2.INTENT_OPT_OUT, "fr")
    texts = ["Promo -20%", "Promo -20% STOP au 36180"]
    one = await client.call("check_message", texts[0], country="FR", sender="ACME", category=MARKETING)
    many = await client.call("check_messages", texts, country="FR", sender="ACME", category=MARKETING)
    assert one.assessment == many.assessments[0]
    assert [a.mention_position for a in many.assessments] == [
        message_compliance_pb2.MENTION_POSITION_ABSENT,
        message_compliance_pb2.MENTION_POSITION_END,
    ]
    policies = await client.call("list_country_policies")
    assert {"FR", "BE"} <= {p.country for p in policies.policies}


async def test_check_messages_answers_a_full_request_of_the_longest_texts(client: EitherClient) -> None:
    # The answer, about 4.6 MB, is over gRPC's default limit on received messages (4 MiB).
    texts = [f"{i} {'Soldes d ete en magasin, offre speciale. ' * 40}"[:1520] for i in range(1000)]
    many = await client.call("check_messages", texts, country="FR", sender="ACME", category=MARKETING)
    assert [a.segments.parts for a in many.assessments] == [10] * 1000
    assert many.ByteSize() > 4 * 1024 * 1024


async def test_errors_are_typed_and_name_the_field(client: EitherClient) -> None:
    with pytest.raises(InvalidArgumentError) as bad:
        await client.call("check_batch", "", ["+33612345678"], sender="36180", category=MARKETING)
    assert [v.field for v in bad.value.field_violations] == ["licence_id"]
    assert bad.value.reason
    with pytest.raises(NotFoundError) as missing:
        await client.call("get_campaign_report", "acme", "never-sent")
    assert missing.value.reason == "NOT_FOUND"


async def test_a_slow_async_source_is_acked_before_it_ends(app: Application, api_token: str) -> None:
    """A partial batch leaves after `linger_s`: the first events are acked while the source still waits."""
    more = asyncio.Event()

    async def source() -> AsyncIterator[InboundEvent]:
        yield stop("slow-1", "+33612345601")
        await more.wait()
        yield stop("slow-2", "+33612345602")

    async with AsyncClient(f"127.0.0.1:{app.grpc_port}", token=api_token) as client:
        acks = client.stream_events(source(), batch_size=100, linger_s=0.05)
        first = await asyncio.wait_for(anext(acks), timeout=10)
        assert first.event_id == "slow-1"
        more.set()
        assert [a.event_id async for a in acks] == ["slow-2"]
