"""Log lines: one JSON object each, and never a full phone number or a token."""

from __future__ import annotations

import json
import logging
import re
import sys
from pathlib import Path

import pytest
from opentelemetry import trace
from opentelemetry.trace import NonRecordingSpan, SpanContext
from stopgate_server.obs.logging import JsonFormatter, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("number +33612345678 opted out", "number +********678 opted out"),
        ("Key (phone, licence_id)=(447700900123, acme)", "Key (phone, licence_id)=(*********123, acme)"),
        ("token sg_Bu4sEynIUZrdOA90taedRksWC7nJfZV-g6sEOSLdlZ8 used", "token sg_[redacted] used"),
        (
            "port 50051, pid 1234567, 2026-11-22T12:10:04.213+00:00",
            "port 50051, pid 1234567, 2026-11-22T12:10:04.213+00:00",
        ),
        # Error references are hexadecimal words: kept whole, so the one a caller got can be found.
        ("internal error (reference 87fc12345700)", "internal error (reference 87fc12345700)"),
        ("reference a123456789012", "reference a123456789012"),
        ("to tel:+33612345678.", "to tel:+********678."),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_log_lines_hold_no_phone_number_or_token_even_in_tracebacks() -> None:
    try:
        raise ValueError("duplicate key: phone=+33612345678")
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "check of %s", ("+447700900123",), None)
        record.exc_info = sys.exc_info()
    record.caller = "sg_Bu4sEynIUZrdOA90taedRksWC7nJfZV-g6sEOSLdlZ8"
    line = JsonFormatter().format(record)
    entry = json.loads(line)
    assert entry["msg"] == "check of +*********123"
    assert entry["caller"] == "sg_[redacted]"
    assert "+33612345678" not in line
    assert "phone=+********678" in entry["exc"]


def test_log_lines_stay_json_with_large_counts_and_mask_phones_in_nested_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "block list index loaded", (), None)
    record.entries = 10_000_000
    record.seconds = 56.762
    record.numbers = ["+33612345678", {"to": "447700900123"}]
    entry = json.loads(JsonFormatter().format(record))
    assert entry["entries"] == 10_000_000
    assert entry["seconds"] == 56.762
    assert entry["numbers"] == ["+********678", {"to": "*********123"}]


def test_no_log_call_passes_a_field_that_log_records_reserve() -> None:
    """`extra={"created": ...}` raises KeyError when the line is logged (at INFO in production, where tests
    do not log): such a call would fail the request it belongs to."""
    reserved = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime"}
    server = Path(__file__).parents[2] / "server"
    clashes = [
        f"{path.relative_to(server)}: {key}"
        for path in server.rglob("*.py")
        for extra in re.findall(r"extra=\{([^}]*)\}", path.read_text())
        for key in re.findall(r'"(\w+)":', extra)
        if key in reserved
    ]
    assert clashes == []
    assert "created" in reserved  # the check knows the names it guards


def test_a_line_written_in_a_span_carries_its_trace_and_span_ids_whole() -> None:
    # Ids of decimal digits only: kept whole, never masked as if they were phone numbers.
    trace_id, span_id = "12345678901234567890123456789012", "1234567890123456"
    context = SpanContext(int(trace_id, 16), int(span_id, 16), is_remote=False)
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "shortcode bound", (), None)
    with trace.use_span(NonRecordingSpan(context)):
        entry = json.loads(JsonFormatter().format(record))
    assert (entry["trace_id"], entry["span_id"]) == (trace_id, span_id)


def test_a_line_written_outside_any_span_carries_no_trace_fields() -> None:
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "serving", (), None)
    entry = json.loads(JsonFormatter().format(record))
    assert "trace_id" not in entry
    assert "span_id" not in entry
