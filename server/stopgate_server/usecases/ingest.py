"""Ingest of inbound events: classify each one, apply the batch durably, suggest the reply.

Rules (DESIGN.md §1 and §3) and where each is applied. Those applied in PostgreSQL stay in one statement,
`ingest_round` in store/queries.sql, so that a batch costs one round trip; its parameters are named, and
each rule is marked there by a comment with the name it has here.
- **Keywords** (classification): `domain.keywords.classify`, here through `domain.ingest.intent_of`, which
  also honours ingress's intent hint and the sources that mean opt-out whatever the text.
  Tests: tests/unit/test_keywords.py, tests/integration/test_classify_text.py.
- **Attribution** (ingest_round, "Attribution"): the rules `domain.ingest.Attribution`, in order, bounded
  by `ATTRIBUTION_WINDOW` and `ATTRIBUTION_CLOCK_SKEW` (passed here as `AttributionBounds`). The event keeps
  the id of the send it was attributed to. Tests: tests/integration/test_alias_routes.py, test_stop_ingest.py.
- **Quarantine is per licence** and **Shortcode stop lists** (ingest_round, "quarantined" and "listed"): an
  opt-out blocks the number in the attributed licence and on the event's shortcode; an opt-in releases
  both. Tests: tests/integration/test_quarantine_model.py.
- **Duplicates** (invariant 1; ingest_round, "stored"): a repeated event_id is answered DUPLICATE, with what
  was done the first time. Tests: tests/integration/test_stop_ingest.py.
- **Every inbound event is stored** (invariants 2 and 6): with its raw text and outcome; a rejected one with
  its raw input. Tests: tests/integration/test_stop_ingest.py, test_fuzz.py.
- **Acks only once durable** (invariant 1): `IngestStore.apply` returns after the commit.
  Tests: tests/e2e/test_durability.py.
- **Campaign unsubscribes** (ingest_round, "counted"): the opt-outs that blocked anew, by source.
  Tests: tests/integration/test_reporting.py.
- **One free confirmation** (the reply): `domain.ingest.reply_for`, in the event's language, or the reply
  an admin gave the custom keyword that matched.
- **Custom keywords**: those of the event's shortcode and of its licence hint (usecases/keywords.py).
  Tests: tests/integration/test_custom_keywords.py.
- **Shortcodes bound to licences**: a dry run (ClassifyText) by a caller limited to licences names only a
  shortcode bound to them (usecases/shortcode_bindings.py).
  Tests: tests/integration/test_shortcode_bindings.py.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime

from stopgate_server.domain import ingest, keywords, phones
from stopgate_server.domain.custom_keywords import Applicable
from stopgate_server.domain.ingest import (
    Applied,
    AttributionBounds,
    Classified,
    Inbound,
    IngestOutcome,
    Rejected,
    Reply,
)
from stopgate_server.domain.keywords import Classification
from stopgate_server.obs import metrics
from stopgate_server.store.ingest import IngestStore
from stopgate_server.turns import in_turns
from stopgate_server.usecases.keywords import CustomKeywords
from stopgate_server.usecases.shortcode_bindings import ShortcodeBindings

EVENTS_PER_CHUNK = 5  # classified between two looks at the clock: the longest texts take the longest
BOUNDS = AttributionBounds(ingest.ATTRIBUTION_WINDOW, ingest.ATTRIBUTION_CLOCK_SKEW)


@dataclass(frozen=True)
class Ack:
    """What was done with one event, how its text was read, and the reply to suggest (in `language`)."""

    event: Inbound
    applied: Applied
    classification: Classification
    language: str
    reply: Reply


class Ingest:
    def __init__(self, store: IngestStore, custom: CustomKeywords, bindings: ShortcodeBindings) -> None:
        self.store = store
        self.custom = custom
        self.bindings = bindings

    def classify(
        self,
        text: str,
        country: str,
        shortcode: str = "",
        licence_id: str = "",
        limited_to: Collection[str] = (),
    ) -> Classification:
        """What a text asks for, as ingest would read it from a number of that country sent to that
        shortcode for that licence (a dry run). A caller limited to licences may name only a shortcode
        bound to them: a dry run with another would reveal its custom keywords."""
        self.bindings.require(limited_to, licence_id, shortcode, "shortcode")
        applicable = self.custom.book.applicable(shortcode, licence_id)
        return keywords.classify(text, country, applicable.for_classifier)

    async def apply(
        self, events: Sequence[Inbound], rejected: Sequence[Rejected], now: datetime
    ) -> list[Ack]:
        """Classify and apply the events and store the rejected ones, in one transaction; one ack per event,
        in order, once everything is durable."""
        book = self.custom.book  # one version of the custom keywords for the whole request
        pairs = [(event, book.applicable(event.shortcode, event.licence_hint)) for event in events]
        classified = await in_turns(
            lambda chunk: [_classified(event, custom) for event, custom in chunk], pairs, EVENTS_PER_CHUNK
        )
        with metrics.INGEST_IN_FLIGHT.track(), metrics.INGEST_BATCH_SECONDS.time():
            results = await self.store.apply(classified, rejected, BOUNDS)
        acks = [
            _ack(item, applied, custom, now)
            for item, applied, (_, custom) in zip(classified, results, pairs, strict=True)
        ]
        counted = Counter(
            (ack.event.source.value, ack.applied.intent.value, ack.applied.outcome.value) for ack in acks
        )
        if rejected:
            counted["UNKNOWN", "UNSPECIFIED", IngestOutcome.REJECTED.value] = len(rejected)
        for labels, number in counted.items():  # one increment per label set, not one per event
            metrics.INGESTED_EVENTS.labels(*labels).inc(number)
        return acks


def _classified(event: Inbound, custom: Applicable) -> Classified:
    country = phones.region_of(event.phone)
    read = ingest.intent_of(event.source, event.text, event.intent_hint, country, custom.for_classifier)
    return Classified(event, read)


def _ack(item: Classified, applied: Applied, custom: Applicable, now: datetime) -> Ack:
    """The reply, in the language of the keyword (else of the number's country): a confirmation of an
    opt-out that blocked the number (not of a duplicate), a help text for a help request; the admin's text
    when a custom keyword with a reply in that language matched."""
    event, read = item.event, item.classification
    language = read.language or keywords.COUNTRY_LANGUAGES.get(phones.region_of(event.phone), "")
    fresh = applied.outcome is not IngestOutcome.DUPLICATE
    reply = ingest.reply_for(applied.intent, language, applied.blocked and fresh, event.received_at, now)
    matched = (
        custom.by_keyword.get(keywords.normalise(read.keyword)) if read.rule == "custom keyword" else None
    )
    if reply.text and matched is not None and language in matched.replies:
        reply = Reply(reply.confirmation_allowed, matched.replies[language])
    return Ack(event, applied, read, language, reply)
