"""Client of stopgate, the SMS opt-out compliance service.

`AsyncClient` (primary) and `Client` (blocking) have one method per RPC; failures raise the classes of
`stopgate.errors`; `RetryConfig` says how idempotent calls are retried, for a client or for one call
(`retry=`, `NO_RETRY`). Every enum of the protos is here as an `IntEnum` with friendly names
(`Verdict.BLOCK`, `CheckReason.QUARANTINED`), equal to the generated ints; `as_datetime` reads a response's
timestamp as an aware UTC datetime. The request and response messages live in `stopgate.v1` (generated),
the most used ones are re-exported here.
"""

from stopgate._version import __version__
from stopgate.client import AsyncClient, Client
from stopgate.enums import (
    AttributionRule,
    BlocklistChangeKind,
    CheckReason,
    ComplianceVerdict,
    Encoding,
    EventSource,
    FeedStart,
    HistoryAction,
    IngestOutcome,
    Intent,
    InteractionStatus,
    ManualOutcome,
    MatchKind,
    MentionPosition,
    MessageCategory,
    SenderType,
    Severity,
    Verdict,
)
from stopgate.errors import FieldViolation, StopgateError, from_status
from stopgate.exports import write_csv
from stopgate.retry import NO_RETRY, RetryConfig
from stopgate.times import as_datetime
from stopgate.v1.common_pb2 import Sender
from stopgate.v1.stop_ingest_pb2 import EventAck, InboundEvent

__all__ = [
    "NO_RETRY",
    "AsyncClient",
    "AttributionRule",
    "BlocklistChangeKind",
    "CheckReason",
    "Client",
    "ComplianceVerdict",
    "Encoding",
    "EventAck",
    "EventSource",
    "FeedStart",
    "FieldViolation",
    "HistoryAction",
    "InboundEvent",
    "IngestOutcome",
    "Intent",
    "InteractionStatus",
    "ManualOutcome",
    "MatchKind",
    "MentionPosition",
    "MessageCategory",
    "RetryConfig",
    "Sender",
    "SenderType",
    "Severity",
    "StopgateError",
    "Verdict",
    "__version__",
    "as_datetime",
    "from_status",
    "write_csv",
]
