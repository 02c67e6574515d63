"""Reporting: campaign unsubscribe reports, interaction and quarantine exports, licence summary."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from stopgate.v1 import common_pb2, reporting_pb2, reporting_pb2_grpc

from stopgate_server import caller
from stopgate_server.api.mapping import CHANGE_KINDS, SOURCES, stamp_fields, timestamp
from stopgate_server.api.validation import Violations
from stopgate_server.domain.reports import CampaignCounters
from stopgate_server.domain.times import from_micros, to_micros
from stopgate_server.usecases.change_feed import ChangeFeed, Start
from stopgate_server.usecases.reports import Reports

pb = reporting_pb2
DEFAULT_PAGE, MAX_PAGE = 100, 1000
DEFAULT_TOP, MAX_TOP = 10, 100
DEFAULT_SUMMARY_RANGE = timedelta(days=30)
MAX_SUMMARY_RANGE = timedelta(days=366)
FIRST_INSTANT = datetime(1, 1, 1, tzinfo=UTC)  # the earliest a Timestamp (and a datetime) can hold
MAX_TOKEN = 512  # a page token this service returns has fewer than 200 characters
MAX_FEED_LICENCES = 100
FEED_STARTS = {
    pb.FEED_START_UNSPECIFIED: Start.NOW,
    pb.FEED_START_NOW: Start.NOW,
    pb.FEED_START_OLDEST: Start.OLDEST,
}


def campaign_report(counters: CampaignCounters) -> pb.CampaignReport:
    return pb.CampaignReport(
        licence_id=counters.licence_id,
        campaign_id=counters.campaign_id,
        sent_count=counters.sent_count,
        unique_recipients=counters.unique_recipients,
        unsubscribe_count=counters.unsubscribe_count,
        unsubscribe_rate_percent=counters.unsubscribe_rate_percent,
        unsubscribes_by_source=[
            pb.SourceCount(source=SOURCES[source], count=number)
            for source, number in counters.unsubscribes_by_source.items()
        ],
        first_send_at=timestamp(counters.first_send_at),
        last_send_at=timestamp(counters.last_send_at),
        first_stop_at=timestamp(counters.first_stop_at),
        last_stop_at=timestamp(counters.last_stop_at),
    )


_FIRST_MICROS, _LAST_MICROS = to_micros(FIRST_INSTANT), to_micros(datetime.max.replace(tzinfo=UTC))
Scope = tuple[str, int | None, int | None]


def _scope(licence_id: str, start: datetime | None, end: datetime | None) -> Scope:
    """The filter of a ListCampaignReports request that its page tokens are bound to (not page_size, which
    may change from page to page)."""
    return licence_id, None if start is None else to_micros(start), None if end is None else to_micros(end)


def _digest(scope: Scope, micros: int, campaign_id: str) -> str:
    """What binds a page token to the request it was issued for: the licence and time range, and the position
    itself (an edited token no longer matches). Not a secret: a caller that forges one can only page
    through the licence it names in the request, which its credentials already allow."""
    material = json.dumps([*scope, micros, campaign_id]).encode()
    return hashlib.blake2b(material, digest_size=8).hexdigest()


def _encode_token(last: CampaignCounters, scope: Scope) -> str:
    """The position after `last` (the keyset of the ordering), bound to the request's filter."""
    assert last.first_send_at is not None  # a page lists campaigns with sends only
    micros, campaign_id = to_micros(last.first_send_at), last.campaign_id
    position = {"t": micros, "c": campaign_id, "h": _digest(scope, micros, campaign_id)}
    return base64.urlsafe_b64encode(json.dumps(position, separators=(",", ":")).encode()).decode()


def _decode_token(token: str, scope: Scope) -> tuple[datetime, str] | None:
    """The position a token holds, or None when this service did not issue it for this filter (garbage, an
    edited token, one from another licence or time range)."""
    if len(token) > MAX_TOKEN:
        return None
    try:
        position = json.loads(base64.b64decode(token.encode(), altchars=b"-_", validate=True))
        micros, campaign_id, digest = position["t"], position["c"], position["h"]
    except (ValueError, KeyError, TypeError):  # binascii.Error and UnicodeDecodeError are ValueErrors
        return None
    if (
        type(micros) is not int
        or type(campaign_id) is not str
        or digest != _digest(scope, micros, campaign_id)
    ):
        return None
    # Checked even so, since the digest is no secret: a time a datetime can hold, and text PostgreSQL can
    # store (NUL and lone surrogates are not printable)
    if not _FIRST_MICROS <= micros <= _LAST_MICROS or len(campaign_id) > 64 or not campaign_id.isprintable():
        return None
    return from_micros(micros), campaign_id


class ReportingServicer(reporting_pb2_grpc.ReportingServicer):
    def __init__(self, reports: Reports, feed: ChangeFeed) -> None:
        self.reports = reports
        self.feed = feed

    async def GetCampaignReport(
        self, request: pb.GetCampaignReportRequest, context: Any
    ) -> pb.GetCampaignReportResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.identifier("campaign_id", request.campaign_id)
        violations.raise_if_any()
        counters = await self.reports.campaign(request.licence_id, request.campaign_id)
        return pb.GetCampaignReportResponse(report=campaign_report(counters))

    async def ListCampaignReports(
        self, request: pb.ListCampaignReportsRequest, context: Any
    ) -> pb.ListCampaignReportsResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        if not 0 <= request.page_size <= MAX_PAGE:
            violations.add("page_size", f"0 (meaning {DEFAULT_PAGE}) to {MAX_PAGE}")
        start = violations.time("start_time", request.start_time) if request.HasField("start_time") else None
        end = violations.time("end_time", request.end_time) if request.HasField("end_time") else None
        if start and end and start >= end:
            violations.add("end_time", "must be after start_time")
        scope = _scope(request.licence_id, start, end)
        after = _decode_token(request.page_token, scope) if request.page_token else None
        if request.page_token and after is None:
            violations.add("page_token", "not a token returned for this licence and time range")
        violations.raise_if_any()
        size = request.page_size or DEFAULT_PAGE
        page, more = await self.reports.campaigns_page(request.licence_id, start, end, after, size)
        response = pb.ListCampaignReportsResponse(reports=[campaign_report(counters) for counters in page])
        if more:
            response.next_page_token = _encode_token(page[-1], scope)
        return response

    async def ExportInteractions(
        self, request: pb.ExportInteractionsRequest, context: Any
    ) -> AsyncIterator[pb.ExportInteractionsResponse]:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.identifier("campaign_id", request.campaign_id)
        violations.raise_if_any()
        stopped, sent = pb.INTERACTION_STATUS_STOPPED, pb.INTERACTION_STATUS_SENT
        async for rows in self.reports.interactions(request.licence_id, request.campaign_id):
            chunk = pb.ExportInteractionsResponse()
            add = chunk.interactions.add
            for row in rows:  # up to a million rows per call: plain fields, no intermediate messages
                if row.stop_event_id is None:
                    add(
                        phone_number=row.phone,
                        sender=row.sender,
                        status=sent,
                        sent_at=stamp_fields(row.sent_us),
                    )
                else:
                    assert row.stopped_us is not None
                    assert row.stop_source is not None
                    add(
                        phone_number=row.phone,
                        sender=row.sender,
                        status=stopped,
                        sent_at=stamp_fields(row.sent_us),
                        stopped_at=stamp_fields(row.stopped_us),
                        stop_source=SOURCES[row.stop_source],
                        stop_event_id=row.stop_event_id,
                    )
            yield chunk

    async def ExportQuarantine(
        self, request: pb.ExportQuarantineRequest, context: Any
    ) -> AsyncIterator[pb.ExportQuarantineResponse]:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.raise_if_any()
        async for rows in self.reports.quarantine(request.licence_id):
            chunk = pb.ExportQuarantineResponse()
            for row in rows:
                entry = chunk.entries.add(
                    phone_number=row.phone,
                    source=SOURCES[row.source],
                    campaign_id=row.campaign_id,
                    event_id=row.event_id,
                )
                entry.since.FromDatetime(row.since)
            yield chunk

    async def GetLicenceSummary(
        self, request: pb.GetLicenceSummaryRequest, context: Any
    ) -> pb.GetLicenceSummaryResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        if not 0 <= request.top_campaigns <= MAX_TOP:
            violations.add("top_campaigns", f"0 (meaning {DEFAULT_TOP}) to {MAX_TOP}")
        end = (
            violations.time("end_time", request.end_time)
            if request.HasField("end_time")
            else datetime.now(UTC)
        )
        if request.HasField("start_time"):
            start = violations.time("start_time", request.start_time)
        else:  # 30 days before the end, or as many as there are since year 1
            start = end - min(DEFAULT_SUMMARY_RANGE, end - FIRST_INSTANT) if end else None
        if start and end and start >= end:
            violations.add("end_time", "must be after start_time")
        elif start and end and end - start > MAX_SUMMARY_RANGE:
            violations.add("start_time", "the range may span at most 366 days")
        violations.raise_if_any()
        assert start is not None
        assert end is not None
        summary = await self.reports.licence_summary(
            request.licence_id, start, end, request.top_campaigns or DEFAULT_TOP
        )
        return pb.GetLicenceSummaryResponse(
            quarantine_size=summary.quarantine_size,
            top_campaigns=[campaign_report(counters) for counters in summary.top_campaigns],
            daily=[
                pb.DailyActivity(
                    day=timestamp(datetime(d.day.year, d.day.month, d.day.day, tzinfo=UTC)),
                    stops=d.stops,
                    opt_ins=d.opt_ins,
                )
                for d in summary.daily
            ],
        )

    async def WatchBlocklistChanges(
        self, request: pb.WatchBlocklistChangesRequest, context: Any
    ) -> AsyncIterator[pb.WatchBlocklistChangesResponse]:
        violations = Violations()
        if len(request.licence_ids) > MAX_FEED_LICENCES:
            violations.add("licence_ids", f"at most {MAX_FEED_LICENCES} licences")
        for i, licence_id in enumerate(request.licence_ids[:MAX_FEED_LICENCES]):
            violations.identifier(f"licence_ids[{i}]", licence_id)
        start = FEED_STARTS.get(request.start)
        if start is None:
            violations.add("start", f"unknown value {request.start}")
        violations.raise_if_any()
        assert start is not None
        licences = self.feed.licences(request.licence_ids, caller.limited_to())
        after = await self.feed.start(request.after_cursor, start)
        unspecified = common_pb2.EVENT_SOURCE_UNSPECIFIED
        async for page in self.feed.follow(after, licences):
            response = pb.WatchBlocklistChangesResponse(cursor=page.position.cursor())
            add = response.changes.add
            for change in page.changes:  # plain fields: protobuf builds each change in C
                add(
                    cursor=change.position.cursor(),
                    change_id=change.change_id,
                    kind=CHANGE_KINDS[change.kind],
                    licence_id=change.licence_id,
                    shortcode=change.shortcode,
                    phone_number=change.phone,
                    changed_at=stamp_fields(to_micros(change.changed_at)),
                    since=stamp_fields(to_micros(change.since)),
                    source=unspecified if change.source is None else SOURCES[change.source],
                    campaign_id=change.campaign_id,
                    event_id=change.event_id,
                )
            yield response
