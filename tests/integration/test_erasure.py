"""Erasure of a number's personal data that keeps its opt-out (GDPR Art. 17 and 21), and the retention of raw
texts: after an erasure the number is still blocked, no read shows what was erased, reports keep their
counts, a repeat erases nothing more, a token limited to licences erases only within one of them; the
retention empties only old raw texts, batch by batch, and leaves the block lists alone. Against a real
PostgreSQL and an in-process server."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from clients import EitherClient
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)
from stopgate_server.app import Application
from stopgate_server.store import erasure as erasure_store
from stopgate_server.store.tokens import ROLES, create_token

pb, rp, si = quarantine_check_pb2, reporting_pb2, stop_ingest_pb2
ALICE, BOB = "+33612345601", "+33612345602"
SHORTCODE = "36180"
# What Alice wrote or what was written about her: none of it may be left anywhere after the erasure.
SECRETS = ("Alice Martin", "rue des Lilas", "ticket-of-consent-7", "orange-alice-sim", "moved to Lyon")

# The personal data of every table, as text: what a search of the whole database would find.
TABLES = (
    "inbound_events",
    "number_history",
    "quarantine",
    "shortcode_stop_list",
    "sends",
    "campaign_recipients",
    "blocklist_changes",
)


class Stubs:
    def __init__(self, channel: grpc.aio.Channel, metadata: tuple[tuple[str, str], ...] = ()) -> None:
        self.checks: Any = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
        self.ingest: Any = stop_ingest_pb2_grpc.StopIngestStub(channel)
        self.reports: Any = reporting_pb2_grpc.ReportingStub(channel)
        self.metadata = metadata

    async def send(self, licence: str, campaign: str, phones: list[str], sender: str = SHORTCODE) -> None:
        request = pb.RecordSendsRequest(
            licence_id=licence,
            campaign_id=campaign,
            sender=common_pb2.Sender(address=sender),
            phone_numbers=phones,
        )
        request.sent_at.FromDatetime(datetime.now(UTC) - timedelta(hours=1))
        await self.checks.RecordSends(request, timeout=10)

    async def event(self, event_id: str, text: str, **fields: Any) -> si.EventAck:
        given: dict[str, Any] = {"source": common_pb2.EVENT_SOURCE_SMS_REPLY, "recipient": SHORTCODE} | fields
        raw = si.InboundEvent(event_id=event_id, phone_number=ALICE, text=text, **given)
        response = await self.ingest.IngestEvent(si.IngestEventRequest(event=raw), timeout=10)
        ack: si.EventAck = response.ack
        return ack

    async def erase(self, **fields: Any) -> pb.ErasePersonalDataResponse:
        given: dict[str, Any] = {
            "phone_number": ALICE,
            "actor": "dpo@example.com",
            "reason": "DSR-2041",
        } | fields
        request = pb.ErasePersonalDataRequest(**given)
        response: pb.ErasePersonalDataResponse = await self.checks.ErasePersonalData(
            request, metadata=self.metadata, timeout=10
        )
        return response

    async def check(self, licence: str, sender: str = SHORTCODE) -> pb.CheckResult:
        request = pb.CheckBatchRequest(
            licence_id=licence,
            sender=common_pb2.Sender(address=sender),
            category=common_pb2.MESSAGE_CATEGORY_MARKETING,
            phone_numbers=[ALICE],
        )
        response = await self.checks.CheckBatch(request, timeout=10)
        result: pb.CheckResult = response.results[0]
        return result

    async def report(self, licence: str, campaign: str) -> rp.CampaignReport:
        request = rp.GetCampaignReportRequest(licence_id=licence, campaign_id=campaign)
        report: rp.CampaignReport = (await self.reports.GetCampaignReport(request, timeout=10)).report
        return report

    async def interactions(self, licence: str, campaign: str) -> list[tuple[str, int]]:
        request = rp.ExportInteractionsRequest(licence_id=licence, campaign_id=campaign)
        return [
            (row.phone_number, row.status)
            async for chunk in self.reports.ExportInteractions(request, timeout=10)
            for row in chunk.interactions
        ]

    async def quarantine(self, licence: str) -> list[rp.QuarantineEntry]:
        request = rp.ExportQuarantineRequest(licence_id=licence)
        return [
            e async for chunk in self.reports.ExportQuarantine(request, timeout=10) for e in chunk.entries
        ]


@pytest.fixture
def stubs(channel: grpc.aio.Channel) -> Stubs:
    return Stubs(channel)


async def alice_everywhere(stubs: Stubs) -> None:
    """Alice and Bob got acme's spring campaign and globex's (from an alias); Alice then replied STOP to
    36180 (attributed to acme's spring, her most recent send through it) from her operator, unsubscribed
    on globex's web page with a reason, was quarantined and released in initech by hand, and asked
    HELP (attributed to no licence)."""
    await stubs.send("acme", "spring", [ALICE, BOB])
    await stubs.send("globex", "summer", [ALICE, BOB], sender="GLOBEX")
    stop = await stubs.event("evt-stop", "Please stop texting me. Alice Martin", network="orange-alice-sim")
    assert (stop.attributed_licence_id, stop.attributed_campaign_id) == ("acme", "spring")
    web = await stubs.event(
        "evt-web",
        "",
        source=common_pb2.EVENT_SOURCE_WEB_UNSUBSCRIBE,
        recipient="",
        licence_id="globex",
        reason="moved to Lyon, 4 rue des Lilas",
    )
    assert web.attributed_licence_id == "globex"
    await stubs.checks.QuarantineNumbers(
        pb.QuarantineNumbersRequest(
            licence_id="initech", phone_numbers=[ALICE], actor="support", reason="Alice Martin called"
        ),
        timeout=10,
    )
    await stubs.checks.ReleaseNumbers(
        pb.ReleaseNumbersRequest(
            licence_id="initech",
            phone_numbers=[ALICE],
            actor="support",
            reason="Alice Martin opted in",
            consent_reference="ticket-of-consent-7",
        ),
        timeout=10,
    )
    await stubs.event("evt-help", "HELP", recipient="60999")


async def everything_about(db: asyncpg.Connection, phone: str) -> str:
    """Every row of the per-number tables about `phone`, as text."""
    rows = [
        str(await db.fetch(f"SELECT t::text FROM {table} t WHERE phone = $1 ORDER BY t::text", phone))  # noqa: S608
        for table in TABLES
    ]
    return "\n".join(rows)


async def audit_records(db: asyncpg.Connection) -> str:
    return str(await db.fetch("SELECT e::text FROM erasures e ORDER BY id"))


async def test_an_erased_number_stays_blocked_and_nothing_erased_can_be_read(
    stubs: Stubs, db: asyncpg.Connection
) -> None:
    await alice_everywhere(stubs)
    before = await everything_about(db, ALICE)
    assert all(secret in before for secret in SECRETS)  # the test sees them
    reports = {
        (licence, c): await stubs.report(licence, c)
        for licence, c in (("acme", "spring"), ("globex", "summer"))
    }
    counters = await db.fetch("SELECT * FROM campaign_counters ORDER BY licence_id, campaign_id")
    summary_request = rp.GetLicenceSummaryRequest(licence_id="acme")
    summary = await stubs.reports.GetLicenceSummary(summary_request, timeout=10)
    bob_before = await everything_about(db, BOB)

    erased = await stubs.erase(every_licence=True)

    assert erased.e164 == ALICE
    assert (
        erased.inbound_events_cleared,
        erased.sends_deleted,
        erased.campaign_memberships_deleted,
        erased.history_entries_cleared,
        erased.quarantine_entries_minimised,
        erased.feed_changes_minimised,
    ) == (
        3,
        2,
        2,
        4,
        2,
        2,
    )  # 3 events; a send and a membership in 2 licences; 4 history entries; 2 quarantines
    assert (
        await db.fetchval(
            "SELECT count(*) FROM blocklist_changes WHERE phone = $1 AND campaign_id IS NOT NULL", ALICE
        )
        == 0
    )  # the change feed keeps her opt-outs, not her campaigns
    assert await db.fetchval("SELECT count(*) FROM blocklist_changes WHERE phone = $1 AND added", ALICE) >= 2
    left = await everything_about(db, ALICE) + await audit_records(db)
    assert [secret for secret in SECRETS if secret in left] == []
    assert await everything_about(db, BOB) == bob_before  # nobody else's data

    # Still blocked: by acme's quarantine, globex's, and 36180's stop list for any licence.
    for licence, reason in (("acme", pb.CHECK_REASON_QUARANTINED), ("globex", pb.CHECK_REASON_QUARANTINED)):
        result = await stubs.check(licence, sender="ACME")
        assert (licence, result.verdict, result.reason) == (licence, pb.VERDICT_BLOCK, reason)
    on_stop_list = await stubs.check("initech")
    assert (on_stop_list.verdict, on_stop_list.reason) == (
        pb.VERDICT_BLOCK,
        pb.CHECK_REASON_SHORTCODE_STOP_LIST,
    )

    # No read shows what was erased.
    status = await stubs.checks.GetNumberStatus(
        pb.GetNumberStatusRequest(licence_id="acme", phone_number=ALICE), timeout=10
    )
    assert status.quarantined
    assert status.attributed_campaign_id == ""
    assert not status.HasField("last_send")
    assert [s.shortcode for s in status.stop_lists] == [SHORTCODE]
    assert [(h.action, h.shortcode, h.event_id, h.campaign_id) for h in status.history] == [
        (pb.HISTORY_ACTION_OPT_OUT, SHORTCODE, "evt-stop", "")
    ]
    initech = await stubs.checks.GetNumberStatus(
        pb.GetNumberStatusRequest(licence_id="initech", phone_number=ALICE), timeout=10
    )
    assert [(h.actor, h.reason, h.consent_reference) for h in initech.history] == [
        ("support", "", ""),
        ("support", "", ""),
    ]
    assert [(e.phone_number, e.campaign_id) for e in await stubs.quarantine("acme")] == [(ALICE, "")]
    assert [(e.phone_number, e.campaign_id) for e in await stubs.quarantine("globex")] == [(ALICE, "")]
    assert [phone for phone, _ in await stubs.interactions("acme", "spring")] == [BOB]
    assert [phone for phone, _ in await stubs.interactions("globex", "summer")] == [BOB]

    # Reports keep their counts.
    for (licence, campaign), report in reports.items():
        assert await stubs.report(licence, campaign) == report
    assert await db.fetch("SELECT * FROM campaign_counters ORDER BY licence_id, campaign_id") == counters
    assert await stubs.reports.GetLicenceSummary(summary_request, timeout=10) == summary

    # The audit record: when, who, scope, reason and counts; never the erased data.
    (audit,) = await db.fetch("SELECT * FROM erasures")
    assert (audit["id"], audit["phone"], audit["licence_id"]) == (erased.erasure_id, ALICE, None)
    assert (audit["actor"], audit["reason"]) == ("dpo@example.com", "DSR-2041")
    assert audit["erased_at"] == erased.erased_at.ToDatetime(UTC)
    assert json.loads(audit["counts"]) == {
        "inbound_events_cleared": 3,
        "sends_deleted": 2,
        "campaign_memberships_deleted": 2,
        "history_entries_cleared": 4,
        "quarantine_entries_minimised": 2,
        "feed_changes_minimised": 2,
    }

    # A retried event is still a duplicate: nothing is stored again, the text does not come back.
    again = await stubs.event("evt-stop", "Please stop texting me. Alice Martin", network="orange-alice-sim")
    assert again.outcome == si.INGEST_OUTCOME_DUPLICATE
    assert "Alice Martin" not in await everything_about(db, ALICE)


async def test_an_erasure_is_idempotent_and_every_request_is_audited(
    stubs: Stubs, db: asyncpg.Connection
) -> None:
    await alice_everywhere(stubs)
    first = await stubs.erase(every_licence=True)
    assert first.sends_deleted == 2
    rows_after_first = await everything_about(db, ALICE)
    audit_after_first = await audit_records(db)

    second = await stubs.erase(every_licence=True, reason="DSR-2041 reminder")

    assert second.erasure_id != first.erasure_id
    assert (
        second.inbound_events_cleared,
        second.sends_deleted,
        second.campaign_memberships_deleted,
        second.history_entries_cleared,
        second.quarantine_entries_minimised,
        second.feed_changes_minimised,
    ) == (0, 0, 0, 0, 0, 0)
    audits = await db.fetch("SELECT reason, counts FROM erasures ORDER BY id")
    assert [a["reason"] for a in audits] == ["DSR-2041", "DSR-2041 reminder"]
    assert set(json.loads(audits[1]["counts"]).values()) == {0}
    assert await everything_about(db, ALICE) == rows_after_first
    assert (await audit_records(db)).startswith(audit_after_first[:-1])


async def test_one_licence_erases_only_that_licence_and_leaves_the_stop_lists(
    stubs: Stubs, db: asyncpg.Connection
) -> None:
    await alice_everywhere(stubs)
    stop_lists = await db.fetch("SELECT * FROM shortcode_stop_list ORDER BY shortcode")

    erased = await stubs.erase(licence_id="globex")

    # globex's send, membership, web unsubscribe (its reason), history entry and quarantine's campaign.
    assert (
        erased.inbound_events_cleared,
        erased.sends_deleted,
        erased.campaign_memberships_deleted,
        erased.history_entries_cleared,
        erased.quarantine_entries_minimised,
        erased.feed_changes_minimised,
    ) == (1, 1, 1, 1, 1, 1)
    left = await everything_about(db, ALICE)
    assert "rue des Lilas" not in left
    assert "Alice Martin" in left
    assert "orange-alice-sim" in left
    assert (
        await db.fetchval("SELECT count(*) FROM sends WHERE phone = $1 AND licence_id = 'acme'", ALICE) == 1
    )
    assert await db.fetch("SELECT * FROM shortcode_stop_list ORDER BY shortcode") == stop_lists
    assert [phone for phone, _ in await stubs.interactions("acme", "spring")] == [ALICE, BOB]
    assert [phone for phone, _ in await stubs.interactions("globex", "summer")] == [BOB]
    assert (await stubs.check("globex", sender="GLOBEX")).verdict == pb.VERDICT_BLOCK
    assert await db.fetchval("SELECT licence_id FROM erasures") == "globex"


@pytest.fixture
async def limited_to_acme(app: Application, database_url: str) -> AsyncIterator[Stubs]:
    """Stubs whose calls carry a token with every role, limited to licence acme."""
    connection = await asyncpg.connect(database_url)
    try:
        _, token = await create_token(connection, "acme-admin", ROLES, ("acme",))
    finally:
        await connection.close()
    async with grpc.aio.insecure_channel(f"127.0.0.1:{app.grpc_port}") as channel:
        yield Stubs(channel, (("authorization", f"Bearer {token}"),))


async def test_a_token_limited_to_licences_erases_only_within_one_of_them(
    stubs: Stubs, limited_to_acme: Stubs, db: asyncpg.Connection
) -> None:
    await alice_everywhere(stubs)
    before = await everything_about(db, ALICE)
    for scope in ({"licence_id": "globex"}, {"every_licence": True}):
        with pytest.raises(grpc.aio.AioRpcError) as denied:
            await limited_to_acme.erase(**scope)
        assert denied.value.code() == grpc.StatusCode.PERMISSION_DENIED, scope
    assert await everything_about(db, ALICE) == before  # nothing erased
    assert await db.fetchval("SELECT count(*) FROM erasures") == 0

    own = await limited_to_acme.erase(licence_id="acme")
    assert (own.sends_deleted, own.inbound_events_cleared) == (1, 1)
    assert await db.fetchval("SELECT count(*) FROM sends WHERE phone = $1", ALICE) == 1  # globex's


def violations(error: grpc.aio.AioRpcError) -> dict[str, str]:
    status = rpc_status.from_call(error)
    assert status is not None
    found: dict[str, str] = {}
    for detail in status.details:
        if detail.Is(error_details_pb2.BadRequest.DESCRIPTOR):
            request = error_details_pb2.BadRequest()
            detail.Unpack(request)
            found |= {v.field: v.description for v in request.field_violations}
    return found


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"phone_number": "", "licence_id": "acme"}, "phone_number"),
        ({"phone_number": "not a number", "licence_id": "acme"}, "phone_number"),
        ({"phone_number": "0612345601", "licence_id": "acme"}, "phone_number"),  # national, no region
        ({}, "licence_id"),  # no scope: never "every licence" by default
        ({"licence_id": ""}, "licence_id"),
        ({"licence_id": "-acme"}, "licence_id"),
        ({"every_licence": False}, "every_licence"),
        ({"licence_id": "acme", "actor": ""}, "actor"),
        ({"licence_id": "acme", "reason": " "}, "reason"),
        ({"licence_id": "acme", "reason": "x" * 501}, "reason"),
        ({"licence_id": "acme", "default_region": "ZZZ"}, "default_region"),
    ],
)
async def test_bad_input_is_invalid_argument_naming_the_field(
    stubs: Stubs, db: asyncpg.Connection, fields: dict[str, Any], field: str
) -> None:
    await stubs.send("acme", "spring", [ALICE])
    with pytest.raises(grpc.aio.AioRpcError) as refused:
        await stubs.erase(**fields)
    assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in violations(refused.value)
    assert await db.fetchval("SELECT count(*) FROM sends") == 1
    assert await db.fetchval("SELECT count(*) FROM erasures") == 0


async def test_a_number_in_national_form_is_read_with_the_region(stubs: Stubs) -> None:
    await stubs.send("acme", "spring", [ALICE])
    erased = await stubs.erase(phone_number="06 12 34 56 01", default_region="FR", licence_id="acme")
    assert (erased.e164, erased.sends_deleted) == (ALICE, 1)


async def test_the_clients_erase(client: EitherClient, stubs: Stubs) -> None:
    await stubs.send("acme", "spring", [ALICE])
    erased = await client.call("erase_personal_data", ALICE, licence_id="acme", actor="dpo", reason="DSR-1")
    assert (erased.e164, erased.sends_deleted) == (ALICE, 1)
    everywhere = await client.call(
        "erase_personal_data", ALICE, every_licence=True, actor="dpo", reason="DSR-1"
    )
    assert everywhere.sends_deleted == 0


# Retention of raw texts


async def store_event(
    db: asyncpg.Connection, event_id: str, stored_at: datetime, text: str = "STOP Alice"
) -> None:
    await db.execute(
        "INSERT INTO inbound_events (phone, event_id, received_at, stored_at, source, raw_text, intent,"
        " outcome, licence_id) VALUES ($1, $2, $3, $3, 'SMS_REPLY', $4, 'OPT_OUT', 'QUARANTINED', 'acme')",
        ALICE,
        event_id,
        stored_at,
        text,
    )


class CountingConnection:
    """A connection that records the result of each batch of the retention."""

    def __init__(self, connection: asyncpg.Connection) -> None:
        self.connection = connection
        self.batches: list[tuple[int, int]] = []

    async def fetchrow(self, *args: Any) -> Any:
        row = await self.connection.fetchrow(*args)
        if row is not None and "selected" in row:
            self.batches.append((row["selected"], row["purged"]))
        return row

    def __getattr__(self, name: str) -> Any:
        return getattr(self.connection, name)


async def test_retention_empties_only_old_raw_texts_in_batches(
    db: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = datetime.now(UTC)
    old, recent = now - timedelta(days=40), now - timedelta(days=20)
    await db.execute("UPDATE raw_text_retention SET purged_before = $1", now - timedelta(days=400))
    for i in range(23):  # many sharing one time, as the events of one ingest batch do
        await store_event(db, f"old-{i}", old if i < 20 else old - timedelta(days=100 + i))
    await store_event(db, "recent", recent)
    await store_event(db, "empty", old, text="")
    await db.execute(
        "INSERT INTO quarantine (phone, licence_id, since, source, last_stop_at)"
        " VALUES ($1, 'acme', $2, 'SMS_REPLY', $2)",
        ALICE,
        old,
    )
    quarantine = await db.fetch("SELECT * FROM quarantine")
    await db.execute(
        "INSERT INTO rejected_events (event_id, stored_at, raw_event, error) VALUES"
        " ('bad-old', $1, '{\"phone_number\": \"+336 Alice\"}', 'phone_number: not a valid phone number'),"
        " ('bad-new', $2, '{\"phone_number\": \"+336 Bob\"}', 'phone_number: not a valid phone number')",
        old,
        recent,
    )
    monkeypatch.setattr(erasure_store, "PURGE_BATCH", 7)
    counting = CountingConnection(db)

    purged = await erasure_store.purge_raw_texts(counting, timedelta(days=30))  # type: ignore[arg-type]

    assert (purged.inbound_texts, purged.rejected_events) == (23, 1)
    assert sum(p for _, p in counting.batches) == 24
    assert max(p for _, p in counting.batches) == 7  # batches, never more at once
    texts = {
        r["event_id"]: r["raw_text"] for r in await db.fetch("SELECT event_id, raw_text FROM inbound_events")
    }
    assert texts.pop("recent") == "STOP Alice"
    assert set(texts.values()) == {""}
    raw = {
        r["event_id"]: r["raw"]
        for r in await db.fetch("SELECT event_id, raw_event::text AS raw FROM rejected_events")
    }
    assert raw == {"bad-old": "{}", "bad-new": '{"phone_number": "+336 Bob"}'}
    assert await db.fetch("SELECT * FROM quarantine") == quarantine  # the block lists stay as they were
    watermarks = await db.fetch("SELECT purged_before FROM raw_text_retention")
    assert all(
        abs(w["purged_before"] - (now - timedelta(days=30))) < timedelta(minutes=1) for w in watermarks
    )

    # The next round reads only what was stored since: nothing to do.
    counting.batches.clear()
    again = await erasure_store.purge_raw_texts(counting, timedelta(days=30))  # type: ignore[arg-type]
    assert (again.inbound_texts, again.rejected_events) == (0, 0)
    assert len(counting.batches) <= 2


async def test_maintenance_purges_raw_texts_only_when_a_retention_is_set(
    app: Application, db: asyncpg.Connection
) -> None:
    await db.execute(
        "UPDATE raw_text_retention SET purged_before = $1", datetime.now(UTC) - timedelta(days=100)
    )
    await store_event(db, "old", datetime.now(UTC) - timedelta(days=40))
    await app.maintain_once()  # the default: raw texts are kept
    assert await db.fetchval("SELECT raw_text FROM inbound_events") == "STOP Alice"

    app.settings = dataclasses.replace(app.settings, raw_text_retention_days=30)
    await app.maintain_once()
    assert await db.fetchval("SELECT raw_text FROM inbound_events") == ""
