"""StopIngest: durable ingest of STOP / opt-in / help events, and the classifier's dry run."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from google.protobuf import json_format
from google.rpc import status_pb2
from stopgate.v1 import common_pb2, stop_ingest_pb2, stop_ingest_pb2_grpc

from stopgate_server.api.mapping import (
    INTENT_HINTS,
    INTENTS,
    MATCH_KINDS,
    OUTCOMES,
    SOURCE_OF,
    attribution_rule,
    to_datetime,
)
from stopgate_server.api.validation import MAX_REASON, NUL, Violations
from stopgate_server.domain import ingest, senders
from stopgate_server.domain.ingest import Inbound, Rejected
from stopgate_server.errors import FieldViolation, InvalidArgument, status_for
from stopgate_server.turns import in_turns
from stopgate_server.usecases.ingest import Ack, Ingest

pb = stop_ingest_pb2
MAX_TEXT = 1600  # ten concatenated parts
MAX_EVENTS = 1000
MAX_EVENT_ID = 128
REPLACEMENT = "\ufffd"  # stands for NUL, which PostgreSQL text and jsonb cannot hold, in stored raw input
ACCEPTED_LATE = timedelta(days=31)  # replays after an outage
ACCEPTED_EARLY = timedelta(minutes=5)  # clock skew of ingress
EVENTS_PER_CHUNK = 20  # read between two looks at the clock
_INBOUND_SOURCES = frozenset(SOURCE_OF) - {common_pb2.EVENT_SOURCE_MANUAL}


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
    )


class StopIngestServicer(stop_ingest_pb2_grpc.StopIngestServicer):
    def __init__(self, ingest: Ingest) -> None:
        self.ingest = ingest

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
        async for request in request_iterator:
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
        violations.raise_if_any()
        result = self.ingest.classify(request.text, request.country)
        return pb.ClassifyTextResponse(
            intent=INTENTS[result.intent],
            matched_keyword=result.keyword,
            match_kind=MATCH_KINDS[result.kind],
            language=result.language,
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
