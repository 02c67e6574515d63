"""Times in and out of the client. The wire carries `google.protobuf.Timestamp`s, always UTC; callers hold
timezone-aware datetimes, and the client never guesses the zone of a naive one."""

from __future__ import annotations

from datetime import UTC, datetime

from google.protobuf.timestamp_pb2 import Timestamp


def as_datetime(timestamp: Timestamp) -> datetime:
    """A timestamp of a response (`result.since`, `row.sent_at`, `change.changed_at`, …) as an aware UTC
    datetime, comparable with the datetimes given to the client. An unset timestamp field reads as the
    epoch: ask `message.HasField(name)` first where a field may be unset."""
    return timestamp.ToDatetime(tzinfo=UTC)


def to_timestamp(moment: datetime | None, argument: str) -> Timestamp | None:
    """The timestamp of an aware datetime given as `argument` (None stays None). A naive datetime is
    refused with a ValueError naming the argument: `datetime.now()` is local time on most machines, and
    read as UTC it would move a report's range or a send's time by hours without a word."""
    if moment is None:
        return None
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(
            f"{argument} must be timezone-aware (datetime.now(UTC), or .replace(tzinfo=UTC) for a UTC time): "
            f"got the naive {moment.isoformat()}"
        )
    timestamp = Timestamp()
    timestamp.FromDatetime(moment)
    return timestamp
