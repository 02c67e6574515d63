"""QuarantineCheck: which numbers a licence may message, sends, number status, manual actions."""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from itertools import compress, count
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp
from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc

from stopgate_server.api import wire
from stopgate_server.api.turns import in_turns
from stopgate_server.api.validation import MAX_ACTOR, MAX_REASON, Violations
from stopgate_server.domain import phones
from stopgate_server.domain.ingest import Attribution
from stopgate_server.domain.verdicts import Reason, Verdict, decide
from stopgate_server.obs import metrics
from stopgate_server.store.quarantine import HistoryRow, QuarantineStore

pb = quarantine_check_pb2
SENDS_ACCEPTED_LATE = timedelta(days=31)
SENDS_ACCEPTED_EARLY = timedelta(hours=1)
NUMBERS_PER_CHUNK = 100  # converted between two looks at the clock: ~2.5 ms in national format

_VERDICTS = {v: pb.Verdict.Value(f"VERDICT_{v.value}") for v in Verdict}
_REASONS = {
    r: pb.CheckReason.Value(f"CHECK_REASON_{r.value}" if r is not Reason.NONE else "CHECK_REASON_UNSPECIFIED")
    for r in Reason
}


def timestamp(moment: datetime | None) -> Timestamp | None:
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def event_source(name: str | None) -> common_pb2.EventSource.ValueType:
    return (
        common_pb2.EventSource.Value(f"EVENT_SOURCE_{name}") if name else common_pb2.EVENT_SOURCE_UNSPECIFIED
    )


def attribution_rule(name: str) -> common_pb2.AttributionRule.ValueType:
    """The rule as stored (an `ingest.Attribution` value, "" when nothing was attributed)."""
    return (
        common_pb2.AttributionRule.Value(f"ATTRIBUTION_RULE_{Attribution(name).value}")
        if name
        else common_pb2.ATTRIBUTION_RULE_UNSPECIFIED
    )


class QuarantineCheckServicer(quarantine_check_pb2_grpc.QuarantineCheckServicer):
    def __init__(self, store: QuarantineStore) -> None:
        self.store = store

    async def CheckBatch(  # type: ignore[override]  # returns the response encoded, see the docstring
        self, request: pb.CheckBatchRequest, context: Any
    ) -> bytes:
        """Answered already encoded (see wire.py): a response holds one result per number."""
        raw_numbers = list(request.phone_numbers)  # one str per number, made once
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        sender = violations.sender("sender", request.sender, request.HasField("sender"))
        violations.enum("category", request.category, common_pb2.MessageCategory)
        violations.batch("phone_numbers", raw_numbers)
        violations.identifier("campaign_id", request.campaign_id, required=False)
        violations.region("default_region", request.default_region)
        violations.raise_if_any()

        e164s = await _to_e164(raw_numbers, request.default_region)
        all_valid = None not in e164s
        valid = e164s if all_valid else [e for e in e164s if e is not None]
        assert sender is not None
        shortcode = sender.route  # its stop list blocks the sender: itself, or an alias's reply shortcode
        blocks = await self.store.find_blocks(request.licence_id, shortcode, valid)  # type: ignore[arg-type]
        quarantined, stop_listed = blocks.quarantined, blocks.stop_listed
        claimed: set[str] = set()
        confirming = request.category == common_pb2.MESSAGE_CATEGORY_OPT_OUT_CONFIRMATION
        if confirming and (quarantined or stop_listed):
            claimed = await self.store.claim_confirmations(
                request.licence_id, shortcode, [*quarantined, *stop_listed]
            )

        # Most numbers are a plain ALLOW, which wire.py encodes in bulk; only the invalid and the listed
        # ones (about 1% in practice) need a decision of their own, found here without a Python loop.
        unusual: set[str | None] = {*quarantined, *stop_listed}
        if not all_valid:
            unusual.add(None)
        positions = list(compress(count(), map(unusual.__contains__, e164s))) if unusual else []
        decided: dict[int, pb.CheckResult] = {}
        refused: set[int] = set()
        tally: Counter[tuple[Verdict, Reason]] = Counter()
        for position in positions:
            e164 = e164s[position]
            decision = decide(
                e164,
                quarantined.get(e164) if e164 else None,
                stop_listed.get(e164) if e164 else None,
                e164 in claimed,
            )
            decided[position] = pb.CheckResult(
                phone_number=raw_numbers[position],
                e164=e164 or "",
                verdict=_VERDICTS[decision.verdict],
                reason=_REASONS[decision.reason],
                since=timestamp(decision.since),
            )
            tally[decision.verdict, decision.reason] += 1
            if decision.verdict is not Verdict.ALLOW:
                refused.add(position)
        tally[Verdict.ALLOW, Reason.NONE] += len(e164s) - len(positions)  # the plain ALLOWs
        for (verdict, reason), number in tally.items():
            metrics.CHECKED_NUMBERS.labels(verdict.value, reason.value).inc(number)

        totals = pb.CheckBatchResponse(
            allowed_count=sum(n for (verdict, _), n in tally.items() if verdict is Verdict.ALLOW),
            blocked_count=sum(n for (verdict, _), n in tally.items() if verdict is Verdict.BLOCK),
            invalid_count=sum(n for (verdict, _), n in tally.items() if verdict is Verdict.INVALID),
        )
        if request.campaign_id:
            allowed = (
                [e164 for position, e164 in enumerate(e164s) if position not in refused] if refused else e164s
            )
            totals.recorded_sends = await self.store.record_sends(
                request.licence_id,
                request.campaign_id,
                sender,
                datetime.now(UTC),
                allowed,  # type: ignore[arg-type]
            )
        return wire.check_batch_response(raw_numbers, e164s, decided, totals)

    async def RecordSends(self, request: pb.RecordSendsRequest, context: Any) -> pb.RecordSendsResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.identifier("campaign_id", request.campaign_id)
        sender = violations.sender("sender", request.sender, request.HasField("sender"))
        violations.region("default_region", request.default_region)
        now = datetime.now(UTC)
        sent_at = violations.time("sent_at", request.sent_at) if request.HasField("sent_at") else now
        if sent_at and not now - SENDS_ACCEPTED_LATE <= sent_at <= now + SENDS_ACCEPTED_EARLY:
            violations.add("sent_at", "must be within the last 31 days (and at most 1 hour ahead)")
        e164s = await _valid_e164s(violations, "phone_numbers", request.phone_numbers, request.default_region)
        violations.raise_if_any()
        assert sender is not None
        assert sent_at is not None  # an invalid one was named above
        recorded = await self.store.record_sends(
            request.licence_id, request.campaign_id, sender, sent_at, e164s
        )
        return pb.RecordSendsResponse(recorded_count=recorded)

    async def GetNumberStatus(
        self, request: pb.GetNumberStatusRequest, context: Any
    ) -> pb.GetNumberStatusResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.region("default_region", request.default_region)
        e164 = phones.to_e164(request.phone_number, request.default_region)
        if e164 is None:
            violations.add("phone_number", "not a valid phone number")
        violations.raise_if_any()
        assert e164 is not None
        status = await self.store.number_status(request.licence_id, e164)
        response = pb.GetNumberStatusResponse(e164=e164, quarantined=status.quarantine is not None)
        if status.quarantine is not None:
            response.since.FromDatetime(status.quarantine["since"])
            response.source = event_source(status.quarantine["source"])
            response.attributed_campaign_id = status.quarantine["campaign_id"] or ""
            response.attribution_rule = attribution_rule(status.quarantine["attribution"])
        for entry in status.stop_lists:
            response.stop_lists.add(
                shortcode=entry["shortcode"],
                since=timestamp(entry["since"]),
                event_id=entry["event_id"] or "",
            )
        if status.last_send is not None:
            response.last_send.CopyFrom(
                pb.SendRecord(
                    campaign_id=status.last_send["campaign_id"],
                    sender=status.last_send["sender"],
                    sent_at=timestamp(status.last_send["sent_at"]),
                    reply_shortcode=status.last_send["reply_shortcode"],
                )
            )
        response.history.extend(_history_entry(row) for row in status.history)
        return response

    async def QuarantineNumbers(
        self, request: pb.QuarantineNumbersRequest, context: Any
    ) -> pb.QuarantineNumbersResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.text("actor", request.actor, MAX_ACTOR)
        violations.text("reason", request.reason, MAX_REASON)
        violations.region("default_region", request.default_region)
        e164s = await _valid_e164s(violations, "phone_numbers", request.phone_numbers, request.default_region)
        violations.raise_if_any()
        added = await self.store.quarantine(request.licence_id, e164s, request.actor, request.reason)
        results = _manual_results(
            request.phone_numbers,
            e164s,
            added,
            pb.MANUAL_OUTCOME_QUARANTINED,
            pb.MANUAL_OUTCOME_ALREADY_QUARANTINED,
        )
        return pb.QuarantineNumbersResponse(results=results)

    async def ReleaseNumbers(
        self, request: pb.ReleaseNumbersRequest, context: Any
    ) -> pb.ReleaseNumbersResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.text("actor", request.actor, MAX_ACTOR)
        violations.text("reason", request.reason, MAX_REASON)
        violations.text("consent_reference", request.consent_reference, MAX_ACTOR)
        violations.region("default_region", request.default_region)
        e164s = await _valid_e164s(violations, "phone_numbers", request.phone_numbers, request.default_region)
        violations.raise_if_any()
        released = await self.store.release(
            request.licence_id, e164s, request.actor, request.reason, request.consent_reference
        )
        results = _manual_results(
            request.phone_numbers,
            e164s,
            released,
            pb.MANUAL_OUTCOME_RELEASED,
            pb.MANUAL_OUTCOME_NOT_QUARANTINED,
        )
        return pb.ReleaseNumbersResponse(results=results)


async def _to_e164(raw_numbers: Sequence[str], region: str) -> list[str | None]:
    """`phones.to_e164_many`, in turns on the event loop for a batch not written in E.164: 10,000 numbers in
    national format take about 0.25 s to parse."""
    if phones.all_e164(raw_numbers):
        return list(raw_numbers)
    convert = functools.partial(phones.to_e164_many, default_region=region)
    return await in_turns(convert, raw_numbers, NUMBERS_PER_CHUNK)


async def _valid_e164s(
    violations: Violations, field: str, raw_numbers: Sequence[str], region: str
) -> list[str]:
    """The E.164 forms of a batch in which every number must be valid; a violation names each that is not."""
    before = len(violations.items)
    violations.batch(field, raw_numbers)
    if len(violations.items) > before:
        return []
    e164s = await _to_e164(raw_numbers, region)
    for position, e164 in enumerate(e164s):
        if e164 is None:
            violations.add(f"{field}[{position}]", "not a valid phone number")
    return [e164 for e164 in e164s if e164 is not None]


def _manual_results(
    raw_numbers: Sequence[str],
    e164s: Sequence[str],
    changed: set[str],
    if_changed: pb.ManualOutcome.ValueType,
    otherwise: pb.ManualOutcome.ValueType,
) -> list[pb.ManualActionResult]:
    """One result per input number: `if_changed` for the numbers the action changed, else `otherwise`."""
    return [
        pb.ManualActionResult(
            phone_number=raw, e164=e164, outcome=if_changed if e164 in changed else otherwise
        )
        for raw, e164 in zip(raw_numbers, e164s, strict=True)
    ]


def _history_entry(row: HistoryRow) -> pb.HistoryEntry:
    return pb.HistoryEntry(
        occurred_at=timestamp(row.occurred_at),
        action=pb.HistoryAction.Value(f"HISTORY_ACTION_{row.action}"),
        source=event_source(row.source),
        licence_id=row.licence_id or "",
        campaign_id=row.campaign_id or "",
        shortcode=row.shortcode or "",
        event_id=row.event_id or "",
        actor=row.actor or "",
        reason=row.reason or "",
        consent_reference=row.consent_reference or "",
        attribution_rule=attribution_rule(row.attribution),
    )
