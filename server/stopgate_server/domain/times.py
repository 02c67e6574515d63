"""Times as the block lists and exports carry them: microseconds since the Unix epoch, exact."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def to_micros(moment: datetime) -> int:
    return (moment - EPOCH) // MICROSECOND


def from_micros(microseconds: int) -> datetime:
    return EPOCH + timedelta(microseconds=microseconds)
