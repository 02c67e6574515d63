"""The domain's typed values to and from their protobuf forms: times and enums.

Enum maps are built by name (`Intent.OPT_OUT` ↔ `INTENT_OPT_OUT`) when this module loads, and loading fails
if a member has no protobuf value: a value added to one side only cannot reach a caller unmapped.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import Enum
from typing import Any, TypeVar

from google.protobuf.timestamp_pb2 import Timestamp
from stopgate.v1 import common_pb2, quarantine_check_pb2, reporting_pb2, stop_ingest_pb2

from stopgate_server.domain.change_feed import ChangeKind
from stopgate_server.domain.ingest import Attribution, IngestOutcome, Source
from stopgate_server.domain.keywords import Intent, MatchKind
from stopgate_server.domain.numbers import HistoryAction
from stopgate_server.domain.times import EPOCH
from stopgate_server.domain.verdicts import Category, Reason, Verdict

# What a google.protobuf.Timestamp may hold (timestamp.proto): 0001-01-01T00:00:00Z to 9999-12-31T23:59:59Z.
FIRST_TIMESTAMP_SECOND = -62_135_596_800
LAST_TIMESTAMP_SECOND = 253_402_300_799
MAX_NANOS = 999_999_999


def to_datetime(stamp: Timestamp) -> datetime | None:
    """A Timestamp as a UTC datetime (to the microsecond), or None when it is not a valid Timestamp: seconds
    outside 0001-01-01..9999-12-31, or nanos outside 0..999,999,999. It never raises, unlike
    `Timestamp.ToDatetime`, whose ValueError would reach the caller as INTERNAL."""
    if (
        not FIRST_TIMESTAMP_SECOND <= stamp.seconds <= LAST_TIMESTAMP_SECOND
        or not 0 <= stamp.nanos <= MAX_NANOS
    ):
        return None
    return EPOCH + timedelta(seconds=stamp.seconds, microseconds=stamp.nanos // 1000)


def timestamp(moment: datetime | None) -> Timestamp | None:
    """A datetime as a Timestamp; None stays None (the field is then left unset)."""
    if moment is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(moment)
    return stamp


def stamp_fields(microseconds: int) -> dict[str, int]:
    """A Timestamp's fields from epoch microseconds (a dict: protobuf builds the message in C)."""
    seconds, micros = divmod(microseconds, 1_000_000)
    return {"seconds": seconds, "nanos": micros * 1000}


E = TypeVar("E", bound=Enum)


def by_name(enum: type[E], values: Any, unspecified: frozenset[Enum] = frozenset()) -> dict[E, Any]:
    """Each member of `enum` → the protobuf value of the same name under the enum's prefix (`MatchKind` →
    `MATCH_KIND_`); the members in `unspecified` → 0. Every protobuf value but 0 must be some member's."""
    prefix = re.sub(r"(?<!^)(?=[A-Z])", "_", values.DESCRIPTOR.name).upper() + "_"
    mapped = {member: 0 if member in unspecified else values.Value(prefix + member.name) for member in enum}
    unknown = set(values.values()) - set(mapped.values()) - {0}
    if unknown:
        names = sorted(values.Name(value) for value in unknown)
        raise LookupError(f"{enum.__name__} has no member for {', '.join(names)}")
    return mapped


INTENTS = by_name(Intent, common_pb2.Intent)
INTENT_HINTS = {value: intent for intent, value in INTENTS.items()}
MATCH_KINDS = by_name(MatchKind, common_pb2.MatchKind, frozenset({MatchKind.NONE}))
SOURCES = by_name(Source, common_pb2.EventSource)
SOURCE_OF = {value: source for source, value in SOURCES.items()}
OUTCOMES = by_name(IngestOutcome, stop_ingest_pb2.IngestOutcome)
VERDICTS = by_name(Verdict, quarantine_check_pb2.Verdict)
REASONS = by_name(Reason, quarantine_check_pb2.CheckReason, frozenset({Reason.NONE}))
HISTORY_ACTIONS = by_name(HistoryAction, quarantine_check_pb2.HistoryAction)
CHANGE_KINDS = by_name(ChangeKind, reporting_pb2.BlocklistChangeKind)
CATEGORY_OF = {value: category for category, value in by_name(Category, common_pb2.MessageCategory).items()}
_ATTRIBUTIONS = by_name(Attribution, common_pb2.AttributionRule)


def attribution_rule(rule: Attribution | None) -> Any:
    """The rule that attributed an event; UNSPECIFIED when none did (other intents, manual actions)."""
    return common_pb2.ATTRIBUTION_RULE_UNSPECIFIED if rule is None else _ATTRIBUTIONS[rule]
