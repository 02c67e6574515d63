"""Reporting through the gRPC stubs: figures equal brute-force counts over the raw tables, exports."""

from __future__ import annotations

import base64
import itertools
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import grpc
import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from google.rpc import error_details_pb2
from grpc_status import rpc_status
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from stopgate.v1 import (
    common_pb2,
    quarantine_check_pb2,
    quarantine_check_pb2_grpc,
    reporting_pb2,
    reporting_pb2_grpc,
    stop_ingest_pb2,
    stop_ingest_pb2_grpc,
)

pb, qc, si = reporting_pb2, quarantine_check_pb2, stop_ingest_pb2
PHONES = ("+33612345601", "+33612345602", "+33612345603", "+33612345604")
CAMPAIGNS = ("c1", "c2")
SOURCES = (
    common_pb2.EVENT_SOURCE_SMS_REPLY,
    common_pb2.EVENT_SOURCE_GATEWAY,
    common_pb2.EVENT_SOURCE_WEB_UNSUBSCRIBE,
)
_event_ids = itertools.count()


class Stubs:
    def __init__(self, channel: grpc.aio.Channel) -> None:
        self.reports: Any = reporting_pb2_grpc.ReportingStub(channel)
        self.checks: Any = quarantine_check_pb2_grpc.QuarantineCheckStub(channel)
        self.ingest: Any = stop_ingest_pb2_grpc.StopIngestStub(channel)

    async def send(self, campaign: str, phones: list[str], ago: timedelta, licence: str = "acme") -> None:
        request = qc.RecordSendsRequest(
            licence_id=licence,
            campaign_id=campaign,
            sender=common_pb2.Sender(address="36180"),
            phone_numbers=phones,
        )
        request.sent_at.FromDatetime(datetime.now(UTC) - ago)
        await self.checks.RecordSends(request, timeout=10)

    async def event(self, phone: str, text: str, source: Any = SOURCES[0], event_id: str = "") -> si.EventAck:
        raw = si.InboundEvent(
            event_id=event_id or f"e{next(_event_ids)}",
            source=source,
            phone_number=phone,
            recipient="36180",
            text=text,
        )
        response = await self.ingest.IngestEvent(si.IngestEventRequest(event=raw), timeout=10)
        ack: si.EventAck = response.ack
        return ack

    async def report(self, campaign: str, licence: str = "acme") -> pb.CampaignReport:
        request = pb.GetCampaignReportRequest(licence_id=licence, campaign_id=campaign)
        response = await self.reports.GetCampaignReport(request, timeout=10)
        report: pb.CampaignReport = response.report
        return report


@pytest.fixture
def stubs(channel: grpc.aio.Channel) -> Stubs:
    return Stubs(channel)


operations = st.lists(
    st.one_of(
        st.tuples(
            st.just("send"),
            st.sampled_from(CAMPAIGNS),
            st.lists(st.sampled_from(PHONES), min_size=1, max_size=4),
        ),
        st.tuples(st.just("stop"), st.sampled_from(PHONES), st.sampled_from(SOURCES)),
        st.tuples(st.just("start"), st.sampled_from(PHONES), st.just(0)),
        st.tuples(st.just("resend"), st.just(""), st.just(0)),
    ),
    max_size=14,
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=operations)
async def test_report_figures_equal_brute_force_counts(
    stubs: Stubs, db: asyncpg.Connection, steps: list[tuple[str, Any, Any]]
) -> None:
    await db.execute(
        "TRUNCATE sends, campaign_counters, campaign_recipients, inbound_events, quarantine,"
        " shortcode_stop_list, number_history"
    )
    last_event: tuple[str, str] | None = None
    for minutes, (action, first, second) in enumerate(steps):
        if action == "send":
            await stubs.send(first, second, timedelta(minutes=60 - minutes))
        elif action in ("stop", "start"):
            event_id = f"e{next(_event_ids)}"
            await stubs.event(first, "STOP" if action == "stop" else "START", second or SOURCES[0], event_id)
            last_event = (first, event_id)
        elif last_event is not None:  # ingress retrying the last event
            await stubs.event(last_event[0], "STOP", event_id=last_event[1])

    for campaign in CAMPAIGNS:
        truth = await db.fetchrow(
            """SELECT count(*) AS sent, count(DISTINCT phone) AS recipients, min(sent_at) AS first_send,
                      max(sent_at) AS last_send
               FROM sends WHERE licence_id = 'acme' AND campaign_id = $1""",
            campaign,
        )
        assert truth is not None
        stops = await db.fetch(
            """SELECT source, received_at FROM inbound_events
               WHERE licence_id = 'acme' AND campaign_id = $1 AND outcome = 'QUARANTINED'""",
            campaign,
        )
        if truth["sent"] == 0:
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await stubs.report(campaign)
            assert caught.value.code() == grpc.StatusCode.NOT_FOUND
            continue
        report = await stubs.report(campaign)
        assert (report.sent_count, report.unique_recipients) == (truth["sent"], truth["recipients"])
        assert report.unsubscribe_count == len(stops)
        assert report.unsubscribe_rate_percent == round(100 * len(stops) / truth["recipients"], 2)
        by_source = {
            common_pb2.EventSource.Name(s.source).removeprefix("EVENT_SOURCE_"): s.count
            for s in report.unsubscribes_by_source
        }
        expected: dict[str, int] = {}
        for stop in stops:
            expected[stop["source"]] = expected.get(stop["source"], 0) + 1
        assert by_source == expected
        assert report.first_send_at.ToDatetime(UTC) == truth["first_send"]
        assert report.last_send_at.ToDatetime(UTC) == truth["last_send"]
        if stops:
            assert report.first_stop_at.ToDatetime(UTC) == min(s["received_at"] for s in stops)
            assert report.last_stop_at.ToDatetime(UTC) == max(s["received_at"] for s in stops)


async def _export(stubs: Stubs, campaign: str) -> list[pb.Interaction]:
    rows: list[pb.Interaction] = []
    async for chunk in stubs.reports.ExportInteractions(
        pb.ExportInteractionsRequest(licence_id="acme", campaign_id=campaign), timeout=30
    ):
        rows.extend(chunk.interactions)
    return rows


async def test_stopped_is_on_exactly_the_attributed_send(stubs: Stubs) -> None:
    alice, bob = PHONES[0], PHONES[1]
    await stubs.send("spring", [alice, bob], timedelta(hours=3))
    await stubs.send("spring", [alice], timedelta(hours=1))
    ack = await stubs.event(alice, "STOP")
    assert ack.attributed_campaign_id == "spring"
    rows = await _export(stubs, "spring")
    assert [(r.phone_number, pb.InteractionStatus.Name(r.status)) for r in rows] == [
        (alice, "INTERACTION_STATUS_SENT"),
        (bob, "INTERACTION_STATUS_SENT"),
        (alice, "INTERACTION_STATUS_STOPPED"),
    ]
    stopped = rows[2]
    assert stopped.stop_source == common_pb2.EVENT_SOURCE_SMS_REPLY
    assert stopped.stop_event_id == ack.event_id
    assert stopped.stopped_at.ToDatetime(UTC) >= stopped.sent_at.ToDatetime(UTC)
    assert (await stubs.report("spring")).unsubscribe_count == 1


async def test_pagination_returns_every_campaign_once_in_order(stubs: Stubs) -> None:
    for i in range(23):
        await stubs.send(f"camp-{i:02d}", [PHONES[i % 4]], timedelta(minutes=100 - 2 * (i // 2)))  # pairs tie
    seen: list[pb.CampaignReport] = []
    token = ""
    while True:
        page = await stubs.reports.ListCampaignReports(
            pb.ListCampaignReportsRequest(licence_id="acme", page_size=5, page_token=token), timeout=10
        )
        assert len(page.reports) <= 5
        seen.extend(page.reports)
        token = page.next_page_token
        if not token:
            break
    assert sorted(r.campaign_id for r in seen) == [f"camp-{i:02d}" for i in range(23)]
    keys = [(-r.first_send_at.ToNanoseconds(), r.campaign_id) for r in seen]
    assert keys == sorted(keys)
    windowed = await stubs.reports.ListCampaignReports(
        pb.ListCampaignReportsRequest(
            licence_id="acme",
            start_time=seen[0].first_send_at,  # the newest only
        ),
        timeout=10,
    )
    assert {r.campaign_id for r in windowed.reports} == {
        r.campaign_id for r in seen if r.first_send_at == seen[0].first_send_at
    }


async def test_quarantine_export_and_licence_summary(stubs: Stubs) -> None:
    await stubs.send("c1", list(PHONES), timedelta(hours=2))
    await stubs.event(PHONES[0], "STOP")
    await stubs.event(PHONES[1], "STOP", source=common_pb2.EVENT_SOURCE_GATEWAY)
    await stubs.event(PHONES[1], "START")
    entries = []
    async for chunk in stubs.reports.ExportQuarantine(
        pb.ExportQuarantineRequest(licence_id="acme"), timeout=10
    ):
        entries.extend(chunk.entries)
    assert [(e.phone_number, e.campaign_id) for e in entries] == [(PHONES[0], "c1")]

    summary = await stubs.reports.GetLicenceSummary(
        pb.GetLicenceSummaryRequest(licence_id="acme"), timeout=10
    )
    assert summary.quarantine_size == 1
    assert len(summary.daily) in (30, 31)
    today = summary.daily[-1]
    assert (today.stops, today.opt_ins) == (2, 1)
    assert sum(d.stops for d in summary.daily[:-1]) == 0
    assert [
        (r.campaign_id, r.unsubscribe_count, r.unsubscribe_rate_percent) for r in summary.top_campaigns
    ] == [("c1", 2, 50.0)]


@pytest.mark.parametrize(
    ("request_fields", "field"),
    [
        ({"licence_id": "acme", "page_size": 5000}, "page_size"),
        ({"licence_id": "acme", "page_token": "garbage!"}, "page_token"),
        ({"licence_id": ""}, "licence_id"),
    ],
)
async def test_bad_list_requests(stubs: Stubs, request_fields: dict[str, Any], field: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await stubs.reports.ListCampaignReports(pb.ListCampaignReportsRequest(**request_fields), timeout=10)
    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert field in (caught.value.details() or "")


FIRST_SECOND, LAST_SECOND = -62_135_596_800, 253_402_300_799  # 0001-01-01T00:00:00Z, 9999-12-31T23:59:59Z
NOT_TIMESTAMPS = [
    (LAST_SECOND + 1, 0),
    (FIRST_SECOND - 1, 0),
    (0, -1),
    (0, 1_000_000_000),
    (2**63 - 1, -(2**31)),
]


def stamp(seconds: int, nanos: int = 0) -> Timestamp:
    return Timestamp(seconds=seconds, nanos=nanos)


def violated_fields(error: grpc.aio.AioRpcError) -> list[str]:
    status = rpc_status.from_call(error)
    assert status is not None
    bad_request = error_details_pb2.BadRequest()
    assert status.details[0].Unpack(bad_request)
    return [v.field for v in bad_request.field_violations]


async def test_reports_answer_at_the_ends_of_time(stubs: Stubs) -> None:
    """Invariant 7: years 1 and 9999 are valid Timestamps, so ranges reaching them answer normally."""
    await stubs.send("c1", [PHONES[0]], timedelta(hours=1))
    everything = await stubs.reports.ListCampaignReports(
        pb.ListCampaignReportsRequest(
            licence_id="acme", start_time=stamp(FIRST_SECOND), end_time=stamp(LAST_SECOND, 999_999_999)
        ),
        timeout=10,
    )
    assert [r.campaign_id for r in everything.reports] == ["c1"]

    async def days(**times: Any) -> list[str]:
        request = pb.GetLicenceSummaryRequest(licence_id="acme", **times)
        summary = await stubs.reports.GetLicenceSummary(request, timeout=10)
        return [d.day.ToJsonString() for d in summary.daily]

    last = await days(end_time=stamp(LAST_SECOND, 999_999_999))  # start: 30 days before
    assert (len(last), last[0], last[-1]) == (31, "9999-12-01T00:00:00Z", "9999-12-31T00:00:00Z")
    first = await days(end_time=stamp(FIRST_SECOND + 9 * 86_400))  # 30 days before: before year 1
    assert (len(first), first[0], first[-1]) == (9, "0001-01-01T00:00:00Z", "0001-01-09T00:00:00Z")
    assert len(await days(start_time=stamp(FIRST_SECOND), end_time=stamp(FIRST_SECOND + 1))) == 1
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await days(end_time=stamp(FIRST_SECOND))  # no instant before it
    assert violated_fields(caught.value) == ["end_time"]


async def test_times_that_are_no_timestamp_name_their_field(stubs: Stubs) -> None:
    """Out-of-range seconds or nanos are INVALID_ARGUMENT naming the field, in both ranged reports."""
    calls = [
        (stubs.reports.ListCampaignReports, pb.ListCampaignReportsRequest),
        (stubs.reports.GetLicenceSummary, pb.GetLicenceSummaryRequest),
    ]
    for call, request_type in calls:
        for field in ("start_time", "end_time"):
            for seconds, nanos in NOT_TIMESTAMPS:
                request = request_type(licence_id="acme")
                getattr(request, field).MergeFrom(stamp(seconds, nanos))
                with pytest.raises(grpc.aio.AioRpcError) as caught:
                    await call(request, timeout=10)
                assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (field, seconds, nanos)
                assert violated_fields(caught.value) == [field], (field, seconds, nanos)


def _forged(position: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode()


async def test_page_tokens_are_bound_to_their_request(stubs: Stubs) -> None:
    for i in range(3):
        await stubs.send(f"c{i}", [PHONES[i]], timedelta(minutes=10 - i))
    await stubs.send("theirs", [PHONES[3]], timedelta(minutes=5), licence="globex")
    start = stamp(int((datetime.now(UTC) - timedelta(days=1)).timestamp()))

    async def page(token: str, **fields: Any) -> pb.ListCampaignReportsResponse:
        fields = {"licence_id": "acme", "start_time": start, "page_size": 1, **fields}
        request = pb.ListCampaignReportsRequest(page_token=token, **fields)
        response: pb.ListCampaignReportsResponse = await stubs.reports.ListCampaignReports(
            request, timeout=10
        )
        return response

    token = (await page("")).next_page_token
    assert [r.campaign_id for r in (await page(token)).reports] == ["c1"]
    assert [r.campaign_id for r in (await page(token, page_size=5)).reports] == ["c1", "c0"]  # size may vary

    position = json.loads(base64.urlsafe_b64decode(token))
    tampered = [_forged({**position, key: value}) for key in position for value in (0, "", None, "c1\x00")]
    foreign: list[tuple[str, dict[str, Any]]] = [
        (token, {"licence_id": "globex"}),
        (token, {"start_time": stamp(start.seconds - 1)}),
        (token, {"end_time": stamp(LAST_SECOND)}),
        (token, {"start_time": None}),
        ("garbage!", {}),
        ("\x00", {}),
        (token + "\x00", {}),
        ("A" * 100_000, {}),
        (_forged({"t": "0001-01-01T00:00:00+14:00", "c": "c1"}), {}),  # before year 1 in UTC
        (_forged({"t": "9999-12-31T23:59:59.999999+00:00", "c": "c1\x00"}), {}),
        (_forged({"t": 2**70, "c": ["c1"]}), {}),
        (base64.urlsafe_b64encode(b"[" * 5000).decode(), {}),
        *((forged, {}) for forged in tampered),
    ]
    for bad_token, fields in foreign:
        with pytest.raises(grpc.aio.AioRpcError) as caught:
            await page(bad_token, **fields)
        assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT, (bad_token[:80], fields)
        assert violated_fields(caught.value) == ["page_token"], (bad_token[:80], fields)
