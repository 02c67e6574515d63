"""StopIngest: durable ingest of STOP / opt-in / help events, and the classifier's dry run."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from stopgate.v1 import common_pb2, stop_ingest_pb2, stop_ingest_pb2_grpc

from stopgate_server import caller
from stopgate_server.api.mapping import (
    INTENT_HINTS,
    INTENTS,
    MATCH_KINDS,
    OUTCOMES,
    SOURCE_OF,
    attribution_rule,
    timestamp,
    to_datetime,
)
from stopgate_server.api.validation import MAX_ACTOR, MAX_REASON, NUL, Violations
from stopgate_server.domain import custom_keywords, ingest, senders
from stopgate_server.domain.custom_keywords import CustomKeyword, Scope
from stopgate_server.domain.ingest import Inbound, Rejected
from stopgate_server.domain.keywords import Classification
from stopgate_server.errors import FieldViolation, InvalidArgument, status_for
from stopgate_server.shutdown import StreamsEnding
from stopgate_server.turns import in_turns
from stopgate_server.usecases.ingest import Ack, Ingest
from stopgate_server.usecases.keywords import CustomKeywords

pb = stop_ingest_pb2
MAX_TEXT = 1600  # ten concatenated parts
MAX_EVENTS = 1000
MAX_EVENT_ID = 128
REPLACEMENT = "\ufffd"  # stands for NUL, which PostgreSQL text and jsonb cannot hold, in stored raw input
ACCEPTED_LATE = timedelta(days=31)  # replays after an outage
ACCEPTED_EARLY = timedelta(minutes=5)  # clock skew of ingress
EVENTS_PER_CHUNK = 20  # read between two looks at the clock
_INBOUND_SOURCES = frozenset(SOURCE_OF) - {common_pb2.EVENT_SOURCE_MANUAL}
MAX_REPLIES = 20  # languages per custom keyword
_LANGUAGE = re.compile(r"[a-z]{2}")


class _Read:
    """One event of a request, read: valid (an `Inbound`) or rejected (with its status)."""

    def __init__(self, raw: pb.InboundEvent, now: datetime) -> None:
        self.raw = raw
        self.event: Inbound | None = None
        self.error: status_pb2.Status | None = None
        violations = Violations()
        if not raw.event_id:
            violations.add("event_id", "required")
        elif len(raw.event_id) > MAX_EVENT_ID:
            violations.add("event_id", f"at most {MAX_EVENT_ID} characters")
        violations.no_nul("event_id", raw.event_id)
        if raw.source == common_pb2.EVENT_SOURCE_MANUAL:
            violations.add("source", "MANUAL is for QuarantineNumbers and ReleaseNumbers")
        elif raw.source not in _INBOUND_SOURCES:
            violations.add("source", "required" if raw.source == 0 else f"unknown value {raw.source}")
        violations.region("default_region", raw.default_region)
        phone = (
            ingest.read_phone(raw.phone_number, raw.default_region) if len(raw.phone_number) <= 64 else None
        )
        if phone is None:
            violations.add("phone_number", "not a valid phone number")
        # None when it is no valid Timestamp: the event is rejected, stored without a time
        self.received_at = (
            violations.time("received_at", raw.received_at) if raw.HasField("received_at") else now
        )
        if self.received_at and not now - ACCEPTED_LATE <= self.received_at <= now + ACCEPTED_EARLY:
            violations.add("received_at", "must be within the last 31 days")
        violations.text("text", raw.text, MAX_TEXT, required=False)
        violations.text("recipient", raw.recipient, 32, required=False)
        violations.text("network", raw.network, 64, required=False)
        violations.text("country_prefix", raw.country_prefix, 16, required=False)
        violations.text("reason", raw.reason, MAX_REASON, required=False)
        violations.identifier("licence_id", raw.licence_id, required=False)
        if raw.intent_hint not in INTENT_HINTS and raw.intent_hint != 0:
            violations.add("intent_hint", f"unknown value {raw.intent_hint}")
        if violations.items:
            self.error, _ = status_for(InvalidArgument(violations.items))
            return
        assert phone is not None
        assert self.received_at is not None
        self.event = Inbound(
            event_id=raw.event_id,
            phone=phone,
            received_at=self.received_at,
            source=SOURCE_OF[raw.source],
            recipient=raw.recipient,
            shortcode=senders.shortcode_of(raw.recipient),
            network=raw.network,
            text=raw.text,
            country_prefix=raw.country_prefix,
            reason=raw.reason,
            licence_hint=raw.licence_id,
            intent_hint=INTENT_HINTS.get(raw.intent_hint),
        )

    def rejected(self) -> Rejected:
        assert self.error is not None
        return Rejected(
            event_id=self.raw.event_id[:MAX_EVENT_ID].replace(NUL, REPLACEMENT),
            received_at=self.received_at,
            raw_json=json.dumps(_storable(_raw_input(self.raw))),
            error=self.error.message,
        )

    def rejected_ack(self) -> pb.EventAck:
        assert self.error is not None
        return pb.EventAck(event_id=self.raw.event_id, outcome=pb.INGEST_OUTCOME_REJECTED, error=self.error)


def _span(read: Classification) -> common_pb2.TextSpan | None:
    return None if read.span is None else common_pb2.TextSpan(start=read.span[0], end=read.span[1])


def _event_ack(ack: Ack) -> pb.EventAck:
    applied = ack.applied
    return pb.EventAck(
        event_id=ack.event.event_id,
        outcome=OUTCOMES[applied.outcome],
        intent=INTENTS[applied.intent],
        matched_keyword=applied.keyword,
        match_kind=MATCH_KINDS[applied.match_kind],
        attributed_licence_id=applied.licence_id,
        attributed_campaign_id=applied.campaign_id,
        attribution_rule=attribution_rule(applied.attribution),
        confirmation_allowed=ack.reply.confirmation_allowed,
        confirmation_text=ack.reply.text,
        e164=ack.event.phone,
        matched_rule=ack.classification.rule,
        language=ack.language,
        matched_span=_span(ack.classification),
    )


class StopIngestServicer(stop_ingest_pb2_grpc.StopIngestServicer):
    def __init__(self, ingest: Ingest, custom: CustomKeywords, streams_ending: StreamsEnding) -> None:
        self.ingest = ingest
        self.custom = custom
        self.streams_ending = streams_ending

    async def _ingest(self, raw_events: Sequence[pb.InboundEvent]) -> list[pb.EventAck]:
        """Read, apply and commit one batch; the acks, in order, once it is durable."""
        now = datetime.now(UTC)
        reads = await in_turns(lambda chunk: [_Read(raw, now) for raw in chunk], raw_events, EVENTS_PER_CHUNK)
        events = [read.event for read in reads if read.event is not None]
        rejected = [read.rejected() for read in reads if read.event is None]
        acks = iter(await self.ingest.apply(events, rejected, now))
        return [_event_ack(next(acks)) if read.event is not None else read.rejected_ack() for read in reads]

    async def StreamEvents(
        self, request_iterator: AsyncIterator[pb.StreamEventsRequest], context: Any
    ) -> AsyncIterator[pb.StreamEventsResponse]:
        # One request at a time: the next is read only once this one is committed and acked, so a slow
        # database slows the stream down (gRPC flow control) instead of queueing events in memory.
        # A stopping server ends the stream between two requests, after acking the one in flight.
        async for request in self.streams_ending.requests(request_iterator):
            if not 1 <= len(request.events) <= MAX_EVENTS:
                limit = f"1 to {MAX_EVENTS} events per request (got {len(request.events)})"
                raise InvalidArgument([FieldViolation("events", limit)])
            yield pb.StreamEventsResponse(acks=await self._ingest(request.events))

    async def IngestEvent(self, request: pb.IngestEventRequest, context: Any) -> pb.IngestEventResponse:
        (ack,) = await self._ingest([request.event])
        return pb.IngestEventResponse(ack=ack)

    async def ClassifyText(self, request: pb.ClassifyTextRequest, context: Any) -> pb.ClassifyTextResponse:
        violations = Violations()
        violations.text("text", request.text, MAX_TEXT)
        violations.region("country", request.country)
        shortcode = violations.shortcode("shortcode", request.shortcode)
        violations.identifier("licence_id", request.licence_id, required=False)
        violations.raise_if_any()
        result = self.ingest.classify(
            request.text, request.country, shortcode, request.licence_id, caller.limited_to()
        )
        return pb.ClassifyTextResponse(
            intent=INTENTS[result.intent],
            matched_keyword=result.keyword,
            match_kind=MATCH_KINDS[result.kind],
            language=result.language,
            matched_rule=result.rule,
            matched_span=_span(result),
        )

    async def SetCustomKeyword(
        self, request: pb.SetCustomKeywordRequest, context: Any
    ) -> pb.SetCustomKeywordResponse:
        violations = Violations()
        given = request.keyword
        if not request.HasField("keyword"):
            violations.add("keyword", "required")
        violations.text("keyword.keyword", given.keyword, custom_keywords.MAX_KEYWORD)
        intent = INTENT_HINTS.get(given.intent)
        if intent not in custom_keywords.INTENTS:
            violations.add("keyword.intent", "INTENT_OPT_OUT, INTENT_OPT_IN or INTENT_HELP")
        scope = _scope(violations, "keyword.", given.shortcode, given.licence_id)
        if given.licence_id != request.licence_id:
            violations.add("licence_id", "must be the keyword's licence_id (empty for a shortcode's keyword)")
        if len(given.replies) > MAX_REPLIES:
            violations.add("keyword.replies", f"at most {MAX_REPLIES} languages")
        else:
            for language, reply in sorted(given.replies.items()):
                field = f"keyword.replies[{language[:8]!r}]"  # a key of any length stays a short name
                if not _LANGUAGE.fullmatch(language):
                    violations.add(field, "the key must be an ISO 639-1 code such as fr")
                violations.text(field, reply, custom_keywords.MAX_REPLY)
        violations.text("actor", request.actor, MAX_ACTOR)
        violations.raise_if_any()
        assert scope is not None
        assert intent is not None
        keyword = CustomKeyword(given.keyword.strip(), intent, scope[0], scope[1], dict(given.replies))
        stored, created = await self.custom.set(keyword, request.actor)
        return pb.SetCustomKeywordResponse(keyword=_custom_keyword(stored), created=created)

    async def ListCustomKeywords(
        self, request: pb.ListCustomKeywordsRequest, context: Any
    ) -> pb.ListCustomKeywordsResponse:
        violations = Violations()
        shortcode = violations.shortcode("shortcode", request.shortcode)
        violations.identifier("licence_id", request.licence_id, required=False)
        if shortcode and request.licence_id:
            violations.add("licence_id", "give a shortcode or a licence_id, not both")
        violations.raise_if_any()
        scope = Scope.SHORTCODE if shortcode else Scope.LICENCE if request.licence_id else None
        found = await self.custom.find(scope, shortcode or request.licence_id)
        return pb.ListCustomKeywordsResponse(keywords=[_custom_keyword(k) for k in found])

    async def RemoveCustomKeyword(
        self, request: pb.RemoveCustomKeywordRequest, context: Any
    ) -> pb.RemoveCustomKeywordResponse:
        violations = Violations()
        violations.text("keyword", request.keyword, custom_keywords.MAX_KEYWORD)
        scope = _scope(violations, "", request.shortcode, request.licence_id)
        violations.text("actor", request.actor, MAX_ACTOR)
        violations.raise_if_any()
        assert scope is not None
        removed = await self.custom.remove(scope[0], scope[1], request.keyword, request.actor)
        return pb.RemoveCustomKeywordResponse(removed=removed)


def _scope(violations: Violations, prefix: str, shortcode: str, licence_id: str) -> tuple[Scope, str] | None:
    """Exactly one of a shortcode (in ASCII digits) and a licence."""
    ascii_shortcode = violations.shortcode(f"{prefix}shortcode", shortcode)
    violations.identifier(f"{prefix}licence_id", licence_id, required=False)
    if bool(shortcode) == bool(licence_id):
        violations.add(f"{prefix}shortcode", "exactly one of shortcode and licence_id is required")
        return None
    return (Scope.SHORTCODE, ascii_shortcode) if shortcode else (Scope.LICENCE, licence_id)


def _custom_keyword(keyword: CustomKeyword) -> common_pb2.CustomKeyword:
    scoped = (
        {"shortcode": keyword.scope_key}
        if keyword.scope is Scope.SHORTCODE
        else {"licence_id": keyword.scope_key}
    )
    return common_pb2.CustomKeyword(
        keyword=keyword.keyword,
        intent=INTENTS[keyword.intent],
        replies=keyword.replies,
        updated_at=timestamp(keyword.updated_at),
        updated_by=keyword.updated_by,
        **scoped,
    )


def _raw_input(raw: pb.InboundEvent) -> dict[str, Any]:
    """An event as JSON data, as it came: json_format refuses to print an invalid Timestamp, so one that is
    not valid is kept as its two numbers, {"seconds": ..., "nanos": ...}."""
    if not raw.HasField("received_at") or to_datetime(raw.received_at) is not None:
        return json_format.MessageToDict(raw)
    readable = pb.InboundEvent()
    readable.CopyFrom(raw)
    readable.ClearField("received_at")
    data = json_format.MessageToDict(readable)
    data["receivedAt"] = {"seconds": raw.received_at.seconds, "nanos": raw.received_at.nanos}
    return data


def _storable(value: Any) -> Any:
    """The raw input of a rejected event as PostgreSQL can store it: NUL characters become U+FFFD."""
    if isinstance(value, str):
        return value.replace(NUL, REPLACEMENT)
    if isinstance(value, dict):
        return {key: _storable(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_storable(item) for item in value]
    return value
