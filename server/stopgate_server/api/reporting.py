"""Reporting: campaign unsubscribe reports, interaction and quarantine exports, licence summary."""

from __future__ import annotations

import base64
import hashlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
from stopgate.v1 import reporting_pb2, reporting_pb2_grpc

from stopgate_server.api.quarantine_check import event_source, timestamp
from stopgate_server.api.validation import EPOCH, Violations
from stopgate_server.errors import NotFound
from stopgate_server.store.reporting import ReportingStore

pb = reporting_pb2
DEFAULT_PAGE, MAX_PAGE = 100, 1000
DEFAULT_TOP, MAX_TOP = 10, 100
DEFAULT_SUMMARY_RANGE = timedelta(days=30)
MAX_SUMMARY_RANGE = timedelta(days=366)
FIRST_INSTANT = datetime(1, 1, 1, tzinfo=UTC)  # the earliest a Timestamp (and a datetime) can hold
MAX_TOKEN = 512  # a page token this service returns has fewer than 200 characters
_MICROSECOND = timedelta(microseconds=1)
_SOURCE_COLUMNS = (
    ("SMS_REPLY", "unsubscribes_sms_reply"),
    ("OPERATOR_NOTIFICATION", "unsubscribes_operator"),
    ("WEB_UNSUBSCRIBE", "unsubscribes_web"),
    ("GATEWAY", "unsubscribes_gateway"),
    ("IMPORT", "unsubscribes_import"),
)


def campaign_report(row: asyncpg.Record) -> pb.CampaignReport:
    """A counters row as a report; the rate is a percentage of unique recipients, two decimals."""
    recipients = row["unique_recipients"]
    rate = round(100 * row["unsubscribe_count"] / recipients, 2) if recipients else 0.0
    return pb.CampaignReport(
        licence_id=row["licence_id"],
        campaign_id=row["campaign_id"],
        sent_count=row["sent_count"],
        unique_recipients=recipients,
        unsubscribe_count=row["unsubscribe_count"],
        unsubscribe_rate_percent=rate,
        unsubscribes_by_source=[
            pb.SourceCount(source=event_source(source), count=row[column])
            for source, column in _SOURCE_COLUMNS
            if row[column]
        ],
        first_send_at=timestamp(row["first_send_at"]),
        last_send_at=timestamp(row["last_send_at"]),
        first_stop_at=timestamp(row["first_stop_at"]),
        last_stop_at=timestamp(row["last_stop_at"]),
    )


def _stamp(microseconds: int) -> dict[str, int]:
    """A Timestamp's fields from epoch microseconds (a dict: protobuf builds the message in C)."""
    seconds, micros = divmod(microseconds, 1_000_000)
    return {"seconds": seconds, "nanos": micros * 1000}


def _micros(moment: datetime) -> int:
    return (moment - EPOCH) // _MICROSECOND


_FIRST_MICROS, _LAST_MICROS = _micros(FIRST_INSTANT), _micros(datetime.max.replace(tzinfo=UTC))
Scope = tuple[str, int | None, int | None]


def _scope(licence_id: str, start: datetime | None, end: datetime | None) -> Scope:
    """The filter of a ListCampaignReports request that its page tokens are bound to (not page_size, which
    may change from page to page)."""
    return licence_id, None if start is None else _micros(start), None if end is None else _micros(end)


def _digest(scope: Scope, micros: int, campaign_id: str) -> str:
    """What binds a page token to the request it was issued for: the licence and time range, and the position
    itself (an edited token no longer matches). Not a secret: a caller that forges one can only page
    through the licence it names in the request, which its credentials already allow."""
    material = json.dumps([*scope, micros, campaign_id]).encode()
    return hashlib.blake2b(material, digest_size=8).hexdigest()


def _encode_token(last: asyncpg.Record, scope: Scope) -> str:
    """The position after `last` (the keyset of the ordering), bound to the request's filter."""
    micros, campaign_id = _micros(last["first_send_at"]), last["campaign_id"]
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
    return EPOCH + micros * _MICROSECOND, campaign_id


class ReportingServicer(reporting_pb2_grpc.ReportingServicer):
    def __init__(self, store: ReportingStore) -> None:
        self.store = store

    async def GetCampaignReport(
        self, request: pb.GetCampaignReportRequest, context: Any
    ) -> pb.GetCampaignReportResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.identifier("campaign_id", request.campaign_id)
        violations.raise_if_any()
        row = await self.store.campaign(request.licence_id, request.campaign_id)
        if row is None:
            raise NotFound(
                f"campaign {request.campaign_id!r} has no recorded send in licence {request.licence_id!r}"
            )
        return pb.GetCampaignReportResponse(report=campaign_report(row))

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
        rows = await self.store.campaigns_page(request.licence_id, start, end, after, size + 1)
        response = pb.ListCampaignReportsResponse(reports=[campaign_report(row) for row in rows[:size]])
        if len(rows) > size:
            response.next_page_token = _encode_token(rows[size - 1], scope)
        return response

    async def ExportInteractions(
        self, request: pb.ExportInteractionsRequest, context: Any
    ) -> AsyncIterator[pb.ExportInteractionsResponse]:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.identifier("campaign_id", request.campaign_id)
        violations.raise_if_any()
        stopped, sent = pb.INTERACTION_STATUS_STOPPED, pb.INTERACTION_STATUS_SENT
        async for rows in self.store.export("export_interactions", request.licence_id, request.campaign_id):
            chunk = pb.ExportInteractionsResponse()
            add = chunk.interactions.add
            for row in rows:  # up to a million rows per call: plain fields, no intermediate objects
                sent_us, event_id = row["sent_us"], row["event_id"]
                if event_id is None:
                    add(phone_number=row["phone"], sender=row["sender"], status=sent, sent_at=_stamp(sent_us))
                else:
                    add(
                        phone_number=row["phone"],
                        sender=row["sender"],
                        status=stopped,
                        sent_at=_stamp(sent_us),
                        stopped_at=_stamp(row["stopped_us"]),
                        stop_source=event_source(row["source"]),
                        stop_event_id=event_id,
                    )
            yield chunk

    async def ExportQuarantine(
        self, request: pb.ExportQuarantineRequest, context: Any
    ) -> AsyncIterator[pb.ExportQuarantineResponse]:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.raise_if_any()
        async for rows in self.store.export("export_quarantine", request.licence_id):
            chunk = pb.ExportQuarantineResponse()
            for row in rows:
                entry = chunk.entries.add(
                    phone_number=row["phone"],
                    source=event_source(row["source"]),
                    campaign_id=row["campaign_id"] or "",
                    event_id=row["event_id"] or "",
                )
                entry.since.FromDatetime(row["since"])
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
        size, daily, campaigns = await self.store.licence_summary(
            request.licence_id, start, end, request.top_campaigns or DEFAULT_TOP
        )
        counts = {row["day"].date(): row for row in daily}
        response = pb.GetLicenceSummaryResponse(
            quarantine_size=size, top_campaigns=[campaign_report(row) for row in campaigns]
        )
        # Every day from start's to end's (end excluded), counted rather than stepped past: a day after
        # 9999-12-31 cannot even be computed
        first, last = start.date(), (end - _MICROSECOND).date()
        for offset in range((last - first).days + 1):
            day = first + timedelta(days=offset)
            row = counts.get(day)
            response.daily.add(
                day=timestamp(datetime(day.year, day.month, day.day, tzinfo=UTC)),
                stops=row["stops"] if row else 0,
                opt_ins=row["opt_ins"] if row else 0,
            )
        return response
