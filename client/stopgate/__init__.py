"""Client of stopgate, the SMS opt-out compliance service.

`AsyncClient` (primary) and `Client` (blocking) have one method per RPC; failures raise the classes of
`stopgate.errors`; `RetryConfig` says how idempotent calls are retried. The request and response messages
live in `stopgate.v1` (generated), the most used ones are re-exported here.
"""

from stopgate._version import __version__
from stopgate.client import AsyncClient, Client
from stopgate.errors import FieldViolation, StopgateError
from stopgate.exports import write_csv
from stopgate.retry import RetryConfig
from stopgate.v1.common_pb2 import EventSource, Intent, MessageCategory, Sender, SenderType
from stopgate.v1.quarantine_check_pb2 import CheckReason, ManualOutcome, Verdict
from stopgate.v1.stop_ingest_pb2 import EventAck, InboundEvent, IngestOutcome

__all__ = [
    "AsyncClient",
    "CheckReason",
    "Client",
    "EventAck",
    "EventSource",
    "FieldViolation",
    "InboundEvent",
    "IngestOutcome",
    "Intent",
    "ManualOutcome",
    "MessageCategory",
    "RetryConfig",
    "Sender",
    "SenderType",
    "StopgateError",
    "Verdict",
    "__version__",
    "write_csv",
]
