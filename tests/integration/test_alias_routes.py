"""Alias routes (DESIGN §1): a send from an alphanumeric alias records its reply shortcode, the number the
operator writes in place of "00000" in "STOP 00000"; a STOP sent to that shortcode is attributed to the
alias's send, and the alias's checks are blocked by that shortcode's stop list. Shortcodes are read in
ASCII digits at every edge. Against a real PostgreSQL and an in-process server."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from clients import EitherClient
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate import InboundEvent, Sender
from stopgate.v1 import (
    common_pb2,
    message_compliance_pb2,
    message_compliance_pb2_grpc,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)
from stopgate_server.domain.ingest import ATTRIBUTION_WINDOW

qc = quarantine_check_pb2
MARKETING = common_pb2.MESSAGE_CATEGORY_MARKETING
OPERATOR = common_pb2.EVENT_SOURCE_OPERATOR_NOTIFICATION
SMS_REPLY = common_pb2.EVENT_SOURCE_SMS_REPLY
ALIAS = Sender(address="ACME", reply_shortcode="36180")
PHONE = "+33612340004"
ROUTE = common_pb2.ATTRIBUTION_RULE_SHORTCODE_ROUTE
MOST_RECENT = common_pb2.ATTRIBUTION_RULE_MOST_RECENT_SEND
FULLWIDTH, ARABIC_INDIC, DEVANAGARI = 0xFF10, 0x0660, 0x0966  # where each script's digit zero is


def in_script(digits: str, zero: int) -> str:
    """ASCII `digits` written in another script's decimal digits."""
    return "".join(chr(zero + int(d)) for d in digits)


@pytest.fixture
def checks(channel: grpc.aio.Channel) -> Any:
    return quarantine_check_pb2_grpc.QuarantineCheckStub(channel)


@pytest.fixture
def ingest(channel: grpc.aio.Channel) -> Any:
    return stop_ingest_pb2_grpc.StopIngestStub(channel)


async def record(
    checks: Any, sender: Sender, campaign: str, *, licence: str = "acme", ago_s: float = 0
) -> None:
    sent_at = datetime.now(UTC) - timedelta(seconds=ago_s)
    request = qc.RecordSendsRequest(
        licence_id=licence, campaign_id=campaign, sender=sender, phone_numbers=[PHONE]
    )
    request.sent_at.FromDatetime(sent_at)
    await checks.RecordSends(request, timeout=10)


async def stop_to(
    ingest: Any, recipient: str, event_id: str = "evt-1", *, phone: str = PHONE, **fields: Any
) -> stop_ingest_pb2.EventAck:
    event = InboundEvent(
        event_id=event_id, source=OPERATOR, phone_number=phone, text="STOP", recipient=recipient, **fields
    )
    response = await ingest.IngestEvent(stop_ingest_pb2.IngestEventRequest(event=event), timeout=10)
    ack: stop_ingest_pb2.EventAck = response.ack
    return ack


async def verdict(checks: Any, sender: Sender, licence: str = "acme") -> tuple[int, int]:
    request = qc.CheckBatchRequest(
        licence_id=licence, sender=sender, category=MARKETING, phone_numbers=[PHONE]
    )
    (result,) = (await checks.CheckBatch(request, timeout=10)).results
    return result.verdict, result.reason


async def test_a_stop_to_an_alias_reply_shortcode_is_attributed_to_the_alias_send(
    checks: Any, ingest: Any
) -> None:
    await record(checks, ALIAS, "spring")

    ack = await stop_to(ingest, "36180")

    assert ack.outcome == stop_ingest_pb2.INGEST_OUTCOME_QUARANTINED
    assert (ack.attributed_licence_id, ack.attributed_campaign_id) == ("acme", "spring")
    assert ack.attribution_rule == ROUTE
    assert await verdict(checks, Sender(address="ACME")) == (qc.VERDICT_BLOCK, qc.CHECK_REASON_QUARANTINED)
    status = await checks.GetNumberStatus(qc.GetNumberStatusRequest(licence_id="acme", phone_number=PHONE))
    assert (status.quarantined, status.attributed_campaign_id, status.attribution_rule) == (
        True,
        "spring",
        ROUTE,
    )
    assert status.last_send.reply_shortcode == "36180"
    assert [entry.attribution_rule for entry in status.history] == [ROUTE]


async def test_a_send_routed_through_the_shortcode_comes_before_a_more_recent_one(
    checks: Any, ingest: Any
) -> None:
    await record(checks, ALIAS, "through-36180", ago_s=3600)
    await record(checks, Sender(address="OTHER", reply_shortcode="60999"), "through-60999", licence="globex")

    ack = await stop_to(ingest, "36180")

    assert (ack.attributed_licence_id, ack.attributed_campaign_id, ack.attribution_rule) == (
        "acme",
        "through-36180",
        ROUTE,
    )
    assert await verdict(checks, ALIAS) == (qc.VERDICT_BLOCK, qc.CHECK_REASON_QUARANTINED)
    assert await verdict(checks, Sender(address="60999"), "globex") == (qc.VERDICT_ALLOW, 0)


async def test_with_no_send_through_the_shortcode_the_most_recent_send_attributes(
    checks: Any, ingest: Any
) -> None:
    """An alias whose reply shortcode the sender service did not know: the STOP to the shortcode is still
    the licence's ("regardless of the unsubscribe method ... the most recent campaign sent")."""
    await record(checks, Sender(address="ACME"), "older", ago_s=7200)
    await record(checks, Sender(address="ACME"), "latest", ago_s=60)

    ack = await stop_to(ingest, "36180")

    assert (ack.attributed_licence_id, ack.attributed_campaign_id, ack.attribution_rule) == (
        "acme",
        "latest",
        MOST_RECENT,
    )
    assert await verdict(checks, Sender(address="ACME")) == (qc.VERDICT_BLOCK, qc.CHECK_REASON_QUARANTINED)


async def insert_send(
    db: asyncpg.Connection, phone: str, sent_at: datetime, campaign: str, sender: str, reply: str
) -> None:
    """A send as RecordSends stores it, at any time (RecordSends accepts only the last 31 days)."""
    await db.execute("SELECT stopgate_ensure_sends_partitions($1::date, 5)", sent_at)
    await db.execute(
        "INSERT INTO sends (phone, sent_at, licence_id, campaign_id, sender, reply_shortcode)"
        " VALUES ($1, $2, 'acme', $3, $4, $5)",
        phone,
        sent_at,
        campaign,
        sender,
        reply,
    )


async def test_only_a_send_through_another_route_must_be_within_the_window(
    ingest: Any, db: asyncpg.Connection
) -> None:
    old = datetime.now(UTC) - ATTRIBUTION_WINDOW - timedelta(days=1)
    phones = [f"+3361234{i:04d}" for i in range(4)]
    for phone in phones:
        await insert_send(db, phone, old, "ancient", "ACME", "36180")

    routed = await stop_to(ingest, "36180", "evt-1", phone=phones[0])
    hinted = await stop_to(ingest, "60999", "evt-2", phone=phones[1], licence_id="acme")
    unhinted = await stop_to(ingest, "60999", "evt-3", phone=phones[2])
    no_shortcode = await stop_to(ingest, "", "evt-4", phone=phones[3])

    assert (routed.attributed_campaign_id, routed.attribution_rule) == ("ancient", ROUTE)
    assert (hinted.attributed_licence_id, hinted.attributed_campaign_id) == ("acme", "")
    assert hinted.attribution_rule == common_pb2.ATTRIBUTION_RULE_LICENCE_HINT
    assert (unhinted.attributed_licence_id, unhinted.attribution_rule) == (
        "",
        common_pb2.ATTRIBUTION_RULE_UNATTRIBUTED,
    )
    assert (no_shortcode.attributed_campaign_id, no_shortcode.attribution_rule) == ("ancient", MOST_RECENT)


async def test_a_send_made_after_the_stop_is_not_what_it_answers(
    checks: Any, ingest: Any, db: asyncpg.Connection
) -> None:
    """A STOP replayed late (received_at an hour ago) belongs to the campaign before it, not to one sent
    since."""
    stopped_at = datetime.now(UTC) - timedelta(hours=1)
    await insert_send(db, PHONE, stopped_at - timedelta(hours=1), "before", "ACME", "36180")
    await record(checks, ALIAS, "after")
    received_at = Timestamp()
    received_at.FromDatetime(stopped_at)

    ack = await stop_to(ingest, "36180", received_at=received_at)

    assert (ack.attributed_campaign_id, ack.attribution_rule) == ("before", ROUTE)


async def test_an_opt_in_releases_only_the_licence_its_route_reached(checks: Any, ingest: Any) -> None:
    """A STOP through another route still quarantines the licence that last wrote (MOST_RECENT_SEND), but a
    START to some shortcode must not release a licence that never sent through it."""
    await record(checks, Sender(address="ACME"), "spring")  # reply shortcode not given
    stop = await stop_to(ingest, "36180")
    assert (stop.attributed_licence_id, stop.attribution_rule) == ("acme", MOST_RECENT)

    start = await ingest.IngestEvent(
        stop_ingest_pb2.IngestEventRequest(
            event=InboundEvent(
                event_id="mo-2", source=SMS_REPLY, phone_number=PHONE, text="START", recipient="60999"
            )
        ),
        timeout=10,
    )
    assert (start.ack.attributed_licence_id, start.ack.attribution_rule) == (
        "",
        common_pb2.ATTRIBUTION_RULE_UNATTRIBUTED,
    )
    assert await verdict(checks, Sender(address="ACME")) == (qc.VERDICT_BLOCK, qc.CHECK_REASON_QUARANTINED)


async def test_a_duplicate_repeats_the_rule_of_its_first_attribution(checks: Any, ingest: Any) -> None:
    await record(checks, ALIAS, "spring")
    first = await stop_to(ingest, "36180")
    again = await stop_to(ingest, "36180")
    assert again.outcome == stop_ingest_pb2.INGEST_OUTCOME_DUPLICATE
    assert (again.attributed_campaign_id, again.attribution_rule) == (first.attributed_campaign_id, ROUTE)


async def test_an_alias_check_is_blocked_by_its_reply_shortcode_stop_list(checks: Any, ingest: Any) -> None:
    """A STOP to a shared shortcode blocks every licence whose alias is carried by it, unattributed or not."""
    ack = await stop_to(ingest, "36180")  # no send known: unattributed, on the stop list only
    assert ack.attribution_rule == common_pb2.ATTRIBUTION_RULE_UNATTRIBUTED

    for licence in ("acme", "globex"):
        assert await verdict(checks, ALIAS, licence) == (
            qc.VERDICT_BLOCK,
            qc.CHECK_REASON_SHORTCODE_STOP_LIST,
        )
        assert await verdict(checks, Sender(address="ACME"), licence) == (qc.VERDICT_ALLOW, 0)
        assert await verdict(checks, Sender(address="ACME", reply_shortcode="60999"), licence) == (
            qc.VERDICT_ALLOW,
            0,
        )


@pytest.mark.parametrize("zero", [FULLWIDTH, ARABIC_INDIC, DEVANAGARI])
async def test_shortcodes_in_any_digits_are_one_shortcode(checks: Any, ingest: Any, zero: int) -> None:
    await stop_to(ingest, f" {in_script('36180', zero)} ")

    for sender in (
        Sender(address="36180"),
        Sender(address=in_script("36180", zero)),
        Sender(address="ACME", reply_shortcode=in_script("36180", zero)),
    ):
        assert await verdict(checks, sender, "globex") == (
            qc.VERDICT_BLOCK,
            qc.CHECK_REASON_SHORTCODE_STOP_LIST,
        )
    status = await checks.GetNumberStatus(qc.GetNumberStatusRequest(licence_id="globex", phone_number=PHONE))
    assert [entry.shortcode for entry in status.stop_lists] == ["36180"]


async def test_sends_record_shortcodes_in_ascii(checks: Any, ingest: Any) -> None:
    await record(checks, Sender(address=in_script("60999", FULLWIDTH)), "fullwidth")
    await record(checks, Sender(address="ACME", reply_shortcode=in_script("36180", DEVANAGARI)), "devanagari")

    status = await checks.GetNumberStatus(qc.GetNumberStatusRequest(licence_id="acme", phone_number=PHONE))
    assert (status.last_send.sender, status.last_send.reply_shortcode) == ("ACME", "36180")
    ack = await stop_to(ingest, "60999")
    assert (ack.attributed_campaign_id, ack.attribution_rule) == ("fullwidth", ROUTE)


@pytest.mark.parametrize(
    ("sender", "field", "description"),
    [
        (Sender(address="+447700900123", reply_shortcode="36180"), "sender.reply_shortcode", "longcode"),
        (Sender(address="60999", reply_shortcode="36180"), "sender.reply_shortcode", "shortcode itself"),
        (Sender(address="ACME", reply_shortcode="ACME"), "sender.reply_shortcode", "3 to 8 digits"),
        (Sender(address="ACME", reply_shortcode="12"), "sender.reply_shortcode", "3 to 8 digits"),
    ],
)
async def test_a_reply_shortcode_that_cannot_be_is_invalid(
    checks: Any, sender: Sender, field: str, description: str
) -> None:
    request = qc.CheckBatchRequest(
        licence_id="acme", sender=sender, category=MARKETING, phone_numbers=[PHONE]
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await checks.CheckBatch(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    status = rpc_status.from_call(caught.value)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    assert [(v.field, description in v.description) for v in bad_request.field_violations] == [(field, True)]


async def test_a_shortcode_sender_may_repeat_itself_as_reply_shortcode(checks: Any) -> None:
    assert await verdict(checks, Sender(address="36180", reply_shortcode=in_script("36180", FULLWIDTH))) == (
        qc.VERDICT_ALLOW,
        0,
    )


# MessageCompliance: the delivered text carries the reply shortcode, and its parts are counted with it.
LONG_SHORTCODE = "12345678"  # three digits longer than the placeholder "00000"
# 150 GSM-7 characters, then the mention: 160, one part as written, 163 and two parts as delivered.
ALIAS_TEXT = "Soldes d'hiver: -30% sur tout le magasin ce week-end. " + "x" * 95 + " STOP 00000"


@pytest.mark.parametrize(
    "fields",
    [
        {"sender": Sender(address="ACME", reply_shortcode=LONG_SHORTCODE)},
        {"sender": Sender(address="ACME"), "shortcode": LONG_SHORTCODE},
        {"sender": Sender(address="ACME", reply_shortcode=in_script(LONG_SHORTCODE, FULLWIDTH))},
        {"sender": Sender(address="ACME"), "shortcode": in_script(LONG_SHORTCODE, ARABIC_INDIC)},
    ],
)
async def test_the_delivered_text_and_its_parts_use_the_reply_shortcode(
    channel: grpc.aio.Channel, fields: dict[str, Any]
) -> None:
    assert len(ALIAS_TEXT) == 160
    stub = message_compliance_pb2_grpc.MessageComplianceStub(channel)
    request = message_compliance_pb2.CheckMessageRequest(
        text=ALIAS_TEXT, country="FR", category=MARKETING, **fields
    )
    assessment = (await stub.CheckMessage(request, timeout=10)).assessment

    assert assessment.verdict == message_compliance_pb2.COMPLIANCE_VERDICT_COMPLIANT
    assert assessment.delivered_text == ALIAS_TEXT.replace("00000", LONG_SHORTCODE)
    assert (assessment.segments.parts, assessment.delivered_segments.parts) == (1, 2)


async def test_a_shortcode_that_disagrees_with_the_reply_shortcode_is_invalid(
    channel: grpc.aio.Channel,
) -> None:
    stub = message_compliance_pb2_grpc.MessageComplianceStub(channel)
    request = message_compliance_pb2.CheckMessageRequest(
        text=ALIAS_TEXT, country="FR", category=MARKETING, sender=ALIAS, shortcode="60999"
    )
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stub.CheckMessage(request, timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "shortcode" in (caught.value.details() or "")


async def test_the_seed_alias_flow_end_to_end_through_the_client(client: EitherClient) -> None:
    """The seeds' most common French flow: a marketing SMS from the alias ACME ends with "STOP 00000"; the
    operator writes the reply shortcode 36180 in; the person replies STOP to 36180; the operator notifies."""
    others = [f"+3361234{i:04d}" for i in range(10, 13)]
    sent = await client.call(
        "check_batch", "acme", [PHONE, *others], sender=ALIAS, category=MARKETING, campaign_id="soldes"
    )
    assert sent.recorded_sends == 4

    ack = await client.call(
        "ingest_event",
        InboundEvent(
            event_id="op-1", source=OPERATOR, phone_number="33612340004", text="STOP", recipient="36180"
        ),
    )
    assert ack.ack.outcome == stop_ingest_pb2.INGEST_OUTCOME_QUARANTINED
    assert (ack.ack.attributed_licence_id, ack.ack.attributed_campaign_id) == ("acme", "soldes")
    assert ack.ack.attribution_rule == ROUTE

    again = await client.call("check_batch", "acme", [PHONE, *others], sender=ALIAS, category=MARKETING)
    assert [r.verdict for r in again.results] == [qc.VERDICT_BLOCK, *[qc.VERDICT_ALLOW] * 3]
    assert again.results[0].reason == qc.CHECK_REASON_QUARANTINED

    report = await client.call("get_campaign_report", "acme", "soldes")
    assert (report.report.unsubscribe_count, report.report.unique_recipients) == (1, 4)
    assert report.report.unsubscribe_rate_percent == pytest.approx(25.0)

    rows = await client.collect("export_interactions", "acme", "soldes")
    stopped = [
        (r.phone_number, r.status) for r in rows if r.status == reporting_pb2.INTERACTION_STATUS_STOPPED
    ]
    assert stopped == [(PHONE, reporting_pb2.INTERACTION_STATUS_STOPPED)]
    assert {r.sender for r in rows} == {"ACME"}

    start = await client.call(
        "ingest_event",
        InboundEvent(event_id="mo-2", source=SMS_REPLY, phone_number=PHONE, text="START", recipient="36180"),
    )
    assert start.ack.outcome == stop_ingest_pb2.INGEST_OUTCOME_RELEASED
    assert start.ack.attribution_rule == ROUTE
    released = await client.call("check_batch", "acme", [PHONE], sender=ALIAS, category=MARKETING)
    assert [r.verdict for r in released.results] == [qc.VERDICT_ALLOW]


async def test_an_event_points_to_the_very_send_it_was_attributed_to(
    checks: Any, ingest: Any, db: asyncpg.Connection, channel: grpc.aio.Channel
) -> None:
    """Two sends to one number at the same instant (a number listed twice in one RecordSends): the STOP is
    attributed to one send, by its id, and the export shows that one STOPPED and the other SENT."""
    request = qc.RecordSendsRequest(
        licence_id="acme", campaign_id="twice", sender=ALIAS, phone_numbers=[PHONE, PHONE]
    )
    await checks.RecordSends(request, timeout=10)
    await stop_to(ingest, "36180")
    sends = await db.fetch("SELECT send_id, sent_at FROM sends WHERE phone = $1", PHONE)
    attributed = await db.fetchval("SELECT attributed_send_id FROM inbound_events WHERE event_id = 'evt-1'")
    assert len(sends) == 2
    assert sends[0]["sent_at"] == sends[1]["sent_at"]
    assert attributed in {row["send_id"] for row in sends}
    reporting = reporting_pb2_grpc.ReportingStub(channel)
    export = reporting_pb2.ExportInteractionsRequest(licence_id="acme", campaign_id="twice")
    statuses = [
        row.status async for chunk in reporting.ExportInteractions(export) for row in chunk.interactions
    ]
    assert sorted(statuses) == [
        reporting_pb2.INTERACTION_STATUS_SENT,
        reporting_pb2.INTERACTION_STATUS_STOPPED,
    ]
