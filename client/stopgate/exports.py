"""Export rows (interactions, quarantine entries) as CSV: one column per message field, timestamps in
ISO 8601 UTC, enums by their short name (STOPPED, SMS_REPLY)."""

from __future__ import annotations

import csv
from collections.abc import AsyncIterable, Iterable
from typing import IO, Any

from google.protobuf.descriptor import Descriptor
from google.protobuf.message import Message
from google.protobuf.timestamp_pb2 import Timestamp

from stopgate.enums import value_prefix
from stopgate.times import as_datetime


def columns(descriptor: Descriptor) -> list[str]:
    """The CSV header of a row message type: its field names in declaration order."""
    return [field.name for field in descriptor.fields]


def row_values(message: Message) -> list[str]:
    """The CSV cells of one row message."""
    return [_cell(message, field) for field in message.DESCRIPTOR.fields]


def write_csv(rows: Iterable[Message], file: IO[str], descriptor: Descriptor) -> int:
    """Write `rows` (messages of type `descriptor`) as CSV with a header line; return the row count."""
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(columns(descriptor))
    count = 0
    for row in rows:
        writer.writerow(row_values(row))
        count += 1
    return count


async def write_csv_async(rows: AsyncIterable[Message], file: IO[str], descriptor: Descriptor) -> int:
    """`write_csv` for the async iterators of `AsyncClient.export_*`."""
    writer = csv.writer(file, lineterminator="\n")
    writer.writerow(columns(descriptor))
    count = 0
    async for row in rows:
        writer.writerow(row_values(row))
        count += 1
    return count


def _cell(message: Message, field: Any) -> str:  # a FieldDescriptor (pure Python or upb)
    value: Any = getattr(message, field.name)
    if field.message_type is not None and field.message_type.full_name == Timestamp.DESCRIPTOR.full_name:
        return as_datetime(value).isoformat().replace("+00:00", "Z") if message.HasField(field.name) else ""
    if field.enum_type is not None:
        known = field.enum_type.values_by_number.get(value)
        name = known.name if known else str(value)
        prefix = value_prefix(field.enum_type.name)
        return "" if name == f"{prefix}UNSPECIFIED" else name.removeprefix(prefix)
    return str(value)
