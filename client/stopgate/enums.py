"""Every enum of the stopgate.v1 protos as a Python `IntEnum` with friendly member names: the type prefix
that protobuf's C++ scoping rules impose (`VERDICT_`, `CHECK_REASON_`) is gone, and each member equals the
generated int, so the two mix freely at run time.

    stopgate.Verdict(result.verdict) is stopgate.Verdict.BLOCK
    stopgate.CheckReason(result.reason).name == "QUARANTINED"

Response messages still hold plain ints: wrap a field in its enum (as above) to read its name or to compare
it under mypy --strict, whose strict equality check refuses to compare the generated int type with a
member. Each class also keeps the interface of the generated enum wrapper it replaces in `stopgate`
(`Verdict.VERDICT_BLOCK`, `Verdict.Name(2) == "VERDICT_BLOCK"`, `Value`, `keys`, `values`, `items`,
`DESCRIPTOR`), so code written against `stopgate.Verdict` before still runs and type-checks; its prefixed
names are the generated ints, typed as such, which message constructors take under mypy.

The classes are written out (mypy sees every member); tests/unit/test_client_surface.py holds them equal
to the descriptors.
"""

from __future__ import annotations

from enum import IntEnum, nonmember
from typing import Self

from stopgate.v1 import (
    common_pb2,
    message_compliance_pb2,
    quarantine_check_pb2,
    reporting_pb2,
    stop_ingest_pb2,
)


def value_prefix(enum_name: str) -> str:
    """The prefix of an enum's value names: `CheckReason` -> `CHECK_REASON_` (buf's ENUM_VALUE_PREFIX)."""
    snake = "".join(f"_{c}" if c.isupper() and i else c for i, c in enumerate(enum_name))
    return snake.upper() + "_"


class ProtoEnum(IntEnum):
    """The base of stopgate's enums: an `IntEnum` that also answers like protobuf's enum wrapper."""

    @classmethod
    def Name(cls, number: int) -> str:
        """The proto name of `number` (`VERDICT_BLOCK`), as the generated `Verdict.Name` gives it."""
        return cls._proto_name(cls(number))

    @classmethod
    def Value(cls, name: str) -> Self:
        """The member of a proto name (`VERDICT_BLOCK`) or of a friendly one (`BLOCK`)."""
        member = cls.__members__.get(name.removeprefix(cls._prefix()))
        if member is None:
            raise ValueError(f"{cls.__name__} has no value named {name!r}")
        return member

    @classmethod
    def keys(cls) -> list[str]:
        """The proto names, in declaration order."""
        return [cls._proto_name(member) for member in cls]

    @classmethod
    def values(cls) -> list[int]:
        """The numbers, in declaration order."""
        return [int(member) for member in cls]

    @classmethod
    def items(cls) -> list[tuple[str, int]]:
        """(proto name, number) pairs, in declaration order."""
        return [(cls._proto_name(member), int(member)) for member in cls]

    @classmethod
    def _prefix(cls) -> str:
        return value_prefix(cls.__name__)

    @classmethod
    def _proto_name(cls, member: ProtoEnum) -> str:
        return cls._prefix() + member.name


class MessageCategory(ProtoEnum):
    """`stopgate.v1.MessageCategory`: The category of a message, which decides what a quarantine lets
    through."""

    UNSPECIFIED = 0
    MARKETING = 1
    TRANSACTIONAL = 2
    OPT_OUT_CONFIRMATION = 3

    DESCRIPTOR = nonmember(common_pb2.MessageCategory.DESCRIPTOR)
    MESSAGE_CATEGORY_UNSPECIFIED = nonmember(common_pb2.MESSAGE_CATEGORY_UNSPECIFIED)
    MESSAGE_CATEGORY_MARKETING = nonmember(common_pb2.MESSAGE_CATEGORY_MARKETING)
    MESSAGE_CATEGORY_TRANSACTIONAL = nonmember(common_pb2.MESSAGE_CATEGORY_TRANSACTIONAL)
    MESSAGE_CATEGORY_OPT_OUT_CONFIRMATION = nonmember(common_pb2.MESSAGE_CATEGORY_OPT_OUT_CONFIRMATION)


class SenderType(ProtoEnum):
    """`stopgate.v1.SenderType`: The kind of originating address a message is sent from."""

    UNSPECIFIED = 0
    ALPHANUMERIC = 1
    SHORTCODE = 2
    LONGCODE = 3

    DESCRIPTOR = nonmember(common_pb2.SenderType.DESCRIPTOR)
    SENDER_TYPE_UNSPECIFIED = nonmember(common_pb2.SENDER_TYPE_UNSPECIFIED)
    SENDER_TYPE_ALPHANUMERIC = nonmember(common_pb2.SENDER_TYPE_ALPHANUMERIC)
    SENDER_TYPE_SHORTCODE = nonmember(common_pb2.SENDER_TYPE_SHORTCODE)
    SENDER_TYPE_LONGCODE = nonmember(common_pb2.SENDER_TYPE_LONGCODE)


class EventSource(ProtoEnum):
    """`stopgate.v1.EventSource`: The channel through which an inbound opt-out or opt-in event reached the
    platform."""

    UNSPECIFIED = 0
    SMS_REPLY = 1
    OPERATOR_NOTIFICATION = 2
    WEB_UNSUBSCRIBE = 3
    GATEWAY = 4
    IMPORT = 5
    MANUAL = 6

    DESCRIPTOR = nonmember(common_pb2.EventSource.DESCRIPTOR)
    EVENT_SOURCE_UNSPECIFIED = nonmember(common_pb2.EVENT_SOURCE_UNSPECIFIED)
    EVENT_SOURCE_SMS_REPLY = nonmember(common_pb2.EVENT_SOURCE_SMS_REPLY)
    EVENT_SOURCE_OPERATOR_NOTIFICATION = nonmember(common_pb2.EVENT_SOURCE_OPERATOR_NOTIFICATION)
    EVENT_SOURCE_WEB_UNSUBSCRIBE = nonmember(common_pb2.EVENT_SOURCE_WEB_UNSUBSCRIBE)
    EVENT_SOURCE_GATEWAY = nonmember(common_pb2.EVENT_SOURCE_GATEWAY)
    EVENT_SOURCE_IMPORT = nonmember(common_pb2.EVENT_SOURCE_IMPORT)
    EVENT_SOURCE_MANUAL = nonmember(common_pb2.EVENT_SOURCE_MANUAL)


class Intent(ProtoEnum):
    """`stopgate.v1.Intent`: What the sender of an inbound text asked for."""

    UNSPECIFIED = 0
    OPT_OUT = 1
    OPT_IN = 2
    HELP = 3
    NONE = 4

    DESCRIPTOR = nonmember(common_pb2.Intent.DESCRIPTOR)
    INTENT_UNSPECIFIED = nonmember(common_pb2.INTENT_UNSPECIFIED)
    INTENT_OPT_OUT = nonmember(common_pb2.INTENT_OPT_OUT)
    INTENT_OPT_IN = nonmember(common_pb2.INTENT_OPT_IN)
    INTENT_HELP = nonmember(common_pb2.INTENT_HELP)
    INTENT_NONE = nonmember(common_pb2.INTENT_NONE)


class AttributionRule(ProtoEnum):
    """`stopgate.v1.AttributionRule`: Which rule assigned an inbound opt-out or opt-in to a licence and
    campaign ("regardless of the unsubscribe method, a STOP is assigned to the most recent campaign sent
    to this number")."""

    UNSPECIFIED = 0
    SHORTCODE_ROUTE = 1
    MOST_RECENT_SEND = 2
    LICENCE_HINT = 3
    UNATTRIBUTED = 4

    DESCRIPTOR = nonmember(common_pb2.AttributionRule.DESCRIPTOR)
    ATTRIBUTION_RULE_UNSPECIFIED = nonmember(common_pb2.ATTRIBUTION_RULE_UNSPECIFIED)
    ATTRIBUTION_RULE_SHORTCODE_ROUTE = nonmember(common_pb2.ATTRIBUTION_RULE_SHORTCODE_ROUTE)
    ATTRIBUTION_RULE_MOST_RECENT_SEND = nonmember(common_pb2.ATTRIBUTION_RULE_MOST_RECENT_SEND)
    ATTRIBUTION_RULE_LICENCE_HINT = nonmember(common_pb2.ATTRIBUTION_RULE_LICENCE_HINT)
    ATTRIBUTION_RULE_UNATTRIBUTED = nonmember(common_pb2.ATTRIBUTION_RULE_UNATTRIBUTED)


class MatchKind(ProtoEnum):
    """`stopgate.v1.MatchKind`: How a keyword was recognised in a text."""

    UNSPECIFIED = 0
    EXACT = 1
    INFERRED = 2

    DESCRIPTOR = nonmember(common_pb2.MatchKind.DESCRIPTOR)
    MATCH_KIND_UNSPECIFIED = nonmember(common_pb2.MATCH_KIND_UNSPECIFIED)
    MATCH_KIND_EXACT = nonmember(common_pb2.MATCH_KIND_EXACT)
    MATCH_KIND_INFERRED = nonmember(common_pb2.MATCH_KIND_INFERRED)


class Verdict(ProtoEnum):
    """`stopgate.v1.Verdict`: The answer for one number."""

    UNSPECIFIED = 0
    ALLOW = 1
    BLOCK = 2
    INVALID = 3

    DESCRIPTOR = nonmember(quarantine_check_pb2.Verdict.DESCRIPTOR)
    VERDICT_UNSPECIFIED = nonmember(quarantine_check_pb2.VERDICT_UNSPECIFIED)
    VERDICT_ALLOW = nonmember(quarantine_check_pb2.VERDICT_ALLOW)
    VERDICT_BLOCK = nonmember(quarantine_check_pb2.VERDICT_BLOCK)
    VERDICT_INVALID = nonmember(quarantine_check_pb2.VERDICT_INVALID)


class CheckReason(ProtoEnum):
    """`stopgate.v1.CheckReason`: Why a verdict was given."""

    UNSPECIFIED = 0
    QUARANTINED = 1
    SHORTCODE_STOP_LIST = 2
    INVALID_NUMBER = 3
    CONFIRMATION_WINDOW = 4

    DESCRIPTOR = nonmember(quarantine_check_pb2.CheckReason.DESCRIPTOR)
    CHECK_REASON_UNSPECIFIED = nonmember(quarantine_check_pb2.CHECK_REASON_UNSPECIFIED)
    CHECK_REASON_QUARANTINED = nonmember(quarantine_check_pb2.CHECK_REASON_QUARANTINED)
    CHECK_REASON_SHORTCODE_STOP_LIST = nonmember(quarantine_check_pb2.CHECK_REASON_SHORTCODE_STOP_LIST)
    CHECK_REASON_INVALID_NUMBER = nonmember(quarantine_check_pb2.CHECK_REASON_INVALID_NUMBER)
    CHECK_REASON_CONFIRMATION_WINDOW = nonmember(quarantine_check_pb2.CHECK_REASON_CONFIRMATION_WINDOW)


class HistoryAction(ProtoEnum):
    """`stopgate.v1.HistoryAction`: What happened in one history entry."""

    UNSPECIFIED = 0
    OPT_OUT = 1
    OPT_IN = 2
    MANUAL_QUARANTINE = 3
    MANUAL_RELEASE = 4

    DESCRIPTOR = nonmember(quarantine_check_pb2.HistoryAction.DESCRIPTOR)
    HISTORY_ACTION_UNSPECIFIED = nonmember(quarantine_check_pb2.HISTORY_ACTION_UNSPECIFIED)
    HISTORY_ACTION_OPT_OUT = nonmember(quarantine_check_pb2.HISTORY_ACTION_OPT_OUT)
    HISTORY_ACTION_OPT_IN = nonmember(quarantine_check_pb2.HISTORY_ACTION_OPT_IN)
    HISTORY_ACTION_MANUAL_QUARANTINE = nonmember(quarantine_check_pb2.HISTORY_ACTION_MANUAL_QUARANTINE)
    HISTORY_ACTION_MANUAL_RELEASE = nonmember(quarantine_check_pb2.HISTORY_ACTION_MANUAL_RELEASE)


class ManualOutcome(ProtoEnum):
    """`stopgate.v1.ManualOutcome`: Result of a manual action on one number."""

    UNSPECIFIED = 0
    QUARANTINED = 1
    ALREADY_QUARANTINED = 2
    RELEASED = 3
    NOT_QUARANTINED = 4

    DESCRIPTOR = nonmember(quarantine_check_pb2.ManualOutcome.DESCRIPTOR)
    MANUAL_OUTCOME_UNSPECIFIED = nonmember(quarantine_check_pb2.MANUAL_OUTCOME_UNSPECIFIED)
    MANUAL_OUTCOME_QUARANTINED = nonmember(quarantine_check_pb2.MANUAL_OUTCOME_QUARANTINED)
    MANUAL_OUTCOME_ALREADY_QUARANTINED = nonmember(quarantine_check_pb2.MANUAL_OUTCOME_ALREADY_QUARANTINED)
    MANUAL_OUTCOME_RELEASED = nonmember(quarantine_check_pb2.MANUAL_OUTCOME_RELEASED)
    MANUAL_OUTCOME_NOT_QUARANTINED = nonmember(quarantine_check_pb2.MANUAL_OUTCOME_NOT_QUARANTINED)


class IngestOutcome(ProtoEnum):
    """`stopgate.v1.IngestOutcome`: What stopgate did with an event."""

    UNSPECIFIED = 0
    QUARANTINED = 1
    ALREADY_QUARANTINED = 2
    RELEASED = 3
    DUPLICATE = 4
    NO_ACTION = 5
    REJECTED = 6

    DESCRIPTOR = nonmember(stop_ingest_pb2.IngestOutcome.DESCRIPTOR)
    INGEST_OUTCOME_UNSPECIFIED = nonmember(stop_ingest_pb2.INGEST_OUTCOME_UNSPECIFIED)
    INGEST_OUTCOME_QUARANTINED = nonmember(stop_ingest_pb2.INGEST_OUTCOME_QUARANTINED)
    INGEST_OUTCOME_ALREADY_QUARANTINED = nonmember(stop_ingest_pb2.INGEST_OUTCOME_ALREADY_QUARANTINED)
    INGEST_OUTCOME_RELEASED = nonmember(stop_ingest_pb2.INGEST_OUTCOME_RELEASED)
    INGEST_OUTCOME_DUPLICATE = nonmember(stop_ingest_pb2.INGEST_OUTCOME_DUPLICATE)
    INGEST_OUTCOME_NO_ACTION = nonmember(stop_ingest_pb2.INGEST_OUTCOME_NO_ACTION)
    INGEST_OUTCOME_REJECTED = nonmember(stop_ingest_pb2.INGEST_OUTCOME_REJECTED)


class ComplianceVerdict(ProtoEnum):
    """`stopgate.v1.ComplianceVerdict`: The overall answer for one text."""

    UNSPECIFIED = 0
    COMPLIANT = 1
    WILL_BE_AMENDED = 2
    NON_COMPLIANT = 3
    NOT_APPLICABLE = 4

    DESCRIPTOR = nonmember(message_compliance_pb2.ComplianceVerdict.DESCRIPTOR)
    COMPLIANCE_VERDICT_UNSPECIFIED = nonmember(message_compliance_pb2.COMPLIANCE_VERDICT_UNSPECIFIED)
    COMPLIANCE_VERDICT_COMPLIANT = nonmember(message_compliance_pb2.COMPLIANCE_VERDICT_COMPLIANT)
    COMPLIANCE_VERDICT_WILL_BE_AMENDED = nonmember(message_compliance_pb2.COMPLIANCE_VERDICT_WILL_BE_AMENDED)
    COMPLIANCE_VERDICT_NON_COMPLIANT = nonmember(message_compliance_pb2.COMPLIANCE_VERDICT_NON_COMPLIANT)
    COMPLIANCE_VERDICT_NOT_APPLICABLE = nonmember(message_compliance_pb2.COMPLIANCE_VERDICT_NOT_APPLICABLE)


class MentionPosition(ProtoEnum):
    """`stopgate.v1.MentionPosition`: Where the STOP mention is in a text."""

    UNSPECIFIED = 0
    END = 1
    ELSEWHERE = 2
    ABSENT = 3

    DESCRIPTOR = nonmember(message_compliance_pb2.MentionPosition.DESCRIPTOR)
    MENTION_POSITION_UNSPECIFIED = nonmember(message_compliance_pb2.MENTION_POSITION_UNSPECIFIED)
    MENTION_POSITION_END = nonmember(message_compliance_pb2.MENTION_POSITION_END)
    MENTION_POSITION_ELSEWHERE = nonmember(message_compliance_pb2.MENTION_POSITION_ELSEWHERE)
    MENTION_POSITION_ABSENT = nonmember(message_compliance_pb2.MENTION_POSITION_ABSENT)


class Encoding(ProtoEnum):
    """`stopgate.v1.Encoding`: The character set a text is sent in."""

    UNSPECIFIED = 0
    GSM7 = 1
    UCS2 = 2

    DESCRIPTOR = nonmember(message_compliance_pb2.Encoding.DESCRIPTOR)
    ENCODING_UNSPECIFIED = nonmember(message_compliance_pb2.ENCODING_UNSPECIFIED)
    ENCODING_GSM7 = nonmember(message_compliance_pb2.ENCODING_GSM7)
    ENCODING_UCS2 = nonmember(message_compliance_pb2.ENCODING_UCS2)


class Severity(ProtoEnum):
    """`stopgate.v1.Severity`: How serious a finding is."""

    UNSPECIFIED = 0
    ERROR = 1
    ADVISORY = 2

    DESCRIPTOR = nonmember(message_compliance_pb2.Severity.DESCRIPTOR)
    SEVERITY_UNSPECIFIED = nonmember(message_compliance_pb2.SEVERITY_UNSPECIFIED)
    SEVERITY_ERROR = nonmember(message_compliance_pb2.SEVERITY_ERROR)
    SEVERITY_ADVISORY = nonmember(message_compliance_pb2.SEVERITY_ADVISORY)


class FeedStart(ProtoEnum):
    """`stopgate.v1.FeedStart`: Where a change feed without a cursor starts."""

    UNSPECIFIED = 0
    NOW = 1
    OLDEST = 2

    DESCRIPTOR = nonmember(reporting_pb2.FeedStart.DESCRIPTOR)
    FEED_START_UNSPECIFIED = nonmember(reporting_pb2.FEED_START_UNSPECIFIED)
    FEED_START_NOW = nonmember(reporting_pb2.FEED_START_NOW)
    FEED_START_OLDEST = nonmember(reporting_pb2.FEED_START_OLDEST)


class BlocklistChangeKind(ProtoEnum):
    """`stopgate.v1.BlocklistChangeKind`: What happened to a number in a block list."""

    UNSPECIFIED = 0
    QUARANTINED = 1
    RELEASED = 2
    STOP_LISTED = 3
    STOP_LIST_REMOVED = 4

    DESCRIPTOR = nonmember(reporting_pb2.BlocklistChangeKind.DESCRIPTOR)
    BLOCKLIST_CHANGE_KIND_UNSPECIFIED = nonmember(reporting_pb2.BLOCKLIST_CHANGE_KIND_UNSPECIFIED)
    BLOCKLIST_CHANGE_KIND_QUARANTINED = nonmember(reporting_pb2.BLOCKLIST_CHANGE_KIND_QUARANTINED)
    BLOCKLIST_CHANGE_KIND_RELEASED = nonmember(reporting_pb2.BLOCKLIST_CHANGE_KIND_RELEASED)
    BLOCKLIST_CHANGE_KIND_STOP_LISTED = nonmember(reporting_pb2.BLOCKLIST_CHANGE_KIND_STOP_LISTED)
    BLOCKLIST_CHANGE_KIND_STOP_LIST_REMOVED = nonmember(reporting_pb2.BLOCKLIST_CHANGE_KIND_STOP_LIST_REMOVED)


class InteractionStatus(ProtoEnum):
    """`stopgate.v1.InteractionStatus`: Status of one send in the interactions export."""

    UNSPECIFIED = 0
    SENT = 1
    STOPPED = 2

    DESCRIPTOR = nonmember(reporting_pb2.InteractionStatus.DESCRIPTOR)
    INTERACTION_STATUS_UNSPECIFIED = nonmember(reporting_pb2.INTERACTION_STATUS_UNSPECIFIED)
    INTERACTION_STATUS_SENT = nonmember(reporting_pb2.INTERACTION_STATUS_SENT)
    INTERACTION_STATUS_STOPPED = nonmember(reporting_pb2.INTERACTION_STATUS_STOPPED)
