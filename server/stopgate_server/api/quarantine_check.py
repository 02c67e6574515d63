"""QuarantineCheck: which numbers a licence may message, sends, number status, manual actions, and the
shortcodes bound to each licence."""

from __future__ import annotations

import functools
import hashlib
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from stopgate.v1 import common_pb2, quarantine_check_pb2, quarantine_check_pb2_grpc

from stopgate_server import caller
from stopgate_server.api import wire
from stopgate_server.api.mapping import (
    CATEGORY_OF,
    HISTORY_ACTIONS,
    REASONS,
    SOURCES,
    VERDICTS,
    attribution_rule,
    timestamp,
)
from stopgate_server.api.validation import MAX_ACTOR, MAX_REASON, Violations
from stopgate_server.domain import phones
from stopgate_server.domain.erasure import EVERY_LICENCE, ErasureRequest
from stopgate_server.domain.numbers import HistoryEntry
from stopgate_server.domain.request_ids import RequestId
from stopgate_server.domain.shortcode_bindings import Binding
from stopgate_server.domain.verdicts import Verdict
from stopgate_server.turns import in_turns
from stopgate_server.usecases.checks import CheckedBatch, Checks
from stopgate_server.usecases.erasure import Erasures
from stopgate_server.usecases.numbers import Numbers
from stopgate_server.usecases.shortcode_bindings import ShortcodeBindings

pb = quarantine_check_pb2
ALLOW, BLOCK = VERDICTS[Verdict.ALLOW], VERDICTS[Verdict.BLOCK]
SENDS_ACCEPTED_LATE = timedelta(days=31)
SENDS_ACCEPTED_EARLY = timedelta(hours=1)
NUMBERS_PER_CHUNK = 100  # converted between two looks at the clock (numbers in national format are slow)


class QuarantineCheckServicer(quarantine_check_pb2_grpc.QuarantineCheckServicer):
    def __init__(
        self, checks: Checks, numbers: Numbers, bindings: ShortcodeBindings, erasures: Erasures
    ) -> None:
        self.checks = checks
        self.numbers = numbers
        self.bindings = bindings
        self.erasures = erasures

    async def CheckBatch(  # type: ignore[override]  # returns the response encoded, see wire.py
        self, request: pb.CheckBatchRequest, context: Any
    ) -> wire.EncodedResponse:
        """Answered already encoded (see wire.py): a response holds one result per number."""
        raw_numbers = list(request.phone_numbers)  # one str per number, made once
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        sender = violations.sender("sender", request.sender, request.HasField("sender"))
        violations.enum("category", request.category, common_pb2.MessageCategory)
        violations.batch("phone_numbers", raw_numbers)
        violations.identifier("campaign_id", request.campaign_id, required=False)
        violations.region("default_region", request.default_region)
        request_id = violations.request_id("request_id", request.request_id)
        violations.raise_if_any()
        assert sender is not None

        e164s = await _to_e164(raw_numbers, request.default_region)

        def answer(checked: CheckedBatch, first: bytes | None) -> bytes:
            decided = {
                position: pb.CheckResult(
                    phone_number=raw_numbers[position],
                    e164=e164s[position] or "",
                    verdict=VERDICTS[decision.verdict],
                    reason=REASONS[decision.reason],
                    since=timestamp(decision.since),
                )
                for position, decision in checked.decisions.items()
            }
            if first is not None:
                return _blocked_since(first, decided)
            totals = pb.CheckBatchResponse(
                allowed_count=checked.allowed,
                blocked_count=checked.blocked,
                invalid_count=checked.invalid,
                recorded_sends=checked.recorded_sends,
            )
            return wire.check_batch_response(raw_numbers, e164s, decided, totals).payload

        once = (  # a check without a campaign records nothing: it is answered afresh
            _request_id(request, "CheckBatch", request_id) if request_id and request.campaign_id else None
        )
        return wire.EncodedResponse(
            await self.checks.check_batch(
                request.licence_id,
                sender,
                CATEGORY_OF[request.category],
                e164s,
                request.campaign_id,
                answer,
                once,
                caller.limited_to(),
            )
        )

    async def RecordSends(  # type: ignore[override]  # returns the response encoded, as it is stored
        self, request: pb.RecordSendsRequest, context: Any
    ) -> wire.EncodedResponse:
        """Answered encoded: with a request id, the answer is stored encoded, and a repeat gets it so."""
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        violations.identifier("campaign_id", request.campaign_id)
        sender = violations.sender("sender", request.sender, request.HasField("sender"))
        violations.region("default_region", request.default_region)
        request_id = violations.request_id("request_id", request.request_id)
        now = datetime.now(UTC)
        sent_at = violations.time("sent_at", request.sent_at) if request.HasField("sent_at") else now
        if sent_at and not now - SENDS_ACCEPTED_LATE <= sent_at <= now + SENDS_ACCEPTED_EARLY:
            violations.add("sent_at", "must be within the last 31 days (and at most 1 hour ahead)")
        e164s = await _valid_e164s(violations, "phone_numbers", request.phone_numbers, request.default_region)
        violations.raise_if_any()
        assert sender is not None
        assert sent_at is not None  # an invalid one was named above
        return wire.EncodedResponse(
            await self.checks.record_sends(
                request.licence_id,
                request.campaign_id,
                sender,
                sent_at,
                e164s,
                lambda recorded: pb.RecordSendsResponse(recorded_count=recorded).SerializeToString(),
                _request_id(request, "RecordSends", request_id) if request_id else None,
                caller.limited_to(),
            )
        )

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
        status = await self.numbers.status(request.licence_id, e164, caller.limited_to())
        response = pb.GetNumberStatusResponse(e164=e164, quarantined=status.quarantine is not None)
        if status.quarantine is not None:
            response.since.FromDatetime(status.quarantine.since)
            response.source = SOURCES[status.quarantine.source]
            response.attributed_campaign_id = status.quarantine.campaign_id
            response.attribution_rule = attribution_rule(status.quarantine.attribution)
        for entry in status.stop_lists:
            response.stop_lists.add(
                shortcode=entry.shortcode, since=timestamp(entry.since), event_id=entry.event_id
            )
        if status.last_send is not None:
            response.last_send.CopyFrom(
                pb.SendRecord(
                    campaign_id=status.last_send.campaign_id,
                    sender=status.last_send.sender,
                    sent_at=timestamp(status.last_send.sent_at),
                    reply_shortcode=status.last_send.reply_shortcode,
                )
            )
        response.history.extend(_history_entry(entry) for entry in status.history)
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
        added = await self.numbers.quarantine_by_hand(
            request.licence_id, e164s, request.actor, request.reason
        )
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
        released = await self.numbers.release_by_hand(
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

    async def ErasePersonalData(
        self, request: pb.ErasePersonalDataRequest, context: Any
    ) -> pb.ErasePersonalDataResponse:
        violations = Violations()
        violations.region("default_region", request.default_region)
        e164 = _required_e164(violations, "phone_number", request.phone_number, request.default_region)
        scope = request.WhichOneof("scope")
        if scope is None:
            violations.add("licence_id", "name a licence_id, or set every_licence to true")
        elif scope == "licence_id":
            violations.identifier("licence_id", request.licence_id)
        elif not request.every_licence:
            violations.add("every_licence", "must be true when set (name a licence_id for one licence)")
        violations.text("actor", request.actor, MAX_ACTOR)
        violations.text("reason", request.reason, MAX_REASON)
        violations.raise_if_any()
        assert e164 is not None
        erasure = await self.erasures.erase(
            ErasureRequest(
                phone=e164,
                licence_id=request.licence_id if scope == "licence_id" else EVERY_LICENCE,
                actor=request.actor,
                reason=request.reason,
            ),
            caller.limited_to(),
        )
        counts = erasure.counts
        return pb.ErasePersonalDataResponse(
            e164=e164,
            erasure_id=erasure.erasure_id,
            erased_at=timestamp(erasure.erased_at),
            inbound_events_cleared=counts.inbound_events_cleared,
            sends_deleted=counts.sends_deleted,
            campaign_memberships_deleted=counts.campaign_memberships_deleted,
            history_entries_cleared=counts.history_entries_cleared,
            quarantine_entries_minimised=counts.quarantine_entries_minimised,
            feed_changes_minimised=counts.feed_changes_minimised,
        )

    async def BindShortcode(self, request: pb.BindShortcodeRequest, context: Any) -> pb.BindShortcodeResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        shortcode = _required_shortcode(violations, request.shortcode)
        violations.text("actor", request.actor, MAX_ACTOR)
        violations.raise_if_any()
        binding, created = await self.bindings.bind(request.licence_id, shortcode, request.actor)
        return pb.BindShortcodeResponse(binding=_shortcode_binding(binding), created=created)

    async def UnbindShortcode(
        self, request: pb.UnbindShortcodeRequest, context: Any
    ) -> pb.UnbindShortcodeResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id)
        shortcode = _required_shortcode(violations, request.shortcode)
        violations.text("actor", request.actor, MAX_ACTOR)
        violations.raise_if_any()
        removed = await self.bindings.unbind(request.licence_id, shortcode, request.actor)
        return pb.UnbindShortcodeResponse(removed=removed)

    async def ListShortcodeBindings(
        self, request: pb.ListShortcodeBindingsRequest, context: Any
    ) -> pb.ListShortcodeBindingsResponse:
        violations = Violations()
        violations.identifier("licence_id", request.licence_id, required=False)
        shortcode = violations.shortcode("shortcode", request.shortcode)
        violations.raise_if_any()
        found = await self.bindings.find(request.licence_id, shortcode)
        return pb.ListShortcodeBindingsResponse(bindings=[_shortcode_binding(b) for b in found])


def _required_e164(violations: Violations, field: str, value: str, region: str) -> str | None:
    """A required phone number in E.164 form; None (and a violation naming `field`) when it is not one."""
    if not value.strip():
        violations.add(field, "required")
        return None
    e164 = phones.to_e164(value, region)
    if e164 is None:
        violations.add(field, "not a valid phone number")
    return e164


def _required_shortcode(violations: Violations, value: str) -> str:
    """A required shortcode, in ASCII digits."""
    if not value:
        violations.add("shortcode", "required")
    return violations.shortcode("shortcode", value)


def _shortcode_binding(binding: Binding) -> pb.ShortcodeBinding:
    return pb.ShortcodeBinding(
        licence_id=binding.licence_id,
        shortcode=binding.shortcode,
        bound_at=timestamp(binding.bound_at),
        bound_by=binding.bound_by,
    )


def _request_id(
    request: pb.CheckBatchRequest | pb.RecordSendsRequest, method: str, request_id: uuid.UUID
) -> RequestId:
    """The request id of a request, with the request's fingerprint: SHA-256 of its deterministic
    serialization (every field, those this server does not know included), the id first rewritten in its
    canonical form, as ids are compared case-insensitively."""
    request.request_id = str(request_id)
    fingerprint = hashlib.sha256(request.SerializeToString(deterministic=True)).digest()
    return RequestId(request.licence_id, method, request_id, fingerprint)


def _blocked_since(first: bytes, decided: dict[int, pb.CheckResult]) -> bytes:
    """The answer a first copy of a CheckBatch got, with the numbers that are blocked now turned BLOCK: a
    retry gets what was recorded (the same sends, recorded_sends unchanged), never an ALLOW for a number that
    said STOP since."""
    answer = pb.CheckBatchResponse.FromString(first)
    for position, result in decided.items():
        if result.verdict == BLOCK and answer.results[position].verdict == ALLOW:
            answer.results[position].CopyFrom(result)
            answer.allowed_count -= 1
            answer.blocked_count += 1
    return answer.SerializeToString()


async def _to_e164(raw_numbers: Sequence[str], region: str) -> list[str | None]:
    """`phones.to_e164_many`, in turns on the event loop for a batch not written in E.164 (parsing numbers in
    national format is slow enough to stall the other calls of the process)."""
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


def _history_entry(entry: HistoryEntry) -> pb.HistoryEntry:
    return pb.HistoryEntry(
        occurred_at=timestamp(entry.occurred_at),
        action=HISTORY_ACTIONS[entry.action],
        source=SOURCES[entry.source],
        licence_id=entry.licence_id,
        campaign_id=entry.campaign_id,
        shortcode=entry.shortcode,
        event_id=entry.event_id,
        actor=entry.actor,
        reason=entry.reason,
        consent_reference=entry.consent_reference,
        attribution_rule=attribution_rule(entry.attribution),
    )
