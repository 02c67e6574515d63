"""One JSON object per log line, so that log pipelines need no parsing rules."""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import uuid
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, TextIO

from opentelemetry import trace

# Personal data and secrets never reach the log: phone numbers (runs of 8 to 15 digits, with or without
# "+", standing alone in text, tracebacks and database messages included) keep their last 3 digits only;
# API tokens are replaced whole. Digits inside a word are not a phone number: an error reference
# ("87fc12345700") stays whole, so the one a caller got can be found in the log. JSON numbers are left
# alone: stopgate handles phone numbers as text only, and a count such as 10000000 must stay a number.
_PHONE = re.compile(r"(?<![\w+])(\+?)(\d{5,12})(\d{3})(?!\w)")
_TOKEN = re.compile(r"sg_[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    """`text` without phone numbers (all but the last 3 digits masked) and without API tokens."""
    masked = _PHONE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
    return _TOKEN.sub("sg_[redacted]", masked)


# Attributes every LogRecord has; anything else was passed through `extra=` and becomes a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


_call: ContextVar[dict[str, str] | None] = ContextVar("stopgate_call", default=None)


_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def bind_call(method: str, metadata: Iterable[tuple[str, Any]] | None) -> None:
    """Mark every log line of the current call (its task) with its method and request id: the caller's
    `x-request-id` metadata when it sent one (1 to 64 letters, digits and `._:-`; redacted like any text, so
    a phone number sent there is masked), a new one otherwise."""
    given = next((value for key, value in metadata or () if key == "x-request-id"), "")
    valid = isinstance(given, str) and _REQUEST_ID.fullmatch(given)
    _call.set({"method": method, "request_id": redact(given) if valid else uuid.uuid4().hex[:16]})


class JsonFormatter(logging.Formatter):
    """Formats a record as {"ts", "level", "logger", "msg", "pid", "worker", "method", "request_id",
    ...extra fields, "exc", "trace_id", "span_id"}: "worker" in server processes (0 for a single one),
    "method" and "request_id" on the lines of a call, "trace_id" and "span_id" on the lines written in a
    span (a call, when tracing is on: obs/tracing.py)."""

    def __init__(self, worker: int | None = None) -> None:
        super().__init__()
        self.worker = worker

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
            "pid": record.process if record.process is not None else os.getpid(),
        }
        if self.worker is not None:
            entry["worker"] = self.worker
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        # The call's fields were redacted when bound (a generated id is hexadecimal: kept whole); span ids
        # are hexadecimal, never a phone number, and kept whole too.
        return json.dumps(_redacted(entry) | (_call.get() or {}) | _span_ids(), ensure_ascii=False)


def _span_ids() -> dict[str, str]:
    """The current span's trace and span ids, in the lowercase hexadecimal (32 and 16 digits) that
    `traceparent` and OpenTelemetry's own log correlation use; none outside a span."""
    span = trace.get_current_span().get_span_context()
    if not span.is_valid:
        return {}
    return {"trace_id": trace.format_trace_id(span.trace_id), "span_id": trace.format_span_id(span.span_id)}


def _redacted(value: Any) -> Any:
    """`value` for the log: its text redacted, its numbers kept, anything else as redacted text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {redact(str(key)): _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return redact(value if isinstance(value, str) else str(value))


def configure(level: str, stream: TextIO = sys.stdout, worker: int | None = None) -> None:
    """Send every log record to standard output (or `stream`) as JSON lines; a server process passes its
    worker index."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter(worker))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
