"""One JSON object per log line, so that log pipelines need no parsing rules."""

from __future__ import annotations

import json
import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

# Personal data and secrets never reach the log: phone numbers (runs of 8 to 15 digits, with or without
# "+", wherever they appear in text, tracebacks and database messages included) keep their last 3 digits
# only; API tokens are replaced whole. JSON numbers are left alone: stopgate handles phone numbers as text
# only, and a count such as 10000000 must stay a number (masked, it would no longer be valid JSON).
_PHONE = re.compile(r"(?<!\d)(\+?)(\d{5,12})(\d{3})(?!\d)")
_TOKEN = re.compile(r"sg_[A-Za-z0-9_-]{16,}")


def redact(text: str) -> str:
    """`text` without phone numbers (all but the last 3 digits masked) and without API tokens."""
    masked = _PHONE.sub(lambda m: m.group(1) + "*" * len(m.group(2)) + m.group(3), text)
    return _TOKEN.sub("sg_[redacted]", masked)


# Attributes every LogRecord has; anything else was passed through `extra=` and becomes a field.
_RECORD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    """Formats a record as {"ts", "level", "logger", "msg", ...extra fields, "exc"}."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        entry.update((k, v) for k, v in vars(record).items() if k not in _RECORD_ATTRIBUTES)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(_redacted(entry), ensure_ascii=False)


def _redacted(value: Any) -> Any:
    """`value` for the log: its text redacted, its numbers kept, anything else as redacted text."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, dict):
        return {redact(str(key)): _redacted(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(item) for item in value]
    return redact(value if isinstance(value, str) else str(value))


def configure(level: str, stream: TextIO = sys.stdout) -> None:
    """Send every log record to standard output (or `stream`) as JSON lines."""
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
