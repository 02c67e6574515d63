"""StopIngest through the gRPC stubs: every rule of attribution, block lists, opt-in, duplicates, rejects."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from google.rpc import code_pb2, error_details_pb2
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)
from stopgate_server.domain.ingest import Classified, Inbound, Source
from stopgate_server.domain.keywords import Classification, Intent, MatchKind
from stopgate_server.store.ingest import round_parameters
from stopgate_server.store.queries import QUERIES
from stopgate_server.usecases.ingest import BOUNDS

pb, qc = stop_ingest_pb2, quarantine_check_pb2
SMS, GATEWAY, WEB = (
    common_pb2.EVENT_SOURCE_SMS_REPLY,
    common_pb2.EVENT_SOURCE_GATEWAY,
    common_pb2.EVENT_SOURCE_WEB_UNSUBSCRIBE,
)
ALICE, BOB = "+33612345678", "+33698765432"


@pytest.fixture
def ingest(channel: grpc.aio.Channel) -> Any:
    return stop_ingest_pb2_grpc.StopIngestStub(channel)


@pytest.fixture
def checks(channel: grpc.aio.Channel) -> Any:
    return quarantine_check_pb2_grpc.QuarantineCheckStub(channel)


def event(
    event_id: str, phone: str = ALICE, text: str = "STOP", recipient: str = "36180", **fields: Any
) -> pb.InboundEvent:
    fields.setdefault("source", SMS)
    return pb.InboundEvent(event_id=event_id, phone_number=phone, text=text, recipient=recipient, **fields)


async def send(
    checks: Any, licence: str, campaign: str, sender: str, phones: list[str], ago: timedelta
) -> None:
    request = qc.RecordSendsRequest(
        licence_id=licence,
        campaign_id=campaign,
        sender=common_pb2.Sender(address=sender),
        phone_numbers=phones,
    )
    request.sent_at.FromDatetime(datetime.now(UTC) - ago)
    await checks.RecordSends(request, timeout=10)


async def one(ingest: Any, raw: pb.InboundEvent) -> pb.EventAck:
    response = await ingest.IngestEvent(pb.IngestEventRequest(event=raw), timeout=10)
    ack: pb.EventAck = response.ack
    return ack


async def verdict(checks: Any, licence: str, sender: str, phone: str) -> str:
    request = qc.CheckBatchRequest(
        licence_id=licence,
        sender=common_pb2.Sender(address=sender),
        category=common_pb2.MESSAGE_CATEGORY_MARKETING,
        phone_numbers=[phone],
    )
    response = await checks.CheckBatch(request, timeout=10)
    return str(qc.CheckReason.Name(response.results[0].reason))


async def test_stop_is_attributed_to_the_last_campaign_and_blocks_at_once(
    ingest: Any, checks: Any, db: Any
) -> None:
    await send(checks, "acme", "autumn", "36180", [ALICE], timedelta(days=3))
    await send(checks, "acme", "winter", "36180", [ALICE], timedelta(hours=2))
    await send(checks, "acme", "other-code", "60999", [ALICE], timedelta(hours=1))
    ack = await one(ingest, event("e1", text="Arrêt"))
    assert ack.outcome == pb.INGEST_OUTCOME_QUARANTINED
    assert (ack.intent, ack.matched_keyword, ack.match_kind) == (
        common_pb2.INTENT_OPT_OUT,
        "ARRET",
        common_pb2.MATCH_KIND_EXACT,
    )
    assert (ack.attributed_licence_id, ack.attributed_campaign_id) == ("acme", "winter")  # through 36180
    assert ack.e164 == ALICE
    assert ack.confirmation_allowed
    assert ack.confirmation_text.startswith("Vous êtes désinscrit")
    assert await verdict(checks, "acme", "ACME", ALICE) == "CHECK_REASON_QUARANTINED"
    assert await verdict(checks, "globex", "36180", ALICE) == "CHECK_REASON_SHORTCODE_STOP_LIST"
    assert await verdict(checks, "globex", "ACME", ALICE) == "CHECK_REASON_UNSPECIFIED"
    counters = await db.fetchrow("SELECT * FROM campaign_counters WHERE campaign_id = 'winter'")
    assert (counters["unsubscribe_count"], counters["unsubscribes_sms_reply"]) == (1, 1)
    stored = await db.fetchrow("SELECT * FROM inbound_events WHERE event_id = 'e1'")
    assert (stored["raw_text"], stored["outcome"], stored["campaign_id"]) == (
        "Arrêt",
        "QUARANTINED",
        "winter",
    )
    assert stored["attributed_sent_at"] is not None

    again = await one(ingest, event("e2", text="STOP"))
    assert again.outcome == pb.INGEST_OUTCOME_ALREADY_QUARANTINED
    counters = await db.fetchrow(
        "SELECT unsubscribe_count FROM campaign_counters WHERE campaign_id = 'winter'"
    )
    assert counters["unsubscribe_count"] == 1  # people who opted out, not STOP messages


async def test_the_seed_gateway_payload(ingest: Any, checks: Any, db: Any) -> None:
    """id=127067356 number=447777777777 network=ORANGEUK shortcode=60999 message='ask yourcompanycode stop'"""
    await send(checks, "acme", "uk-promo", "60999", ["+447777777777"], timedelta(days=1))
    raw = pb.InboundEvent(
        event_id="127067356",
        source=GATEWAY,
        phone_number="447777777777",
        network="ORANGEUK",
        recipient="60999",
        text="ask yourcompanycode stop",
        country_prefix="",
    )
    ack = await one(ingest, raw)
    assert ack.outcome == pb.INGEST_OUTCOME_QUARANTINED
    assert (ack.e164, ack.matched_keyword) == ("+447777777777", "ask <company> stop")
    assert (ack.attributed_licence_id, ack.attributed_campaign_id) == ("acme", "uk-promo")
    assert ack.confirmation_text.startswith("You are unsubscribed")
    stored = await db.fetchrow(
        "SELECT network, raw_text, source FROM inbound_events WHERE event_id = '127067356'"
    )
    assert tuple(stored) == ("ORANGEUK", "ask yourcompanycode stop", "GATEWAY")
    assert await verdict(checks, "acme", "60999", "+447777777777") == "CHECK_REASON_QUARANTINED"


async def test_shared_shortcode_attributes_across_licences(ingest: Any, checks: Any) -> None:
    await send(checks, "acme", "a1", "36180", [ALICE], timedelta(hours=5))
    await send(checks, "globex", "g1", "36180", [ALICE], timedelta(hours=1))
    ack = await one(ingest, event("e1"))
    assert (ack.attributed_licence_id, ack.attributed_campaign_id) == ("globex", "g1")
    assert await verdict(checks, "acme", "ACME", ALICE) == "CHECK_REASON_UNSPECIFIED"
    assert await verdict(checks, "acme", "36180", ALICE) == "CHECK_REASON_SHORTCODE_STOP_LIST"


async def test_without_a_known_send(ingest: Any, checks: Any, db: Any) -> None:
    hinted = await one(ingest, event("e1", licence_id="acme", recipient=""))
    assert (hinted.outcome, hinted.attributed_licence_id, hinted.attributed_campaign_id) == (
        pb.INGEST_OUTCOME_QUARANTINED, "acme", "",
    )  # fmt: skip
    unattributed = await one(ingest, event("e2", phone=BOB))
    assert (unattributed.outcome, unattributed.attributed_licence_id) == (pb.INGEST_OUTCOME_QUARANTINED, "")
    assert await verdict(checks, "anyone", "36180", BOB) == "CHECK_REASON_SHORTCODE_STOP_LIST"
    history = await db.fetchrow(
        "SELECT licence_id, shortcode, action FROM number_history WHERE event_id = 'e2'"
    )
    assert tuple(history) == (None, "36180", "OPT_OUT")
    nowhere = await one(ingest, event("e3", phone="+33611111111", recipient=""))
    assert nowhere.outcome == pb.INGEST_OUTCOME_NO_ACTION
    assert await db.fetchval("SELECT outcome FROM inbound_events WHERE event_id = 'e3'") == "NO_ACTION"


async def test_duplicates_repeat_the_first_attribution(ingest: Any, checks: Any, db: Any) -> None:
    await send(checks, "acme", "c1", "36180", [ALICE], timedelta(hours=1))
    first = await one(ingest, event("e1"))
    await send(checks, "acme", "c2", "36180", [ALICE], timedelta(minutes=1))
    again = await one(ingest, event("e1"))
    assert again.outcome == pb.INGEST_OUTCOME_DUPLICATE
    assert (again.attributed_licence_id, again.attributed_campaign_id) == (first.attributed_licence_id, "c1")
    assert not again.confirmation_allowed
    response = await ingest.StreamEvents(
        iter([pb.StreamEventsRequest(events=[event("e9", phone=BOB), event("e9", phone=BOB)])])
    ).read()
    assert [a.outcome for a in response.acks] == [pb.INGEST_OUTCOME_QUARANTINED, pb.INGEST_OUTCOME_DUPLICATE]
    assert await db.fetchval("SELECT count(*) FROM inbound_events") == 2
    assert await db.fetchval("SELECT count(*) FROM number_history") == 2


async def test_one_phone_several_times_in_a_batch_is_applied_in_order(
    ingest: Any, checks: Any, db: Any
) -> None:
    await send(checks, "acme", "c1", "36180", [ALICE], timedelta(hours=1))
    batch = [
        event("e1"),
        event("e2", text="START"),
        event("e3"),
        event("e4", phone=BOB),  # no send: on the shortcode's stop list only
        event("e1"),
    ]
    response = await ingest.StreamEvents(iter([pb.StreamEventsRequest(events=batch)])).read()
    assert [a.outcome for a in response.acks] == [
        pb.INGEST_OUTCOME_QUARANTINED,
        pb.INGEST_OUTCOME_RELEASED,
        pb.INGEST_OUTCOME_QUARANTINED,
        pb.INGEST_OUTCOME_QUARANTINED,
        pb.INGEST_OUTCOME_DUPLICATE,
    ]
    assert [a.attributed_campaign_id for a in response.acks] == ["c1", "c1", "c1", "", "c1"]
    assert await verdict(checks, "acme", "ACME", ALICE) == "CHECK_REASON_QUARANTINED"
    history = await db.fetch(
        "SELECT action, event_id FROM number_history WHERE phone = $1 ORDER BY id", ALICE
    )
    assert [(r["action"], r["event_id"]) for r in history] == [
        ("OPT_OUT", "e1"),
        ("OPT_IN", "e2"),
        ("OPT_OUT", "e3"),
    ]
    assert await db.fetchval("SELECT unsubscribe_count FROM campaign_counters WHERE campaign_id = 'c1'") == 2

    # An event stored before, next to a new one of the same phone: the new one is applied after it.
    response = await ingest.StreamEvents(
        iter([pb.StreamEventsRequest(events=[event("e3"), event("e5", text="START")])])
    ).read()
    assert [a.outcome for a in response.acks] == [pb.INGEST_OUTCOME_DUPLICATE, pb.INGEST_OUTCOME_RELEASED]
    assert await verdict(checks, "acme", "ACME", ALICE) == "CHECK_REASON_UNSPECIFIED"
    assert await db.fetchval("SELECT count(*) FROM inbound_events") == 5


async def test_a_mixed_batch_rejects_bad_events_and_keeps_the_stream_open(ingest: Any, db: Any) -> None:
    batch = [
        event("ok-1"),
        event("", text="STOP"),
        event("bad-phone", phone="not a number"),
        event("bad-source", source=0),
        event("ok-2", phone=BOB, text="START"),
        event("manual", source=common_pb2.EVENT_SOURCE_MANUAL),
    ]
    call = ingest.StreamEvents()
    await call.write(pb.StreamEventsRequest(events=batch))
    response = await call.read()
    assert [a.outcome for a in response.acks] == [
        pb.INGEST_OUTCOME_QUARANTINED,
        pb.INGEST_OUTCOME_REJECTED,
        pb.INGEST_OUTCOME_REJECTED,
        pb.INGEST_OUTCOME_REJECTED,
        pb.INGEST_OUTCOME_NO_ACTION,
        pb.INGEST_OUTCOME_REJECTED,
    ]
    bad = response.acks[2].error
    assert bad.code == code_pb2.INVALID_ARGUMENT
    details = error_details_pb2.BadRequest()
    assert bad.details[0].Unpack(details)
    assert [v.field for v in details.field_violations] == ["phone_number"]
    await call.write(pb.StreamEventsRequest(events=[event("ok-3", phone="+33622222222")]))
    assert [a.outcome for a in (await call.read()).acks] == [pb.INGEST_OUTCOME_QUARANTINED]
    await call.done_writing()
    assert await db.fetchval("SELECT count(*) FROM rejected_events") == 4
    assert "not a number" in await db.fetchval(
        "SELECT raw_event::text FROM rejected_events WHERE event_id = 'bad-phone'"
    )


async def test_nul_characters_are_rejected_and_the_raw_event_still_stored(ingest: Any, db: Any) -> None:
    """PostgreSQL cannot store U+0000: such an event is REJECTED (not INTERNAL) and kept, NUL replaced."""
    ack = await one(ingest, event("nul\x00id", text="ST\x00OP"))
    assert ack.outcome == pb.INGEST_OUTCOME_REJECTED
    assert "NUL" in ack.error.message
    stored = await db.fetchrow("SELECT event_id, raw_event->>'text' AS text FROM rejected_events")
    assert (stored["event_id"], stored["text"]) == ("nul\ufffdid", "ST\ufffdOP")


async def test_opt_in_releases_what_the_stop_blocked(ingest: Any, checks: Any, db: Any) -> None:
    await send(checks, "acme", "c1", "36180", [ALICE], timedelta(hours=1))
    await one(ingest, event("stop-1"))
    ack = await one(ingest, event("start-1", text="START"))
    assert (ack.outcome, ack.intent, ack.attributed_licence_id) == (
        pb.INGEST_OUTCOME_RELEASED,
        common_pb2.INTENT_OPT_IN,
        "acme",
    )
    assert await verdict(checks, "acme", "36180", ALICE) == "CHECK_REASON_UNSPECIFIED"
    actions = await db.fetch("SELECT action FROM number_history WHERE phone = $1 ORDER BY id", ALICE)
    assert [r["action"] for r in actions] == ["OPT_OUT", "OPT_IN"]
    service_keyword = await one(
        ingest, event("kw-1", phone=BOB, text="PIZZA", intent_hint=common_pb2.INTENT_OPT_IN)
    )
    assert (service_keyword.outcome, service_keyword.intent) == (
        pb.INGEST_OUTCOME_NO_ACTION,
        common_pb2.INTENT_OPT_IN,
    )


async def test_help_and_chatter(ingest: Any, db: Any) -> None:
    help_ack = await one(ingest, event("h1", text="AIDE"))
    assert (help_ack.outcome, help_ack.intent) == (pb.INGEST_OUTCOME_NO_ACTION, common_pb2.INTENT_HELP)
    assert help_ack.confirmation_text.startswith("Répondez STOP")
    assert not help_ack.confirmation_allowed
    chat = await one(ingest, event("c1", text="don't stop, I love these deals"))
    assert (chat.outcome, chat.intent) == (pb.INGEST_OUTCOME_NO_ACTION, common_pb2.INTENT_NONE)
    assert await db.fetchval("SELECT count(*) FROM inbound_events") == 2


async def test_web_unsubscribes_and_operator_notifications_opt_out(ingest: Any, db: Any) -> None:
    web = await one(
        ingest, event("w1", text="", recipient="", source=WEB, reason="too many messages", licence_id="acme")
    )
    assert (web.outcome, web.intent) == (pb.INGEST_OUTCOME_QUARANTINED, common_pb2.INTENT_OPT_OUT)
    assert await db.fetchval("SELECT reason FROM number_history WHERE event_id = 'w1'") == "too many messages"
    operator = await one(
        ingest, event("o1", phone=BOB, text="", source=common_pb2.EVENT_SOURCE_OPERATOR_NOTIFICATION)
    )
    assert operator.outcome == pb.INGEST_OUTCOME_QUARANTINED


async def test_old_events_are_stored_without_a_confirmation(ingest: Any) -> None:
    raw = event("late-1")
    raw.received_at.FromDatetime(datetime.now(UTC) - timedelta(hours=2))
    ack = await one(ingest, raw)
    assert ack.outcome == pb.INGEST_OUTCOME_QUARANTINED
    assert not ack.confirmation_allowed
    too_old = event("late-2")
    too_old.received_at.FromDatetime(datetime.now(UTC) - timedelta(days=40))
    assert (await one(ingest, too_old)).outcome == pb.INGEST_OUTCOME_REJECTED


async def test_the_duplicate_check_probes_the_primary_key_whatever_the_statistics(db: Any) -> None:
    """Statistics taken while inbound_events was empty make a scan of it look free, and a plan made then
    stays cached on the connection while the table grows: the duplicate check must still only probe the key
    (migration 0006), not scan the table once per event."""

    def stops(prefix: str, count: int) -> tuple[object, ...]:
        now = datetime.now(UTC)
        stop = Classification(Intent.OPT_OUT, "STOP", MatchKind.EXACT)
        events = [
            Classified(
                Inbound(
                    f"{prefix}-{i}",
                    f"+336{i:08d}",
                    now,
                    Source.SMS_REPLY,
                    "",
                    "",
                    "",
                    "STOP",
                    "",
                    "",
                    "",
                    None,
                ),
                stop,
            )
            for i in range(count)
        ]
        return QUERIES["ingest_round"].bind(**round_parameters(events, BOUNDS))[1:]

    await db.execute("ANALYZE inbound_events")
    statement = await db.prepare(QUERIES["ingest_round"].sql)
    for k in range(6):  # past the first custom plans: a generic plan is cached
        await statement.fetch(*stops(f"warm-{k}", 5))
    await db.execute(
        "INSERT INTO inbound_events (phone, event_id, received_at, source, intent, outcome)"
        " SELECT '+3361' || lpad(i::text, 8, '0'), 'filler-' || i, now(), 'SMS_REPLY', 'NONE', 'NO_ACTION'"
        " FROM generate_series(1, 20000) AS i"
    )
    async with db.transaction():
        rows = await statement.fetch(*stops("probe", 100))
        scans = await db.fetchval(
            "SELECT seq_scan FROM pg_stat_xact_user_tables WHERE relname = 'inbound_events'"
        )
    assert len(rows) == 100
    assert scans == 0


BAD_TIMES = [
    (253_402_300_800, 0),  # 10000-01-01T00:00:00Z
    (-62_135_596_801, 0),  # one second before 0001-01-01
    (0, -1),
    (0, 1_000_000_000),
    (2**63 - 1, 2**31 - 1),
    (-(2**63), -(2**31)),
]


async def test_one_bad_timestamp_costs_only_its_own_event(ingest: Any, db: Any) -> None:
    """Invariant 6: 999 good STOPs and one event whose received_at no datetime can hold, in one request."""
    good = [event(f"ok-{i}", phone=f"+3361{i:07d}") for i in range(999)]
    bad = event("bad-time", phone="+33699999999")
    bad.received_at.seconds = 253_402_300_800
    batch = [*good[:500], bad, *good[500:]]
    call = ingest.StreamEvents()
    await call.write(pb.StreamEventsRequest(events=batch))
    acks = (await call.read()).acks
    assert [a.event_id for a in acks] == [e.event_id for e in batch]
    outcomes = [a.outcome for a in acks]
    assert outcomes.pop(500) == pb.INGEST_OUTCOME_REJECTED
    assert set(outcomes) == {pb.INGEST_OUTCOME_QUARANTINED}
    rejected = acks[500].error
    assert rejected.code == code_pb2.INVALID_ARGUMENT
    details = error_details_pb2.BadRequest()
    assert rejected.details[0].Unpack(details)
    assert [v.field for v in details.field_violations] == ["received_at"]
    assert await db.fetchval("SELECT count(*) FROM inbound_events") == 999
    assert await db.fetchval("SELECT count(*) FROM shortcode_stop_list") == 999
    stored = await db.fetchrow("SELECT event_id, received_at, raw_event::text AS raw FROM rejected_events")
    assert (stored["event_id"], stored["received_at"]) == ("bad-time", None)
    raw = json.loads(stored["raw"])
    assert (raw["phoneNumber"], raw["receivedAt"]) == (
        "+33699999999",
        {"seconds": 253_402_300_800, "nanos": 0},
    )

    # ingress retries the whole request: the good ones are duplicates, the bad one is rejected again
    await call.write(pb.StreamEventsRequest(events=batch))
    again = [a.outcome for a in (await call.read()).acks]
    assert again.pop(500) == pb.INGEST_OUTCOME_REJECTED
    assert set(again) == {pb.INGEST_OUTCOME_DUPLICATE}
    await call.done_writing()
    assert await call.code() == grpc.StatusCode.OK


@pytest.mark.parametrize(("seconds", "nanos"), BAD_TIMES)
async def test_invalid_received_at_is_rejected_and_kept_raw(
    ingest: Any, db: Any, seconds: int, nanos: int
) -> None:
    raw = event("bad-time", text="STOP")
    raw.received_at.seconds, raw.received_at.nanos = seconds, nanos
    ack = await one(ingest, raw)
    assert ack.outcome == pb.INGEST_OUTCOME_REJECTED
    assert ack.error.code == code_pb2.INVALID_ARGUMENT
    assert "received_at" in ack.error.message
    stored = json.loads(await db.fetchval("SELECT raw_event::text FROM rejected_events"))
    assert stored["receivedAt"] == {"seconds": seconds, "nanos": nanos}
    assert stored["text"] == "STOP"


@pytest.mark.parametrize("seconds", [-62_135_596_800, 253_402_300_799])
async def test_valid_but_far_received_at_is_rejected_and_stored(ingest: Any, db: Any, seconds: int) -> None:
    """Years 1 and 9999 are valid Timestamps: outside the accepted window, stored with their time."""
    raw = event("far-time")
    raw.received_at.seconds, raw.received_at.nanos = seconds, 999_999_999
    ack = await one(ingest, raw)
    assert ack.outcome == pb.INGEST_OUTCOME_REJECTED
    assert "received_at" in ack.error.message
    stored = await db.fetchval("SELECT received_at FROM rejected_events")
    assert stored.year in (1, 9999)


async def test_a_request_without_events_is_invalid(ingest: Any) -> None:
    """The contract allows 1 to 1,000 events per request: an empty one is an error, not an empty OK."""
    call = ingest.StreamEvents()
    await call.write(pb.StreamEventsRequest())
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call.read()
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "events" in (caught.value.details() or "")
