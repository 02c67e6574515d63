"""The one conversion of a request's Timestamp to a datetime: exact over what a Timestamp may hold, None
(never an exception) for anything else."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st
from stopgate_server.api.mapping import to_datetime
from stopgate_server.api.validation import Violations


@pytest.mark.parametrize(
    ("seconds", "nanos", "expected"),
    [
        (0, 0, datetime(1970, 1, 1, tzinfo=UTC)),
        (-62_135_596_800, 0, datetime(1, 1, 1, tzinfo=UTC)),
        (253_402_300_799, 999_999_999, datetime(9999, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
        (-1, 999_999_999, datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC)),
        (1_700_000_000, 1_999, datetime(2023, 11, 14, 22, 13, 20, 1, tzinfo=UTC)),  # to the microsecond
        (253_402_300_800, 0, None),
        (-62_135_596_801, 999_999_999, None),
        (0, -1, None),
        (0, 1_000_000_000, None),
        (2**63 - 1, 0, None),
        (-(2**63), -(2**31), None),
    ],
)
def test_to_datetime(seconds: int, nanos: int, expected: datetime | None) -> None:
    assert to_datetime(Timestamp(seconds=seconds, nanos=nanos)) == expected


@given(
    seconds=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    nanos=st.integers(min_value=-(2**31), max_value=2**31 - 1),
)
def test_never_raises_and_agrees_with_protobuf(seconds: int, nanos: int) -> None:
    stamp = Timestamp(seconds=seconds, nanos=nanos)
    moment = to_datetime(stamp)
    try:
        reference = stamp.ToDatetime(UTC)
    except ValueError:
        assert moment is None
    else:
        assert moment == reference


def test_a_bad_timestamp_names_its_field() -> None:
    violations = Violations()
    assert violations.time("sent_at", Timestamp(seconds=0, nanos=-1)) is None
    assert [v.field for v in violations.items] == ["sent_at"]
    assert violations.time("end_time", Timestamp(seconds=1)) == datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC)
    assert len(violations.items) == 1
