"""The hand-encoded CheckBatchResponse is byte for byte what the generated serializer makes, and its
templates know every field of CheckResult."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given
from hypothesis import strategies as st
from stopgate.v1 import quarantine_check_pb2 as pb
from stopgate_server.api import wire

raw_inputs = st.one_of(
    st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True),
    st.text(min_size=1, max_size=64),  # any text, non-ASCII too (an empty input is never a number)
)
e164s = st.one_of(st.none(), st.from_regex(r"\+[1-9][0-9]{6,14}", fullmatch=True))


def _unusual(raw: str, e164: str | None, blocked: bool, since: int) -> pb.CheckResult:
    if e164 is None:
        return pb.CheckResult(
            phone_number=raw, verdict=pb.VERDICT_INVALID, reason=pb.CHECK_REASON_INVALID_NUMBER
        )
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromtimestamp(since, UTC))
    return pb.CheckResult(
        phone_number=raw,
        e164=e164,
        verdict=pb.VERDICT_BLOCK if blocked else pb.VERDICT_ALLOW,
        reason=pb.CHECK_REASON_QUARANTINED if blocked else pb.CHECK_REASON_CONFIRMATION_WINDOW,
        since=stamp if blocked else None,
    )


@given(
    st.lists(st.tuples(raw_inputs, e164s, st.booleans(), st.booleans()), min_size=1, max_size=60),
    st.integers(0, 2**31 - 1),
    st.integers(0, 10_000),
)
def test_encoding_equals_the_generated_serializer(
    numbers: list[tuple[str, str | None, bool, bool]], since: int, recorded: int
) -> None:
    raw_numbers = [raw for raw, _, _, _ in numbers]
    e164_forms = [e164 for _, e164, _, _ in numbers]
    decided = {
        position: _unusual(raw, e164, blocked, since)
        for position, (raw, e164, listed, blocked) in enumerate(numbers)
        if e164 is None or listed
    }
    results = [
        decided.get(position) or pb.CheckResult(phone_number=raw, e164=e164 or "", verdict=pb.VERDICT_ALLOW)
        for position, (raw, e164) in enumerate(zip(raw_numbers, e164_forms, strict=True))
    ]
    totals = pb.CheckBatchResponse(allowed_count=len(numbers), blocked_count=1, recorded_sends=recorded)
    expected = pb.CheckBatchResponse(results=results)
    expected.MergeFrom(totals)

    encoded = wire.check_batch_response(raw_numbers, e164_forms, decided, totals).payload

    assert encoded == expected.SerializeToString()
    assert pb.CheckBatchResponse.FromString(encoded) == expected


@given(
    st.lists(st.tuples(st.integers(0, 10**8 - 1), st.booleans()), min_size=1, max_size=200),
    st.integers(0, 2**31 - 1),
)
def test_numbers_of_one_length_equal_the_generated_serializer(
    numbers: list[tuple[int, bool]], since: int
) -> None:
    """Numbers of one length take the fixed-width path, where decided results replace records by offset."""
    raw_numbers = [f"+336{n:08d}" for n, _ in numbers]
    decided = {
        position: _unusual(raw, raw, blocked=True, since=since)
        for position, (raw, (_, listed)) in enumerate(zip(raw_numbers, numbers, strict=True))
        if listed
    }
    totals = pb.CheckBatchResponse(allowed_count=len(numbers) - len(decided), blocked_count=len(decided))
    expected = pb.CheckBatchResponse(
        results=[
            decided.get(position) or pb.CheckResult(phone_number=raw, e164=raw, verdict=pb.VERDICT_ALLOW)
            for position, raw in enumerate(raw_numbers)
        ]
    )
    expected.MergeFrom(totals)

    encoded = wire.check_batch_response(raw_numbers, raw_numbers, decided, totals).payload
    assert encoded == expected.SerializeToString()


def test_a_batch_of_plain_allows_is_encoded_in_bulk() -> None:
    numbers = [f"+336{n:08d}" for n in range(1000)]
    encoded = wire.check_batch_response(
        numbers, numbers, {}, pb.CheckBatchResponse(allowed_count=1000)
    ).payload
    parsed = pb.CheckBatchResponse.FromString(encoded)
    assert [r.e164 for r in parsed.results] == numbers
    assert {r.verdict for r in parsed.results} == {pb.VERDICT_ALLOW}
    assert parsed.allowed_count == 1000


def test_the_templates_account_for_every_field_of_check_result() -> None:
    """A field added to CheckResult fails here until wire.py says whether a plain ALLOW sets it (then its
    templates must write it) or leaves it unset."""
    declared = [*wire.PLAIN_ALLOW_WRITES, *wire.PLAIN_ALLOW_LEAVES_UNSET]
    assert sorted(declared) == sorted(field.name for field in pb.CheckResult.DESCRIPTOR.fields)


@pytest.mark.parametrize(
    "raw_numbers",
    [
        ["+33612345678", "+33612345679"],
        ["+33612345678", "0612345678"],
        ["+33612345678", "０６１２３４５６７８"],
    ],
    ids=["one length", "mixed lengths", "not ascii"],
)
def test_a_plain_allow_sets_exactly_the_fields_declared(raw_numbers: list[str]) -> None:
    e164_forms = ["+33612345678", "+33612345678"]
    encoded = wire.check_batch_response(raw_numbers, e164_forms, {}, pb.CheckBatchResponse()).payload
    results = pb.CheckBatchResponse.FromString(encoded).results
    assert {tuple(field.name for field, _ in result.ListFields()) for result in results} == {
        wire.PLAIN_ALLOW_WRITES
    }
